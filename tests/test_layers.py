"""The layer rule as a checked contract: who may import whom across the project's packages.

The device package ships alone to Greengrass, the Lambdas ship with odshared only, and the CDK app synthesises
without the Lambda runtime; an import across those lines works on a developer machine and fails where it ships.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_import_cycles import imports, module_name

REPO = Path(__file__).resolve().parents[1]
HANDLERS = sorted(p.parent for p in (REPO / "lambdas").glob("*/handler.py"))
SOURCES = {
    "odedge": [REPO / "edge_component" / "odedge"],
    "odshared": [REPO / "lambdas" / "shared" / "odshared"],
    "odctl": [REPO / "scripts" / "odctl"],
    "infra": [REPO / "infra", REPO / "app.py"],
    "handlers": HANDLERS,
}
# top-level names each layer must not import; "handlers" covers any Lambda handler module
FORBIDDEN = {
    "odedge": {"odshared", "odctl", "infra", "handler", "lambdas"},
    "odshared": {"odctl", "infra", "odedge", "handler", "lambdas"},
    "odctl": {"infra", "handler", "lambdas"},
    "handlers": {"odctl", "infra", "odedge", "handler", "lambdas"},
    "infra": {"odctl", "odedge", "handler", "lambdas"},
}
# odshared declarations the CDK app may read at synth: constants and pure helpers, no boto3 or model runtime
INFRA_MAY_IMPORT = {
    "odshared.core.archives",
    "odshared.data.hyperparameters",
    "odshared.fleet.canary",
    "odshared.fleet.columns",
    "odshared.fleet.ledger",
    "odshared.fleet.metrics",
    "odshared.greengrass.recipes",
    "odshared.model.promotion_end",
    "odshared.core.settings",
}
# odedge modules odctl may import, on purpose: the operator runs the device's own code on a workstation (odctl
# device run, evaluate, tracking eval, counting truth, label previews, camera checks) so what it measures is what
# ships; a copy would drift. Listed so a new reach into the device package is a decision, not an accident.
ODCTL_MAY_IMPORT_ODEDGE = {
    "odedge.app",
    "odedge.camera_health",
    "odedge.config",
    "odedge.counting",
    "odedge.drawing",
    "odedge.durable",
    "odedge.errors",
    "odedge.model",
    "odedge.postprocess",
    "odedge.preprocess",
    "odedge.runtimes",
    "odedge.sources",
    "odedge.telemetry",
    "odedge.tracking",
}
# known crossings, each a lazy import inside a function that only runs off-Lambda (scoring on a workstation):
# listed so a new one fails, and so removing one shows here
KNOWN = {
    ("odshared/model/calibration.py", "odedge.preprocess"),
    ("odshared/model/scoring.py", "odedge.runtimes"),
    ("odshared/model/scoring.py", "odedge.model"),
}


def _files(layer: str) -> list[Path]:
    found: list[Path] = []
    for root in SOURCES[layer]:
        found.extend([root] if root.is_file() else sorted(root.rglob("*.py")))
    return found


def _imports(path: Path) -> list[tuple[int, str]]:
    root = next(r for r in (r for rs in SOURCES.values() for r in rs) if path == r or r in path.parents)
    name = module_name(root.name, root, path) if root.is_dir() else path.stem
    return [(lineno, module) for lineno, module, _ in imports(path, name) if module]


def _violations(layer: str) -> list[str]:
    lines: list[str] = []
    for path in _files(layer):
        short = path.relative_to(REPO / "lambdas" / "shared") if layer == "odshared" else path.relative_to(REPO)
        for lineno, module in _imports(path):
            top = module.split(".")[0]
            if (str(short), module) in KNOWN:
                continue
            if top in FORBIDDEN[layer]:
                lines.append(f"{path.relative_to(REPO)}:{lineno}: {layer} must not import {module}")
            elif layer == "infra" and top == "odshared" and module not in INFRA_MAY_IMPORT:
                lines.append(
                    f"{path.relative_to(REPO)}:{lineno}: infra imports {module}, not in INFRA_MAY_IMPORT "
                    "(add it there only if it is a declaration safe to load at synth)"
                )
            elif layer == "odctl" and top == "odedge" and module not in ODCTL_MAY_IMPORT_ODEDGE:
                lines.append(
                    f"{path.relative_to(REPO)}:{lineno}: odctl imports {module}, not in ODCTL_MAY_IMPORT_ODEDGE "
                    "(the device code odctl runs on purpose; add it there only for that)"
                )
    return lines


@pytest.mark.parametrize("layer", sorted(SOURCES))
def test_layer_imports(layer: str) -> None:
    assert not _violations(layer), "layer rule broken:\n" + "\n".join(_violations(layer))


def test_known_crossings_still_exist() -> None:
    """A stale exception would let the same crossing back in unnoticed."""
    present = {(str(p.relative_to(REPO / "lambdas" / "shared")), m) for p in _files("odshared") for _, m in _imports(p)}
    assert KNOWN <= present, f"remove from KNOWN: {sorted(KNOWN - present)}"
