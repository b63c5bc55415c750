"""The ledger's partitions: each Parquet object Firehose writes, registered in Glue as its (hour, device)
partition when S3 says it landed (an EventBridge "Object Created" event), so Athena reads it."""

from __future__ import annotations

from typing import Any

from odshared.core.lambda_env import setting
from odshared.core.log import configure
from odshared.fleet.partitions import keys_of_event, register

configure()


def handler(event: dict[str, Any], _context: Any = None, glue: Any = None) -> dict[str, Any]:
    import boto3

    bucket, keys = keys_of_event(event)
    created = register(glue or boto3.client("glue"), setting("FLEET_DATABASE"), bucket, keys)
    return {"registered": [p.folder for p in created]}
