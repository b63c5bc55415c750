"""Measuring helpers shared by the benchmarks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def peak_rss_mb(code: str) -> float:
    """Peak resident memory of a fresh interpreter running ``code`` (so earlier runs do not count).

    VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the forking parent, VmHWM starts afresh at exec.
    """
    script = code + "\nprint([l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')][0])"
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "LOG_LEVEL": "WARNING"},
        cwd=REPO,
    )
    return int(done.stdout.strip().splitlines()[-1]) / 1024
