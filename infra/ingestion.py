"""The ingestion workflow: a bucket prefix of videos -> one labeling manifest, on AWS's engines.

A Distributed Map lists the prefix (ItemReader over ListObjectsV2), runs ExtractVideo per object (non-videos are
skipped by the function) with bounded concurrency, retries with backoff and a tolerated failure share, and writes
its results to S3 (ResultWriter); MergeManifest then streams the parts into one manifest and lists the failed videos
with their reasons. Some videos failed: SNS says which, the run succeeds. Too many failed, or a step broke: SNS with
the cause, the run fails.

Execution input (``odctl pipeline ingest`` writes it): ``runName``, ``prefix`` (under the data bucket),
``sampling`` (``{"every": N}`` or ``{"fps": F}``), ``metadataFromName`` (a name pattern, or "").
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from .config import AppConfig
from .state_machines import TRANSIENT, guard, logged_state_machine, notify_then_fail, retry_with_backoff

INGEST_PREFIX = "ingest"
FRAMES_PREFIX = "frames"
MAP_RESULTS = f"{INGEST_PREFIX}/map-results"


class Ingestion(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: AppConfig,
        data: s3.IBucket,
        extract: lambda_.IFunction,
        merge: lambda_.IFunction,
        topic: sns.ITopic,
    ) -> None:
        super().__init__(scope, construct_id)
        output_prefix = sfn.JsonPath.format(
            f"s3://{data.bucket_name}/{INGEST_PREFIX}/{{}}", sfn.JsonPath.string_at("$.runName")
        )  # a token: CDK writes its key with the ".$" suffix itself
        notify = notify_then_fail(self, topic, "Video ingestion failed", "IngestionFailed")
        extract_task = tasks.LambdaInvoke(
            self,
            "ExtractVideo",
            lambda_function=extract,
            payload_response_only=True,  # the item (the state input) is the payload
            retry_on_service_exceptions=False,
            task_timeout=sfn.Timeout.duration(cdk.Duration.minutes(16)),
        )
        retry_with_backoff(extract_task, TRANSIENT)
        videos = sfn.DistributedMap(
            self,
            "Videos",
            item_reader=sfn.S3ObjectsItemReader(bucket=data, prefix=sfn.JsonPath.string_at("$.prefix")),
            item_selector={
                "item.$": "$$.Map.Item.Value",
                "bucket": data.bucket_name,
                "sampling.$": "$.sampling",
                "metadata_from_name.$": "$.metadataFromName",
                "frames_prefix": f"s3://{data.bucket_name}/{FRAMES_PREFIX}",
                "output_prefix": output_prefix,
            },
            max_concurrency=config.ingest_max_concurrency,
            tolerated_failure_percentage=config.ingest_tolerated_failure_percent,
            result_writer_v2=sfn.ResultWriterV2(bucket=data, prefix=MAP_RESULTS),
            result_path="$.map",
        )
        videos.item_processor(extract_task)
        videos.add_catch(notify, errors=["States.ALL"], result_path="$.error")
        merge_task = tasks.LambdaInvoke(
            self,
            "MergeManifest",
            lambda_function=merge,
            payload=sfn.TaskInput.from_object({"output_prefix": output_prefix, "map.$": "$.map"}),
            result_selector={"value.$": "$.Payload"},
            result_path="$.summary",
            retry_on_service_exceptions=False,
            task_timeout=sfn.Timeout.duration(cdk.Duration.minutes(15)),
        )
        guard(merge_task, TRANSIENT, notify)
        done = sfn.Succeed(self, "Done")
        some_failed = tasks.SnsPublish(
            self,
            "NotifyFailedVideos",
            topic=topic,
            subject="Video ingestion: some videos failed",
            message=sfn.TaskInput.from_json_path_at("$.summary.value"),
            result_path=sfn.JsonPath.DISCARD,
        ).next(done)
        definition = videos.next(merge_task).next(
            sfn.Choice(self, "AnyVideoFailed?")
            .when(sfn.Condition.is_present("$.summary.value.failed[0]"), some_failed)
            .otherwise(done)
        )
        # ERROR level: one child execution per video; ALL would log every item's events (nag SF1, acknowledged)
        self.state_machine, self.log_group = logged_state_machine(
            self, definition, cdk.Duration.hours(24), sfn.LogLevel.ERROR, execution_data=False
        )
