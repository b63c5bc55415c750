"""The ledger's partitions: each Parquet object Firehose writes, registered in Glue as its (hour, device)
partition when S3 says it landed, and the partition dropped when the lifecycle rule has expired its last object
(S3's EventBridge "Object Created" and "Object Deleted" events), so Athena reads exactly what is there."""

from __future__ import annotations

from typing import Any

from odshared.core.lambda_env import setting
from odshared.core.log import configure
from odshared.fleet.partitions import apply_event

configure()


def handler(event: dict[str, Any], _context: Any = None, glue: Any = None, s3: Any = None) -> dict[str, Any]:
    import boto3

    return apply_event(event, glue or boto3.client("glue"), s3 or boto3.client("s3"), setting("FLEET_DATABASE"))
