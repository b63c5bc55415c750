"""Python Lambdas bundled without Docker: the function folder, odshared and wheels for Lambda's platform."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import jsii
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from .lambda_bundle import REPO, build_bundle

LAMBDAS = REPO / "lambdas"
RUNTIME = lambda_.Runtime.PYTHON_3_13


@jsii.implements(cdk.ILocalBundling)
class LocalBundling:
    """CDK calls try_bundle positionally (aws/aws-cdk#26581), so it takes *args."""

    def __init__(self, function_dir: Path, extra_files: dict[str, Path] | None = None) -> None:
        self.function_dir = function_dir
        self.extra_files = extra_files or {}

    def try_bundle(self, output_dir: str, *args: Any, **kwargs: Any) -> bool:
        build_bundle(self.function_dir, Path(output_dir))
        for name, source in self.extra_files.items():
            shutil.copy2(source, Path(output_dir) / name)
        return True


class PythonFunction(Construct):
    """One function, its own role and its own log group (retention set, so logs do not pile up forever)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        folder: str,
        description: str,
        timeout_minutes: int = 5,
        memory_size: int = 1024,
        ephemeral_storage_mib: int = 512,
        environment: dict[str, str] | None = None,
        extra_files: dict[str, Path] | None = None,
        dead_letter_queue: sqs.IQueue | None = None,  # where an asynchronous event goes after Lambda's own retries
    ) -> None:
        super().__init__(scope, construct_id)
        function_dir = LAMBDAS / folder
        self.code_dir, self.extra_files = function_dir, dict(extra_files or {})  # what the bundle is made of
        code = lambda_.Code.from_asset(
            str(function_dir),
            asset_hash_type=cdk.AssetHashType.OUTPUT,  # the bundle includes odshared: hash what is shipped
            bundling=cdk.BundlingOptions(image=RUNTIME.bundling_image, local=LocalBundling(function_dir, extra_files)),
        )
        self.log_group = logs.LogGroup(
            self, "Logs", retention=logs.RetentionDays.THREE_MONTHS, removal_policy=cdk.RemovalPolicy.DESTROY
        )
        self.function = lambda_.Function(
            self,
            "Function",
            runtime=RUNTIME,
            handler="handler.handler",
            code=code,
            description=description,
            timeout=cdk.Duration.minutes(timeout_minutes),
            memory_size=memory_size,
            ephemeral_storage_size=cdk.Size.mebibytes(ephemeral_storage_mib),
            environment={"LOG_LEVEL": "INFO", **(environment or {})},
            tracing=lambda_.Tracing.ACTIVE,
            log_group=self.log_group,
            architecture=lambda_.Architecture.X86_64,
            dead_letter_queue=dead_letter_queue,
        )


def python_functions(scope: Construct) -> list[PythonFunction]:
    """The project's Lambdas anywhere under ``scope`` (the pipeline's at the stack's top, the ledger's partition
    registration in its construct), in the order they were defined."""
    return [child for child in scope.node.find_all() if isinstance(child, PythonFunction)]
