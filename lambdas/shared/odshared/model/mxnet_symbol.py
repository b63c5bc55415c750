"""MXNet symbol JSON: parsing, and the surgery that turns SageMaker's training graph into the deploy graph.

The deploy graph keeps every node that feeds ``multibox_cls_pred``, ``multibox_loc_pred`` and
``multibox_anchors`` (in the file's topological order), then appends ``cls_prob`` (SoftmaxActivation over the
class axis) and ``detection`` (MultiBoxDetection) — what apache/mxnet's ``example/ssd/deploy.py`` builds with
MXNet, done here on the JSON so the Lambda needs no MXNet (REFERENCE.md A7).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from odshared.core.errors import InputDataError
from odshared.model.anchors import VARIANCES

HEAD_NAMES = ("multibox_cls_pred", "multibox_loc_pred", "multibox_anchors")


class SymbolError(InputDataError):
    """A symbol file cannot be parsed or lacks what the conversion needs."""


class UnsupportedOperatorError(SymbolError):
    """The graph uses an operator the converter does not know."""


@dataclass
class Node:
    op: str
    name: str
    inputs: list[list[int]]
    attrs: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"op": self.op, "name": self.name}
        if self.attrs:
            out["attrs"] = dict(self.attrs)
        out["inputs"] = [list(i) for i in self.inputs]
        return out


@dataclass
class Symbol:
    nodes: list[Node]
    heads: list[list[int]]
    attrs: dict[str, Any] = field(default_factory=dict)
    source: str = "<symbol>"

    @classmethod
    def loads(cls, text: str, source: str = "<symbol>") -> Symbol:
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SymbolError(f"{source}: not valid JSON ({exc.msg} at line {exc.lineno})") from exc
        if not isinstance(doc, dict) or "nodes" not in doc or "heads" not in doc:
            raise SymbolError(f"{source}: not an MXNet symbol file (needs 'nodes' and 'heads')")
        nodes = []
        for index, raw in enumerate(doc["nodes"]):
            try:
                attrs = raw.get("attrs") or raw.get("attr") or raw.get("param") or {}
                nodes.append(
                    Node(
                        raw["op"],
                        raw["name"],
                        [list(i) for i in raw.get("inputs", [])],
                        {str(k): str(v) for k, v in attrs.items()},
                    )
                )
            except (KeyError, TypeError, AttributeError) as exc:
                raise SymbolError(f"{source}: node {index} is malformed ({exc})") from exc
        for index, node in enumerate(nodes):
            for ref in node.inputs:
                if not 0 <= ref[0] < index:
                    raise SymbolError(
                        f"{source}: node {index} ({node.name}) has input {ref[0]} that is not an earlier node"
                    )
        return cls(nodes, [list(h) for h in doc["heads"]], dict(doc.get("attrs") or {}), source)

    def dumps(self) -> str:
        doc = {
            "nodes": [node.to_json() for node in self.nodes],
            "arg_nodes": [i for i, node in enumerate(self.nodes) if node.op == "null"],
            "heads": self.heads,
        }
        if self.attrs:
            doc["attrs"] = self.attrs
        return json.dumps(doc, indent=2)

    def index(self, name: str) -> int:
        for i, node in enumerate(self.nodes):
            if node.name == name:
                return i
        raise SymbolError(f"{self.source}: no node named {name!r}")

    def find(self, name: str) -> Node | None:
        return next((node for node in self.nodes if node.name == name), None)

    def variables(self) -> list[str]:
        return [node.name for node in self.nodes if node.op == "null"]

    def aux_names(self) -> set[str]:
        """Variables used as auxiliary states (BatchNorm moving statistics)."""
        aux = set()
        for node in self.nodes:
            if node.op in ("BatchNorm", "SyncBatchNorm", "_contrib_SyncBatchNorm"):
                for ref in node.inputs[3:5]:
                    aux.add(self.nodes[ref[0]].name)
        return aux


def parse_tuple(text: str | None, default: tuple[float, ...] = ()) -> tuple[float, ...]:
    if text is None:
        return default
    cleaned = text.strip().strip("()[]")
    return tuple(float(x) for x in cleaned.split(",") if x.strip()) if cleaned else ()


def parse_ints(text: str | None, default: tuple[int, ...] = ()) -> tuple[int, ...]:
    return tuple(int(x) for x in parse_tuple(text, tuple(float(d) for d in default)))


def parse_bool(text: str | None, default: bool = False) -> bool:
    if text is None:
        return default
    return text.strip().lower() in ("true", "1")


@dataclass(frozen=True)
class DetectionSettings:
    """MultiBoxDetection's parameters; defaults are MXNet's own."""

    nms_threshold: float = 0.5
    force_suppress: bool = False
    nms_topk: int = -1
    threshold: float = 0.01
    clip: bool = True
    variances: tuple[float, ...] = VARIANCES

    @classmethod
    def from_attrs(cls, attrs: dict[str, str]) -> DetectionSettings:
        return cls(
            nms_threshold=float(attrs.get("nms_threshold", 0.5)),
            force_suppress=parse_bool(attrs.get("force_suppress"), False),
            nms_topk=int(float(attrs.get("nms_topk", -1))),
            threshold=float(attrs.get("threshold", 0.01)),
            clip=parse_bool(attrs.get("clip"), True),
            variances=parse_tuple(attrs.get("variances"), VARIANCES),
        )

    def to_attrs(self) -> dict[str, str]:
        return {
            "clip": str(self.clip),
            "force_suppress": str(self.force_suppress),
            "nms_threshold": repr(self.nms_threshold),
            "nms_topk": str(self.nms_topk),
            "threshold": repr(self.threshold),
            "variances": "(" + ", ".join(repr(v) for v in self.variances) + ")",
        }

    def validate(self) -> None:
        if not 0 < self.nms_threshold <= 1:
            raise SymbolError(f"nms_threshold must be in (0, 1], got {self.nms_threshold}")
        if not 0 <= self.threshold < 1:
            raise SymbolError(f"the score threshold must be in [0, 1), got {self.threshold}")
        if len(self.variances) != 4:
            raise SymbolError(f"variances must have 4 values, got {self.variances}")


def detection_settings(symbol: Symbol, **overrides: Any) -> DetectionSettings:
    """The training graph's own ``detection`` node settings (what SageMaker's endpoint applies), overridden."""
    node = symbol.find("detection")
    base = (
        DetectionSettings.from_attrs(node.attrs)
        if node is not None and "MultiBoxDetection" in node.op
        else (DetectionSettings())
    )
    values = {**base.__dict__, **{k: v for k, v in overrides.items() if v is not None}}
    settings = DetectionSettings(**values)
    settings.validate()
    return settings


def to_deploy(train: Symbol, settings: DetectionSettings) -> Symbol:
    """Cut the training heads and attach cls_prob + detection."""
    missing = [name for name in HEAD_NAMES if train.find(name) is None]
    if missing:
        raise SymbolError(f"{train.source}: not an SSD graph in SageMaker's layout: no node {', '.join(missing)}")
    keep: set[int] = set()
    stack = [train.index(name) for name in HEAD_NAMES]
    while stack:
        current = stack.pop()
        if current in keep:
            continue
        keep.add(current)
        stack.extend(ref[0] for ref in train.nodes[current].inputs)
    order = sorted(keep)
    remap = {old: new for new, old in enumerate(order)}
    nodes = [
        Node(
            train.nodes[old].op,
            train.nodes[old].name,
            [[remap[ref[0]], ref[1], ref[2] if len(ref) > 2 else 0] for ref in train.nodes[old].inputs],
            dict(train.nodes[old].attrs),
        )
        for old in order
    ]
    cls_pred, loc_pred, anchors = (remap[train.index(name)] for name in HEAD_NAMES)
    nodes.append(Node("SoftmaxActivation", "cls_prob", [[cls_pred, 0, 0]], {"mode": "channel"}))
    nodes.append(
        Node(
            "_contrib_MultiBoxDetection",
            "detection",
            [[len(nodes) - 1, 0, 0], [loc_pred, 0, 0], [anchors, 0, 0]],
            settings.to_attrs(),
        )
    )
    return Symbol(nodes, [[len(nodes) - 1, 0, 0]], dict(train.attrs), train.source)
