"""Progress bars on stderr for long work; silent when stderr is not a terminal or ODCTL_PROGRESS=0."""

from __future__ import annotations

import os
import sys
from typing import Any


def enabled() -> bool:
    setting = os.environ.get("ODCTL_PROGRESS")
    if setting is not None:
        return setting not in ("0", "false", "no")
    return sys.stderr.isatty()


def bar(total: int | None = None, desc: str = "", unit: str = "it") -> Any:
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, disable=not enabled(), leave=False, dynamic_ncols=True)
