"""``python -m odmxnet COMMAND REQUEST.json RESULT.json``: the MXNet environment's narrow interface.

The result file holds ``{"result": ...}``, or ``{"error": "..."}`` for input the user can fix; a crash leaves no
result file and its traceback on stderr.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

from odshared.core.errors import OdError
from odshared.core.log import configure


def _train(request: dict[str, Any]) -> Any:
    from odctl.train_local import TrainRequest

    from .trainer import train

    return train(TrainRequest(**request))


def _reference(name: str) -> Callable[[dict[str, Any]], Any]:
    def run(request: dict[str, Any]) -> Any:
        from . import reference

        return getattr(reference, name)(**request)

    return run


COMMANDS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "train": _train,
    "reference-model": _reference("reference_model"),
    "deploy-graph": _reference("deploy_graph"),
    "forward": _reference("forward"),
    "multibox-detection": _reference("multibox_detection"),
}


def main(argv: list[str]) -> int:
    if len(argv) != 3 or argv[0] not in COMMANDS:
        sys.stderr.write(f"usage: python -m odmxnet {{{','.join(COMMANDS)}}} REQUEST.json RESULT.json\n")
        return 2
    command, request_path, result_path = argv
    configure()
    try:
        outcome = {"result": COMMANDS[command](json.loads(open(request_path).read()))}
    except (OdError, ValueError) as exc:
        outcome = {"error": str(exc)}
    with open(result_path, "w") as handle:
        json.dump(outcome, handle)
    return 0 if "result" in outcome else 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
