"""The ONNX graph being built: its nodes, initializers, and the constants folded with numpy on the way."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from odshared.model.mxnet_symbol import Node, Symbol

INPUT_NAME = "data"


@dataclass
class GraphBuilder:
    symbol: Symbol
    params: Mapping[str, np.ndarray]
    shapes: list[tuple[int, ...]]
    nodes: list[Any] = field(default_factory=list)
    initializers: dict[str, np.ndarray] = field(default_factory=dict)
    consts: dict[str, np.ndarray] = field(default_factory=dict)
    counter: int = 0

    def fresh(self, base: str) -> str:
        self.counter += 1
        return f"{base}__{self.counter}"

    def const(self, name: str, value: np.ndarray) -> str:
        unique = self.fresh(name) if name in self.initializers else name
        self.initializers[unique] = np.asarray(value)
        return unique

    def add(self, op: str, inputs: list[str], name: str, outputs: list[str] | None = None, **attrs: Any) -> str:
        from onnx import helper

        outputs = outputs or [name]
        self.nodes.append(helper.make_node(op, inputs, outputs, name=self.fresh(name), **attrs))
        return outputs[0]

    def materialise(self, name: str) -> str:
        """A folded constant used by a real operator becomes an initializer."""
        if name in self.consts and name not in self.initializers:
            self.initializers[name] = self.consts[name].astype(np.float32)
        return name

    def weight(self, node: Node, position: int, transform: Any = None) -> str:
        """The parameter feeding ``node``'s input ``position``, as an initializer (optionally transformed)."""
        var = self.symbol.nodes[node.inputs[position][0]].name
        value = np.asarray(self.params.get(var), dtype=np.float32)
        return self.const(var, transform(value) if transform else value)

    def param_or_value(self, node: Node, position: int, value: str) -> str:
        """A broadcast operand: the parameter itself when the input is a variable, else the computed value."""
        source = self.symbol.nodes[node.inputs[position][0]]
        if source.op == "null" and source.name != INPUT_NAME:
            return self.const(source.name, np.asarray(self.params[source.name], np.float32))
        return value

    def ints(self, name: str, values: list[int]) -> str:
        return self.const(name, np.array(values, np.int64))

    def unsqueeze(self, value: str, axes: list[int], name: str) -> str:
        return self.add("Unsqueeze", [value, self.ints(f"{name}_axes", axes)], name)

    def slice(self, value: str, start: int, end: int, axis: int, name: str) -> str:
        starts, ends, axes = (self.ints(f"{name}_{k}", [v]) for k, v in (("s", start), ("e", end), ("a", axis)))
        return self.add("Slice", [value, starts, ends, axes], name)
