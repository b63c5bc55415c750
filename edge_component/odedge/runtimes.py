"""Model runtimes behind one interface: ONNX Runtime (default) and MXNet (the original project's deploy graph)."""

from __future__ import annotations

import abc
from typing import Any

import numpy as np

from .model import ModelError, ModelPackage


class Runtime(abc.ABC):
    """Runs the network on a preprocessed (1,3,S,S) batch and returns (anchors, 6) detection rows."""

    name = "abstract"

    def __init__(self, package: ModelPackage) -> None:
        self.package = package

    @abc.abstractmethod
    def predict(self, blob: np.ndarray) -> np.ndarray: ...


class OnnxRuntime(Runtime):
    name = "onnx"

    def __init__(self, package: ModelPackage, threads: int | None = None) -> None:
        super().__init__(package)
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            options.intra_op_num_threads = threads
        options.log_severity_level = 3
        self.session = ort.InferenceSession(str(package.path("onnx")), options, providers=["CPUExecutionProvider"])
        model_input = self.session.get_inputs()[0]
        expected = [1, 3, package.input_size, package.input_size]
        if list(model_input.shape) != expected:
            raise ModelError(
                f"{package.path('onnx')}: input shape {model_input.shape} does not match model.json ({expected})"
            )
        self.input_name = model_input.name
        self.output_name = self.session.get_outputs()[0].name

    def predict(self, blob: np.ndarray) -> np.ndarray:
        rows: np.ndarray = self.session.run([self.output_name], {self.input_name: blob})[0][0]
        return rows


class MxnetRuntime(Runtime):
    """The deploy graph through MXNet's Module API (optional dependency, as on the original devices)."""

    name = "mxnet"

    def __init__(self, package: ModelPackage) -> None:
        super().__init__(package)
        try:
            import mxnet as mx
        except ImportError as exc:
            raise ModelError("the mxnet backend needs the mxnet package (pip install mxnet==1.9.1)") from exc
        symbol = mx.sym.load(str(package.path("mxnet_symbol")))
        loaded = mx.nd.load(str(package.path("mxnet_params")))
        args = {k[4:]: v for k, v in loaded.items() if k.startswith("arg:")}
        aux = {k[4:]: v for k, v in loaded.items() if k.startswith("aux:")}
        size = package.input_size
        self.module = mx.mod.Module(symbol, data_names=["data"], label_names=None, context=mx.cpu())
        self.module.bind(data_shapes=[("data", (1, 3, size, size))], for_training=False)
        self.module.set_params(args, aux, allow_missing=False)
        self._mx = mx

    def predict(self, blob: np.ndarray) -> np.ndarray:
        batch = self._mx.io.DataBatch([self._mx.nd.array(blob)])
        self.module.forward(batch, is_train=False)
        rows: np.ndarray = self.module.get_outputs()[0].asnumpy()[0]
        return rows


BACKENDS = {"onnx": OnnxRuntime, "mxnet": MxnetRuntime}


def create_runtime(backend: str, package: ModelPackage, **options: Any) -> Runtime:
    if backend not in BACKENDS:
        raise ModelError(f"unknown model backend {backend!r} (expected one of {sorted(BACKENDS)})")
    if backend == "onnx":
        return OnnxRuntime(package, options.get("threads"))
    runtime: Runtime = BACKENDS[backend](package)
    return runtime
