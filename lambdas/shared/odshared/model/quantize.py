"""The INT8 model: ONNX Runtime static quantization (QDQ) calibrated on real frames.

QDQ keeps the model a plain ONNX file that both device runtimes read: ONNX Runtime fuses each
Dequantize -> Conv -> Quantize into an integer convolution, OpenVINO turns the same pairs into its own INT8
kernels. Only convolutions are quantized (per output channel): they are nearly all of the cost, and the
detection block after them (softmax, box decoding, NMS) keeps FP32, so boxes are decoded as the FP32 model does.
The frames come from :mod:`odshared.model.calibration` (already through the device's preprocessing), so this
module needs numpy and ONNX Runtime only: the conversion Lambda's bundle holds no OpenCV.
"""

from __future__ import annotations

import io
import json
import logging
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from odshared.core import storage
from odshared.core.errors import InputDataError, StorageError
from odshared.core.log import log_event

logger = logging.getLogger(__name__)


class CalibrationError(InputDataError):
    """The calibration data cannot be read; the message names the manifest line, folder, image or file."""


@dataclass(frozen=True)
class Calibration:
    """Calibration frames as the network sees them, (N, 3, S, S) uint8 (the device's blobs are these values as
    float32), and where they came from: recorded in model.json beside the INT8 file."""

    frames: np.ndarray
    source: str
    images: tuple[str, ...]
    available: int

    def describe(self) -> dict[str, Any]:
        return {"source": self.source, "images": len(self.images), "available": self.available}

    def to_bytes(self) -> bytes:
        buffer = io.BytesIO()
        meta = json.dumps({"source": self.source, "images": list(self.images), "available": self.available})
        np.savez_compressed(buffer, frames=self.frames, meta=np.array(meta))
        return buffer.getvalue()


def read_calibration(uri: str) -> Calibration:
    """A calibration file written by :func:`odshared.model.calibration.write_calibration`."""
    try:
        with np.load(io.BytesIO(storage.read_bytes(uri)), allow_pickle=False) as saved:
            frames, meta = saved["frames"], json.loads(str(saved["meta"]))
        return Calibration(frames, meta["source"], tuple(meta["images"]), int(meta["available"]))
    except StorageError as exc:
        raise CalibrationError(f"calibration file {uri}: {exc}") from exc
    except (ValueError, KeyError, OSError) as exc:
        raise CalibrationError(f"calibration file {uri}: not a calibration file ({exc})") from exc


class _Reader:
    """onnxruntime.quantization's CalibrationDataReader protocol over the frames, one at a time."""

    def __init__(self, input_name: str, frames: np.ndarray) -> None:
        self.input_name = input_name
        self.frames: Iterator[np.ndarray] = iter(frames)

    def get_next(self) -> dict[str, np.ndarray] | None:
        frame = next(self.frames, None)
        return None if frame is None else {self.input_name: frame[np.newaxis].astype(np.float32)}


def quantize(onnx_bytes: bytes, calibration: Calibration, input_name: str = "data") -> bytes:
    """The FP32 model -> its QDQ INT8 twin: U8 activations (asymmetric), S8 per-channel weights, Conv only."""
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    with tempfile.TemporaryDirectory(prefix="quantize-") as tmp:
        fp32, prepared, int8 = (Path(tmp) / name for name in ("fp32.onnx", "prepared.onnx", "int8.onnx"))
        fp32.write_bytes(onnx_bytes)
        # folds constants and infers shapes, as ONNX Runtime's quantization guide advises before calibrating
        quant_pre_process(str(fp32), str(prepared), skip_symbolic_shape=True)
        quantize_static(
            str(prepared),
            str(int8),
            _Reader(input_name, calibration.frames),
            quant_format=QuantFormat.QDQ,
            op_types_to_quantize=["Conv"],
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            # no CalibMaxIntermediateOutputs: ONNX Runtime (1.20-1.31) drops the batches it holds when that limit
            # is reached instead of folding them into ranges; MinMax keeps only per-tensor min/max per frame anyway
        )
        result = int8.read_bytes()
    log_event(logger, "quantize.done", **calibration.describe(), fp32_bytes=len(onnx_bytes), int8_bytes=len(result))
    return result
