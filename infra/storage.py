"""S3: the data bucket (videos, frames, manifests, labeling output), the artifacts bucket (training output,
converted models, component artifacts) and the bucket their access logs go to."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct


class Storage(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, removal_policy: cdk.RemovalPolicy) -> None:
        super().__init__(scope, construct_id)
        destroy = removal_policy == cdk.RemovalPolicy.DESTROY
        common = {
            "encryption": s3.BucketEncryption.S3_MANAGED,
            "block_public_access": s3.BlockPublicAccess.BLOCK_ALL,
            "enforce_ssl": True,
            "removal_policy": removal_policy,
            "auto_delete_objects": destroy,
        }
        self.access_logs = s3.Bucket(
            self,
            "AccessLogs",
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_PREFERRED,
            lifecycle_rules=[s3.LifecycleRule(id="expire-logs", expiration=cdk.Duration.days(365))],
            **common,
        )
        temporary = [
            s3.LifecycleRule(
                id="abort-incomplete-uploads", abort_incomplete_multipart_upload_after=cdk.Duration.days(7)
            ),
            s3.LifecycleRule(id="expire-tmp", prefix="tmp/", expiration=cdk.Duration.days(7)),
            s3.LifecycleRule(id="expire-old-versions", noncurrent_version_expiration=cdk.Duration.days(90)),
        ]
        # Ground Truth's worker UI loads the images straight from the data bucket in the browser
        ground_truth_cors = s3.CorsRule(
            allowed_methods=[s3.HttpMethods.GET], allowed_origins=["*"], exposed_headers=["Access-Control-Allow-Origin"]
        )

        def logged(construct_id: str, log_prefix: str, **extra: Any) -> s3.Bucket:
            """A versioned bucket whose access logs go to the access-log bucket under ``log_prefix``."""
            return s3.Bucket(
                self,
                construct_id,
                versioned=True,
                server_access_logs_bucket=self.access_logs,
                server_access_logs_prefix=log_prefix,
                lifecycle_rules=temporary,
                **extra,
                **common,
            )

        self.data = logged("Data", "data/", cors=[ground_truth_cors])
        self.artifacts = logged("Artifacts", "artifacts/")


OBJECT_READ = ("s3:GetObject",)
OBJECT_WRITE = ("s3:PutObject", "s3:AbortMultipartUpload")
BUCKET_READ = ("s3:ListBucket", "s3:GetBucketLocation")


def grant_objects(
    bucket: s3.IBucket, grantee: iam.IGrantable, prefix: str = "*", *, read: bool = False, write: bool = False
) -> None:
    """Named S3 actions on one prefix, where CDK's grant_read/grant_write would add families by wildcard
    (``s3:List*`` alone reaches a dozen actions that do not even apply to a bucket). Readers may list the bucket:
    a missing object is then a 404 the code can name, not a 403."""
    actions = (OBJECT_READ if read else ()) + (OBJECT_WRITE if write else ())
    iam.Grant.add_to_principal(grantee=grantee, actions=list(actions), resource_arns=[bucket.arn_for_objects(prefix)])
    if read:
        iam.Grant.add_to_principal(grantee=grantee, actions=list(BUCKET_READ), resource_arns=[bucket.bucket_arn])
