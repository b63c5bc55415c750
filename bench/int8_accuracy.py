"""INT8 accuracy: held-out mAP@0.5 of FP32 and INT8 for the demo's model and, with --resnet50, for a ResNet-50 SSD
trained by train-local on the demo's data (trained once, cached under bench/out/resnet50-demo/; on two CPU cores
one epoch of 354 images took over 20 minutes, so plan hours, or train it on SageMaker and pass --resnet50-artifact).

Needs `make demo` first (its prepared data, its model and its labeled held-out video under demo-work/).
Calibration as the workflow does it: 64 frames from the validation manifest, then the training one.
Goal (issue 14): INT8 within 1 point of FP32. Runs in the operator's environment (training goes through the MXNet
environment): python -m bench.int8_accuracy
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from bench.inputs import OUT
from bench.measure import REPO

CLASSES = ["blue box", "yellow box"]
RESNET_HYPERPARAMETERS = {
    "base_network": "resnet-50",
    "image_shape": 300,
    "mini_batch_size": 16,
    "optimizer": "adam",
    "learning_rate": 0.001,
    "lr_scheduler_factor": 0.1,
}


def _int8_vs_fp32(artifact: Path, package: Path, prepared: Path, held_out: Path) -> dict:
    from odctl.evaluate import evaluate
    from odshared.model.calibration import build_calibration
    from odshared.model.convert import convert

    manifests = [str(prepared / "validation.manifest"), str(prepared / "train.manifest")]
    convert(str(artifact), str(package), CLASSES, calibration=lambda size: build_calibration(manifests, size))
    report = evaluate(str(package), str(held_out), backend="onnx")
    return {
        "images": report["images"],
        "mAP@0.5": {p: round(r["mAP"], 4) for p, r in report["precisions"].items()},
        "AP_per_class": {
            p: {k: round(v["ap"], 4) for k, v in r["per_class"].items()} for p, r in report["precisions"].items()
        },
        "int8_change_points": round(100 * report["int8_mAP_change"], 2),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="bench.int8_accuracy")
    parser.add_argument("--demo", default=str(REPO / "demo-work"), help="the workdir `make demo` used")
    parser.add_argument("--resnet50", action="store_true", help="also a ResNet-50 300 model (trained on first use)")
    parser.add_argument("--resnet50-artifact", help="a ResNet-50 model.tar.gz trained on the demo's data elsewhere")
    parser.add_argument("--epochs", type=int, default=20, help="ResNet-50 training epochs (first run only)")
    args = parser.parse_args(argv)
    from odctl.train_local import train_local

    data = Path(args.demo) / "data"
    prepared, held_out = data / "prepared", data / "labels" / "held-out" / "output.manifest"
    if not held_out.exists():
        raise SystemExit(f"{held_out}: missing; run `make demo` first")
    report: dict = {"held_out": str(held_out)}
    report["demo_model"] = _int8_vs_fp32(
        data / "training" / "demo-job" / "output" / "model.tar.gz", OUT / "demo-int8" / "package", prepared, held_out
    )
    report["goal"] = "INT8 held-out mAP@0.5 within 1 point of FP32"
    if not (args.resnet50 or args.resnet50_artifact):
        print(json.dumps(report, indent=2))  # noqa: T201 - a benchmark's output is its report
        return report
    artifact = Path(args.resnet50_artifact) if args.resnet50_artifact else OUT / "resnet50-demo" / "model.tar.gz"
    trained_s = None
    if not artifact.exists():
        start = time.perf_counter()
        hyper = {**RESNET_HYPERPARAMETERS, "epochs": args.epochs, "lr_scheduler_step": str(int(args.epochs * 0.75))}
        train_local(
            str(prepared / "train.manifest"),
            str(prepared / "validation.manifest"),
            str(artifact),
            hyper,
            classes=CLASSES,
        )
        trained_s = round(time.perf_counter() - start)
    report["resnet50_300"] = {
        **_int8_vs_fp32(artifact, OUT / "resnet50-demo" / "package", prepared, held_out),
        "hyperparameters": {**RESNET_HYPERPARAMETERS, "epochs": args.epochs},
        "training_seconds_this_run": trained_s,
    }
    print(json.dumps(report, indent=2))  # noqa: T201 - a benchmark's output is its report
    return report


if __name__ == "__main__":
    main()
