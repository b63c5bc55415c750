"""What the benchmarks share beyond measuring (bench/measure.py): running the device's loop, and reporting."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any


def run_loop(model: str, source: Path, **settings: str) -> tuple[Any, list[dict[str, Any]]]:
    """One run of the device's real loop (``odedge.app.run``) with ``model`` over ``source``: its result and the
    messages it published. As a bench runs it: to a JSON Lines file and a counts file in a temporary folder, health
    hourly (none mid-run); ``settings`` (the component's configuration names) add to those or replace them."""
    from odedge.app import run
    from odedge.config import EdgeConfig

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.jsonl"
        config = EdgeConfig.from_mapping(
            {
                "model_dir": model,
                "source": str(source),
                "publisher": "jsonl",
                "jsonl": str(out),
                "health_interval": "3600",
                "counts_file": str(Path(tmp) / "counts.json"),
                **settings,
            }
        )
        result = run(config, install_signals=False)
        messages = [json.loads(line) for line in out.read_text().splitlines()]
    return result, messages


def report(goal: str, figures: dict[str, Any]) -> dict[str, Any]:
    """The figures and the goal they are read against, printed as JSON (a benchmark's output is its report) and
    returned, the goal last, for a caller that checks them."""
    done = {**figures, "goal": goal}
    print(json.dumps(done, indent=2))  # noqa: T201 - a benchmark's output is its report
    return done
