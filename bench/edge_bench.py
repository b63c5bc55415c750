"""The device loop's frame rate on the ResNet-50 512 model, against the original project's way and the
bare model, all measured in this one run.

- seed's way: MXNet Module on the deploy graph, per frame cv2.imread, colour conversion, resize, float
  conversion, forward, asnumpy (as the 2019 Greengrass v1 Lambda did);
- ceilings: the bare forward pass of each runtime on an already-preprocessed input;
- the loop: odedge reading the same frames from a folder (capture, preprocessing, inference, publishing).
Goals (issue 6): loop >= 95% of the bare ONNX Runtime frame rate; ONNX Runtime FP32 >= MXNet.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from bench.common import report, run_loop
from bench.inputs import OUT, build_artifact, camera_frames


def seeds_way(package: Path, paths: list[Path], size: int) -> float:
    import mxnet as mx

    symbol = mx.sym.load(str(package / "deploy_model_algo_1-symbol.json"))
    loaded = mx.nd.load(str(package / "deploy_model_algo_1-0000.params"))
    module = mx.mod.Module(symbol, data_names=["data"], label_names=None, context=mx.cpu())
    module.bind(data_shapes=[("data", (1, 3, size, size))], for_training=False)
    module.set_params(
        {k[4:]: v for k, v in loaded.items() if k.startswith("arg:")},
        {k[4:]: v for k, v in loaded.items() if k.startswith("aux:")},
    )
    start = time.perf_counter()
    for path in paths:
        image = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
        image = cv2.resize(image, (size, size)).transpose((2, 0, 1))[np.newaxis, :].astype(np.float32)
        module.forward(mx.io.DataBatch([mx.nd.array(image)]), is_train=False)
        module.get_outputs()[0].asnumpy()
    return len(paths) / (time.perf_counter() - start)


def bare(runtime, blob: np.ndarray, count: int) -> float:
    runtime.predict(blob)  # warm-up
    start = time.perf_counter()
    for _ in range(count):
        runtime.predict(blob)
    return count / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="bench.edge_bench")
    parser.add_argument("--frames", type=int, default=12)
    args = parser.parse_args(argv)
    from odedge.model import ModelPackage
    from odedge.preprocess import preprocess
    from odedge.runtimes import MxnetRuntime, OnnxRuntime
    from odshared.model.convert import convert

    artifact = build_artifact(OUT / "resnet50-512" / "model.tar.gz")
    package_dir = OUT / "resnet50-512" / "package"
    convert(str(artifact), str(package_dir), ["blue box", "yellow box"])
    package = ModelPackage.load(package_dir)
    with tempfile.TemporaryDirectory() as tmp:
        paths = camera_frames(Path(tmp) / "frames", args.frames)
        blob, _ = preprocess(cv2.imread(str(paths[0])), package.input_size)
        onnx_bare = bare(OnnxRuntime(package), blob, args.frames)
        mxnet_bare = bare(MxnetRuntime(package), blob, args.frames)
        seed_fps = seeds_way(package_dir, paths, package.input_size)
        result, _ = run_loop(str(package_dir), Path(tmp) / "frames", publish_empty="true")
        # steady state, like the bare figures (which exclude a warm-up call): frames completed per second
        # between the first and the last processed frame; model loading and the first (slow) run are excluded
        loop_fps = result.fps
    return report(
        "loop >= 0.95 x bare ONNX Runtime; ONNX Runtime >= MXNet",
        {
            "model": "ResNet-50 SSD 512 (seed graph, random weights), FP32, CPU",
            "frames": args.frames,
            "seed_way_mxnet_fps": round(seed_fps, 3),
            "bare_mxnet_forward_fps": round(mxnet_bare, 3),
            "bare_onnxruntime_forward_fps": round(onnx_bare, 3),
            "loop_onnxruntime_fps": round(loop_fps, 3),
            "loop_vs_bare_onnxruntime": round(loop_fps / onnx_bare, 3),
            "loop_vs_seed_way": round(loop_fps / seed_fps, 3),
            "onnxruntime_vs_mxnet_bare": round(onnx_bare / mxnet_bare, 3),
        },
    )


if __name__ == "__main__":
    main()
