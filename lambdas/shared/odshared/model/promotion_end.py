"""A promotion that ends without reaching its own last step: stopped by a person (StopExecution), failed on an
error no catch handles (States.Runtime), or timed out.

Its steps never run again, so what they held is let go here, from the execution's own history: the canary group
gets back the deployment it had before this promotion's canary deployment (unless someone deployed to it since),
the version is Rejected with the reason (it was never proven; ``odctl model approve --override`` promotes it again),
and the group's lock is released at once rather than when it expires (hours later at the default soak). Started by
the stack's EventBridge rule on the promotion state machine's "Step Functions Execution Status Change" events.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from odshared.core.lambda_env import FunctionScope
from odshared.core.log import log_event
from odshared.greengrass.deployments import DeploySettings, restore_deployment, thing_group_arn
from odshared.model.promotion import reject_version, release_lock

logger = logging.getLogger(__name__)

ENDED = ("ABORTED", "FAILED", "TIMED_OUT")  # the statuses the rule sends here; SUCCEEDED ran its own last step
FINISHING_STATES = ("RollBackCanary", "RejectVersion", "RecordPromotion")  # the canary's fate was settled already


def exited_states(stepfunctions: Any, execution_arn: str) -> dict[str, dict[str, Any]]:
    """state name -> the state data it left with (the last time), from the execution's history."""
    exited: dict[str, dict[str, Any]] = {}
    for page in stepfunctions.get_paginator("get_execution_history").paginate(executionArn=execution_arn):
        for event in page["events"]:
            details = event.get("stateExitedEventDetails")
            if details and details.get("output"):
                exited[details["name"]] = json.loads(details["output"])
    return exited


def _value(state: Mapping[str, Any] | None, key: str) -> dict[str, Any]:
    return dict(((state or {}).get(key) or {}).get("value") or {})


def _still_latest(greengrass: Any, scope: FunctionScope, deployment: Mapping[str, Any]) -> bool:
    target = thing_group_arn(scope, deployment["thingGroup"])
    latest = greengrass.list_deployments(targetArn=target, historyFilter="LATEST_ONLY").get("deployments", [])
    return bool(latest) and latest[0]["deploymentId"] == deployment.get("deploymentId")


def settle_ended_promotion(
    execution_arn: str,
    status: str,
    bucket: str,
    scope: FunctionScope,
    settings: DeploySettings,
    clients: Mapping[str, Any],
) -> dict[str, Any]:
    """``clients``: stepfunctions, greengrassv2 and sagemaker (boto3 clients or stand-ins)."""
    exited = exited_states(clients["stepfunctions"], execution_arn)
    plan = _value(exited.get("PlanPromotion"), "plan")
    result: dict[str, Any] = {"execution": execution_arn, "status": status, "restored": None, "rejected": False}
    if not plan.get("proceed") or plan.get("waiting"):
        result |= {"lock": False, "why": "it ended before it held a group"}
        log_event(logger, "promotion.ended_holding_nothing", **result)
        return result
    canary = _value(exited.get("DeployToCanary"), "canary")
    settled = [name for name in FINISHING_STATES if name in exited]
    why = f"the promotion ended {status} before it was recorded: not promoted"
    if canary and not settled:
        if _still_latest(clients["greengrassv2"], scope, canary):
            restored = restore_deployment(
                canary["thingGroup"], canary.get("previous") or {}, scope, settings, clients["greengrassv2"]
            )
            result["restored"] = restored["deploymentId"]
            why += f"; {canary['thingGroup']} has its deployment from before back"
        else:
            why += f"; {canary['thingGroup']} was deployed to since, and keeps that deployment"
    if not settled:
        result["rejected"] = reject_version(clients["sagemaker"], plan["modelPackageArn"], why)
    result["lock"] = release_lock(bucket, plan.get("canaryGroup") or plan["thingGroup"], execution_arn)
    result["why"] = why if not settled else f"the promotion ended {status} after {settled[-1]}"
    log_event(logger, "promotion.ended", level=logging.WARNING, version=plan.get("version"), **result)
    return result
