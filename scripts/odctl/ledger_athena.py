"""The ledger's named queries on AWS: the stack's Athena workgroup runs the same text ``odctl counts`` runs offline."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from odshared.core.errors import OdError
from odshared.fleet.ledger import query


class LedgerError(OdError):
    """Athena refused or failed the query."""


def _literal(value: str) -> str:
    """Athena's execution parameters are SQL text: strings go in quoted."""
    return "'" + value.replace("'", "''") + "'"


def run_athena(
    name: str, parameters: Sequence[str], workgroup: str, database: str, athena: Any, poll_s: float = 0.5
) -> list[dict[str, Any]]:
    started = athena.start_query_execution(
        QueryString=query(name).sql,
        QueryExecutionContext={"Database": database},
        WorkGroup=workgroup,
        ExecutionParameters=[_literal(p) for p in parameters],
    )
    execution_id = started["QueryExecutionId"]
    while True:
        status = athena.get_query_execution(QueryExecutionId=execution_id)["QueryExecution"]["Status"]
        if status["State"] in ("SUCCEEDED", "FAILED", "CANCELLED"):
            break
        time.sleep(poll_s)
    if status["State"] != "SUCCEEDED":
        raise LedgerError(
            f"Athena query {name} ({execution_id}) {status['State']}: {status.get('StateChangeReason', '')}"
        )
    rows: list[list[str | None]] = []
    for page in athena.get_paginator("get_query_results").paginate(QueryExecutionId=execution_id):
        rows += [[cell.get("VarCharValue") for cell in row["Data"]] for row in page["ResultSet"]["Rows"]]
    if not rows:
        return []
    header, *body = rows
    return [dict(zip([str(h) for h in header], row, strict=False)) for row in body]
