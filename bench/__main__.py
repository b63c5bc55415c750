"""Run every benchmark: ``python -m bench`` (or ``make bench``).

The edge and INT8 benches compare ONNX Runtime and OpenVINO with the original project's MXNet way in one process,
so they run in the MXNet environment (a Python 3.11 device's stack with the MXNet backend); the others run here.
The INT8 accuracy and tracking band benches need `make demo` first and run when its data is there.
"""

from __future__ import annotations

import subprocess
import sys

from bench import convert_bench, counting_bench, ingest_bench, int8_accuracy, make_manifest_bench, tracking_band
from odctl import mxnet_env


def main() -> int:
    make_manifest_bench.main(sys.argv[1:])
    convert_bench.main([])
    subprocess.run([str(mxnet_env.interpreter()), "-m", "bench.edge_bench"], check=True)
    subprocess.run([str(mxnet_env.interpreter()), "-m", "bench.int8_bench"], check=True)
    ingest_bench.main([])
    counting_bench.main([])
    if (int8_accuracy.REPO / "demo-work" / "data" / "labels" / "held-out").exists():
        int8_accuracy.main([])
    if (tracking_band.DEMO_MODEL / "model.json").exists():
        tracking_band.main([])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
