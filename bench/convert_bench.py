"""Conversion of a full-size ResNet-50 512 artifact: time and peak memory, and the Lambda bundle's zipped size.

Baseline, measured in the same process: opening the same model.tar.gz and reading its three members (the I/O
and decompression every conversion must pay). Goals (issue 3): under 20 s and under 1 GB; bundle under 50 MB.
"""

from __future__ import annotations

import argparse
import json
import tarfile
import tempfile
import time
from pathlib import Path

from bench.measure import peak_rss_mb

REPO = Path(__file__).resolve().parents[1]
SEED = REPO.parent / "shared" / "fixtures" / "seed"
OUT = Path(__file__).resolve().parent / "out"


def build_artifact(path: Path) -> Path:
    """SageMaker's layout: the seed's ResNet-50 512 graph with training heads and seeded random weights."""
    if path.exists():
        return path
    from odctl import mxnet_env

    mxnet_env.call("reference-model", {"kind": "resnet50-seed", "out": str(path), "seed_dir": str(SEED)})
    return path


def read_members(path: Path) -> int:
    with tarfile.open(path) as archive:
        return sum(len(archive.extractfile(m).read()) for m in archive.getmembers() if m.isfile())


def bundle_size_mb() -> float:
    from infra.lambda_bundle import build_bundle, zip_bundle

    with tempfile.TemporaryDirectory() as tmp:
        bundle = build_bundle(REPO / "lambdas" / "convert_model", Path(tmp) / "bundle")
        return zip_bundle(bundle, Path(tmp) / "bundle.zip").stat().st_size / 2**20


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
        "package_mb": sizes,
        "goal": "convert under 20 s and 1 GB; Lambda bundle under 50 MB zipped",
    }
    if not args.skip_bundle:
        report["convert_lambda_bundle_zipped_mb"] = round(bundle_size_mb(), 1)
    print(json.dumps(report, indent=2))  # noqa: T201 - a benchmark's output is its report
    return report


if __name__ == "__main__":
    main()
