"""Conversion of a full-size ResNet-50 512 artifact: time and peak memory, FP32 alone and with the INT8 model
(64 calibration frames), and the Lambda bundles' sizes against Lambda's 250 MB unzipped limit.

Baseline, measured in the same process: opening the same model.tar.gz and reading its three members (the I/O
and decompression every conversion must pay). Goals (issue 3): under 20 s and under 1 GB; (issue 14) the INT8
conversion within the conversion Lambda's 15 minutes and 3008 MB, each bundle under 250 MB unzipped.
"""

from __future__ import annotations

import argparse
import json
import tarfile
import tempfile
import time
from pathlib import Path

from bench.inputs import OUT, build_artifact, camera_frames
from bench.measure import REPO, peak_rss_mb


def read_members(path: Path) -> int:
    with tarfile.open(path) as archive:
        return sum(len(archive.extractfile(m).read()) for m in archive.getmembers() if m.isfile())


def bundle_sizes_mb(function: str) -> dict[str, float]:
    from infra.lambda_bundle import build_bundle, zip_bundle

    with tempfile.TemporaryDirectory() as tmp:
        bundle = build_bundle(REPO / "lambdas" / function, Path(tmp) / "bundle")
        unzipped = sum(p.stat().st_size for p in bundle.rglob("*") if p.is_file())
        zipped = zip_bundle(bundle, Path(tmp) / "bundle.zip").stat().st_size
    return {"unzipped_mb": round(unzipped / 2**20, 1), "zipped_mb": round(zipped / 2**20, 1)}


def calibration_file(folder: Path, frames: int = 64) -> Path:
    """64 generated 1920x1080 frames through the calibration step's own code, written as the workflow writes it."""
    from odshared.model.calibration import build_calibration, write_calibration

    camera_frames(folder / "frames", frames)
    write_calibration(str(folder / "calibration.npz"), build_calibration([str(folder / "frames")], 512, frames))
    return folder / "calibration.npz"


INT8_CONVERT = """
import tempfile
from odshared.model.convert import convert
from odshared.model.quantize import read_calibration
convert({artifact!r}, {out!r}, ['a', 'b'], skip_unchanged=False, calibration=lambda _s: read_calibration({cal!r}))
"""


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="bench.convert_bench")
    parser.add_argument("--skip-bundle", action="store_true", help="do not download wheels for the bundle size")
    args = parser.parse_args(argv)
    from odshared.model.convert import convert

    artifact = build_artifact(OUT / "resnet50-512" / "model.tar.gz")
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        read_members(artifact)
        base_s = time.perf_counter() - start
        start = time.perf_counter()
        convert(str(artifact), tmp, ["blue box", "yellow box"], skip_unchanged=False)
        convert_s = time.perf_counter() - start
        sizes = {p.name: round(p.stat().st_size / 2**20, 1) for p in Path(tmp).iterdir()}
        calibration = calibration_file(Path(tmp) / "calibration")
        int8_code = INT8_CONVERT.format(artifact=str(artifact), out=str(Path(tmp) / "int8"), cal=str(calibration))
        start = time.perf_counter()
        int8_mb = peak_rss_mb(int8_code)
        int8_s = time.perf_counter() - start  # includes the interpreter's start and imports (under a second)
        sizes["model.int8.onnx"] = round((Path(tmp) / "int8" / "model.int8.onnx").stat().st_size / 2**20, 1)
    base_mb = peak_rss_mb(f"from bench.convert_bench import read_members; read_members({str(artifact)!r})")
    conv_mb = peak_rss_mb(
        "import tempfile\nfrom odshared.model.convert import convert\n"
        f"convert({str(artifact)!r}, tempfile.mkdtemp(), ['a', 'b'], skip_unchanged=False)"
    )
    report = {
        "artifact_mb": round(artifact.stat().st_size / 2**20, 1),
        "baseline_read_seconds": round(base_s, 2),
        "convert_seconds": round(convert_s, 2),
        "time_ratio_vs_baseline": round(convert_s / base_s, 2),
        "baseline_peak_rss_mb": round(base_mb, 1),
        "convert_peak_rss_mb": round(conv_mb, 1),
        "memory_ratio_vs_baseline": round(conv_mb / base_mb, 2),
        "convert_with_int8_seconds": round(int8_s, 2),
        "convert_with_int8_peak_rss_mb": round(int8_mb, 1),
        "package_mb": sizes,
        "goal": "convert under 20 s and 1 GB; with INT8 within the Lambda's 15 min and 3008 MB; bundles < 250 MB",
    }
    if not args.skip_bundle:
        report["lambda_bundles"] = {name: bundle_sizes_mb(name) for name in ("convert_model", "prepare_calibration")}
    print(json.dumps(report, indent=2))  # noqa: T201 - a benchmark's output is its report
    return report


if __name__ == "__main__":
    main()
