"""Model runtimes behind one interface: ONNX Runtime, OpenVINO (x86-64 default) and MXNet (the original project's
deploy graph), each running the FP32 model or, where the package has one, the INT8 model."""

from __future__ import annotations

import abc
import importlib.util
import platform
from dataclasses import dataclass
from typing import Any

import numpy as np

from .model import ModelError, ModelPackage

BACKEND_CHOICES = ("auto", "onnx", "openvino", "mxnet")
PRECISIONS = ("fp32", "int8")
# model.json "files" key of each precision's ONNX model
MODEL_KEYS = {"fp32": "onnx", "int8": "onnx_int8"}
# where `auto` picks OpenVINO: measured faster than ONNX Runtime there on FP32 and INT8 (bench/int8_bench.py)
OPENVINO_MACHINES = ("x86_64", "amd64")


@dataclass(frozen=True)
class RuntimeChoice:
    """What runs, and why it differs from what the configuration asked (reported in health messages)."""

    backend: str
    precision: str
    fallback: str = ""

    def describe(self) -> dict[str, str]:
        described = {"backend": self.backend, "precision": self.precision}
        return {**described, "fallback": self.fallback} if self.fallback else described


def choose(backend: str, precision: str, package: ModelPackage, withheld_ok: bool = False) -> RuntimeChoice:
    """Resolve ``auto`` and fall back to FP32 where the package or the backend has no INT8 model, or where the
    promotion gate withheld INT8 (``withheld_ok``: run it anyway, as scoring does)."""
    if backend not in BACKEND_CHOICES:
        raise ModelError(f"unknown model backend {backend!r} (expected one of {list(BACKEND_CHOICES)})")
    if precision not in PRECISIONS:
        raise ModelError(f"unknown precision {precision!r} (expected one of {list(PRECISIONS)})")
    if backend == "auto":
        openvino_here = platform.machine().lower() in OPENVINO_MACHINES and importlib.util.find_spec("openvino")
        backend = "openvino" if openvino_here else "onnx"
    if precision == "int8" and backend == "mxnet":
        return RuntimeChoice(backend, "fp32", "the mxnet backend runs the FP32 deploy graph only")
    if precision == "int8" and MODEL_KEYS["int8"] not in package.files:
        return RuntimeChoice(backend, "fp32", "the model package has no INT8 model (convert with --int8)")
    if precision == "int8" and package.int8_withheld and not withheld_ok:
        return RuntimeChoice(backend, "fp32", f"the promotion gate withheld INT8: {package.int8_withheld}")
    return RuntimeChoice(backend, precision)


class Runtime(abc.ABC):
    """Runs the network on a preprocessed (1,3,S,S) batch and returns (anchors, 6) detection rows."""

    name = "abstract"

    def __init__(self, package: ModelPackage, precision: str = "fp32") -> None:
        self.package = package
        self.choice = RuntimeChoice(self.name, precision)

    @abc.abstractmethod
    def predict(self, blob: np.ndarray) -> np.ndarray: ...

    def _check_input(self, shape: list[Any], model: str) -> None:
        expected = [1, 3, self.package.input_size, self.package.input_size]
        if [int(d) if str(d).isdigit() else d for d in shape] != expected:
            raise ModelError(f"{model}: input shape {shape} does not match model.json ({expected})")


class OnnxRuntime(Runtime):
    name = "onnx"

    def __init__(self, package: ModelPackage, threads: int | None = None, precision: str = "fp32") -> None:
        super().__init__(package, precision)
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            options.intra_op_num_threads = threads
        options.log_severity_level = 3
        model = str(package.path(MODEL_KEYS[precision]))
        self.session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        model_input = self.session.get_inputs()[0]
        self._check_input(list(model_input.shape), model)
        self.input_name = model_input.name
        self.output_name = self.session.get_outputs()[0].name

    def predict(self, blob: np.ndarray) -> np.ndarray:
        rows: np.ndarray = self.session.run([self.output_name], {self.input_name: blob})[0][0]
        return rows


class OpenVinoRuntime(Runtime):
    """OpenVINO reads the same ONNX files; the INT8 model's QDQ pairs become its own integer kernels."""

    name = "openvino"

    def __init__(self, package: ModelPackage, threads: int | None = None, precision: str = "fp32") -> None:
        super().__init__(package, precision)
        try:
            import openvino as ov
        except ImportError as exc:
            raise ModelError("the openvino backend needs the openvino package (pip install openvino)") from exc
        model = str(package.path(MODEL_KEYS[precision]))
        # one frame at a time: the latency hint, with the configured threads (0: OpenVINO's own choice). f32: on
        # CPUs with BF16 (AVX512-BF16, AMX) OpenVINO would otherwise run "FP32" models in bfloat16, which is faster
        # but another model's numbers; INT8 keeps its non-quantized operations (the detection block) in FP32 too
        config: dict[str, Any] = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32"}
        if threads:
            config["INFERENCE_NUM_THREADS"] = threads
        compiled = ov.Core().compile_model(model, "CPU", config)
        self._check_input(list(compiled.input(0).get_partial_shape().to_shape()), model)
        self.request = compiled.create_infer_request()
        self.output = compiled.output(0)

    def predict(self, blob: np.ndarray) -> np.ndarray:
        rows: np.ndarray = self.request.infer([blob])[self.output][0]
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


def create_runtime(
    backend: str, package: ModelPackage, threads: int | None = None, precision: str = "fp32", withheld_ok: bool = False
) -> Runtime:
    """The runtime for a resolved choice (:func:`choose`); ``threads``: intra-op threads, None for the default."""
    choice = choose(backend, precision, package, withheld_ok)
    runtime: Runtime
    if choice.backend == "mxnet":
        runtime = MxnetRuntime(package)
    else:
        runtime_class = OpenVinoRuntime if choice.backend == "openvino" else OnnxRuntime
        runtime = runtime_class(package, threads, choice.precision)
    runtime.choice = choice  # with the reason, where it is not what was asked
    return runtime
