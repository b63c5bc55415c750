"""What a Lambda learns from where it runs: its account, region and partition (from its own ARN) and the settings
the stack put in its environment, read once and checked, with an error that names the variable."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from odshared.core.errors import OdError

T = TypeVar("T")


class LambdaSettingsError(OdError):
    """The function's environment lacks a setting the stack should have set, or holds an unusable value."""


@dataclass(frozen=True)
class FunctionScope:
    partition: str
    region: str
    account: str

    @classmethod
    def of(cls, context: Any) -> FunctionScope:
        """``arn:<partition>:lambda:<region>:<account>:function:<name>`` of the running function."""
        arn = getattr(context, "invoked_function_arn", None)
        if not arn:
            raise LambdaSettingsError("no Lambda context: the function's ARN names its account and region")
        partition, _, region, account = arn.split(":")[1:5]
        return cls(partition, region, account)


def setting(
    name: str,
    parse: Callable[[str], T] = str,  # type: ignore[assignment]
    default: str | None = None,
    variables: Mapping[str, str] | None = None,
) -> T:
    """``name`` from the function's environment, or from ``variables``: its configuration as another reader (odctl)
    got it, read with the same checks and messages."""
    raw = (os.environ if variables is None else variables).get(name, default)
    if raw is None:
        raise LambdaSettingsError(f"environment variable {name}: not set (the stack sets it; redeploy the stack)")
    try:
        return parse(raw)
    except (ValueError, TypeError) as exc:
        raise LambdaSettingsError(f"environment variable {name}={raw!r}: {exc}") from exc


def json_setting(name: str, default: str | None = None, variables: Mapping[str, str] | None = None) -> Any:
    return setting(name, json.loads, default, variables)
