"""``python -m odedge [--flags]``: how the Greengrass recipe's Run step (and ``odctl detect``) starts the loop."""

from __future__ import annotations

import logging
import os
import sys

from .config import ConfigError, from_args
from .model import ModelError
from .sources import SourceError
from .telemetry import configure_logging, log_event


def main(argv: list[str] | None = None) -> int:
    configure_logging(os.environ.get("LOG_LEVEL", "INFO"))
    logger = logging.getLogger("odedge")
    try:
        config = from_args(argv)
        from .app import run

        result = run(config)
    except (ConfigError, ModelError, SourceError) as exc:
        log_event(logger, "startup.failed", level=logging.ERROR, error=str(exc))
        sys.stderr.write(f"odedge: error: {exc}\n")
        return 2
    log_event(logger, "exit", frames=result.frames, stopped_by=result.stopped_by)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
