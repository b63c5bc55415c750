"""INT8 on the device: the ResNet-50 SSD (seed graph) at 512 and 300 input, on the same frames in one run.

Per input size: the bare forward pass of the FP32 and INT8 models in ONNX Runtime and OpenVINO (an already
preprocessed frame, a warm-up call excluded), the original project's MXNet way (per frame: imread, colour,
resize, float, forward, asnumpy), and the device loop on INT8 with the default backend reading the same JPEG frames
from a folder. Ratios against the FP32 ONNX Runtime bare rate, measured here. Then what bounds INT8: the share of
time per operator type (ONNX Runtime's profiler and OpenVINO's performance counters).
Goals (issue 14): INT8 >= 2.5x the FP32 ONNX Runtime bare rate; the loop >= 0.95 of its bare model; >= 4x the
original project's way. Runs in .venv-mxnet (MXNet, ONNX Runtime and OpenVINO in one process):
python -m bench.int8_bench
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from bench.edge_bench import seeds_way
from bench.inputs import OUT, build_artifact, camera_frames

CLASSES = ["blue box", "yellow box"]


def _resized_artifact(source: Path, size: int) -> Path:
    """The same trained graph and weights with ``image_shape`` changed (SSD's anchors follow the feature maps)."""
    out = source.parent / f"model-{size}.tar.gz"
    if out.exists():
        return out
    members = {}
    with tarfile.open(source) as archive:
        for member in archive.getmembers():
            data = archive.extractfile(member).read()
            if member.name == "hyperparams.json":
                data = json.dumps({**json.loads(data), "image_shape": str(size)}).encode()
            members[member.name] = data
    from odshared.model.convert import make_tarball

    out.write_bytes(make_tarball(members))
    return out


def _package(size: int, frames_dir: Path, calibration_images: int) -> Path:
    from odshared.model.calibration import build_calibration
    from odshared.model.convert import convert

    artifact = _resized_artifact(build_artifact(OUT / "resnet50-512" / "model.tar.gz"), size)
    folder = OUT / f"resnet50-{size}" / "package-int8"
    calibration = lambda s: build_calibration([str(frames_dir)], s, calibration_images)  # noqa: E731
    convert(str(artifact), str(folder), CLASSES, calibration=calibration)
    return folder


def _ort_profile(package, precision: str, blob: np.ndarray, runs: int = 5) -> dict[str, float]:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.enable_profiling = True
    options.profile_file_prefix = str(Path(tempfile.mkdtemp()) / "ort")
    model = str(package.path("onnx_int8" if precision == "int8" else "onnx"))
    session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    for _ in range(runs):
        session.run(None, {"data": blob})
    events = json.loads(Path(session.end_profiling()).read_text())
    by_op: collections.Counter[str] = collections.Counter()
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            by_op[event["args"]["op_name"]] += event["dur"]
    total = sum(by_op.values())
    return {op: round(100 * t / total, 1) for op, t in by_op.most_common(6)}


def _openvino_profile(package, blob: np.ndarray, runs: int = 5) -> dict[str, float]:
    import openvino as ov

    config = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32", "PERF_COUNT": True}
    request = ov.Core().compile_model(str(package.path("onnx_int8")), "CPU", config).create_infer_request()
    by_type: collections.Counter[str] = collections.Counter()
    for _ in range(runs):
        request.infer([blob])
        for info in request.profiling_info:
            by_type[f"{info.node_type} ({info.exec_type.split('_')[0]})"] += info.real_time.total_seconds()
    total = sum(by_type.values())
    return {op: round(100 * t / total, 1) for op, t in by_type.most_common(6)}


def _loop_fps(package_dir: Path, frames_dir: Path, tmp: Path, threads: int) -> tuple[float, dict[str, Any]]:
    from odedge.app import run
    from odedge.config import EdgeConfig

    config = EdgeConfig.from_mapping(
        {
            "model_dir": str(package_dir),
            "source": str(frames_dir),
            "publisher": "jsonl",
            "jsonl": str(tmp / "out.jsonl"),
            "publish_empty": "true",
            "health_interval": "3600",
            "threads": str(threads),
        }
    )
    result = run(config, install_signals=False)  # the default backend and precision: auto, int8
    health = [json.loads(line)["message"] for line in (tmp / "out.jsonl").read_text().splitlines()]
    return result.fps, next(m["runtime"] for m in reversed(health) if "runtime" in m)


def bare(runtime, blob: np.ndarray, runs: int, repeats: int = 3) -> float:
    """Frames per second of the forward pass alone: the best of ``repeats`` runs after three warm-up calls (the
    first calls size thread pools and caches; another process's burst on two cores only ever slows a run)."""
    for _ in range(3):
        runtime.predict(blob)
    best = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(runs):
            runtime.predict(blob)
        best = max(best, runs / (time.perf_counter() - start))
    return best


def _cpu_ms_per_frame(runtime, paths: list[Path], size: int, runs: int) -> dict[str, float]:
    """CPU time (all threads) per frame: the forward pass, and the rest of the loop's work (decode, preprocess,
    postprocess); with the cores, the fastest any loop on this machine can go."""
    from odedge.postprocess import detections
    from odedge.preprocess import preprocess

    blob, _ = preprocess(cv2.imread(str(paths[0])), size)
    runtime.predict(blob)
    start = time.process_time()
    for _ in range(runs):
        rows = runtime.predict(blob)
    inference = (time.process_time() - start) / runs * 1000
    start = time.process_time()
    for path in paths:
        blob, meta = preprocess(cv2.imread(str(path)), size)
        detections(rows, meta, tuple(CLASSES), 0.5)
    rest = (time.process_time() - start) / len(paths) * 1000
    cores = len(os.sched_getaffinity(0))
    return {
        "inference_cpu_ms": round(inference, 1),
        "decode_preprocess_postprocess_cpu_ms": round(rest, 1),
        "cores": cores,
        "cpu_bound_fps": round(cores * 1000 / (inference + rest), 2),
    }


def measure_size(size: int, frames_dir: Path, paths: list[Path], args: argparse.Namespace) -> dict[str, Any]:
    from odedge.model import ModelPackage
    from odedge.preprocess import preprocess
    from odedge.runtimes import OnnxRuntime, OpenVinoRuntime

    package_dir = _package(size, frames_dir, args.calibration_images)
    package = ModelPackage.load(package_dir)
    blob, _ = preprocess(cv2.imread(str(paths[0])), size)
    rates = {
        f"{name}_{precision}": bare(runtime(package, precision=precision), blob, args.runs)
        for name, runtime in (("onnxruntime", OnnxRuntime), ("openvino", OpenVinoRuntime))
        for precision in ("fp32", "int8")
    }
    rates["seed_way_mxnet"] = seeds_way(package_dir, paths, size)
    with tempfile.TemporaryDirectory() as tmp:
        loop, runtime = _loop_fps(package_dir, frames_dir, Path(tmp), args.threads)
    base = rates["onnxruntime_fp32"]
    bare_of_loop = rates[f"{runtime['backend'].replace('onnx', 'onnxruntime')}_{runtime['precision']}"]
    loop_runtime = (OpenVinoRuntime if runtime["backend"] == "openvino" else OnnxRuntime)(package, precision="int8")
    bound = _cpu_ms_per_frame(loop_runtime, paths, size, args.runs)
    return {
        "fps": {k: round(v, 2) for k, v in {**rates, "loop_int8": loop}.items()},
        "vs_onnxruntime_fp32": {k: round(v / base, 2) for k, v in rates.items()},
        "loop": {
            **runtime,
            "threads": args.threads,
            "vs_its_bare_model": round(loop / bare_of_loop, 3),
            "cpu": bound,
            "vs_cpu_bound": round(loop / bound["cpu_bound_fps"], 3),
        },
        "loop_vs_seed_way": round(loop / rates["seed_way_mxnet"], 2),
        "int8_time_share_by_operator": {
            "onnxruntime": _ort_profile(package, "int8", blob),
            "openvino": _openvino_profile(package, blob),
        },
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="bench.int8_bench")
    parser.add_argument("--frames", type=int, default=48, help="JPEG frames (1920x1080) the loop and the seed way read")
    parser.add_argument("--runs", type=int, default=12, help="forward passes per bare measurement")
    parser.add_argument("--calibration-images", type=int, default=24)
    parser.add_argument("--threads", type=int, default=0, help="the loop's runtime threads (0: the runtime's default)")
    parser.add_argument("--sizes", default="512,300")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        frames_dir = Path(tmp) / "frames"
        paths = camera_frames(frames_dir, args.frames)
        report = {
            "model": "ResNet-50 SSD (seed graph, seeded weights), batch 1, CPU",
            "cpu_count": len(os.sched_getaffinity(0)),
            **{f"input_{size}": measure_size(int(size), frames_dir, paths, args) for size in args.sizes.split(",")},
            "goal": "INT8 >= 2.5x ONNX Runtime FP32 bare; loop >= 0.95 of its bare model; loop >= 4x the seed's way",
        }
    print(json.dumps(report, indent=2))  # noqa: T201 - a benchmark's output is its report
    return report


if __name__ == "__main__":
    main()
