"""Soak: 10,000 frames through the real loop with flat memory (resident set growth measured)."""

from __future__ import annotations

import threading
import time

import pytest

from odedge.app import run
from odedge.config import EdgeConfig

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * 4096 / 2**20


def test_ten_thousand_frames_with_flat_memory(scene, tmp_path):
    samples: list[tuple[float, float]] = []
    stop_sampling = threading.Event()

    def sample() -> None:
        while not stop_sampling.wait(0.5):
            samples.append((time.monotonic(), _rss_mb()))

    config = EdgeConfig.from_mapping(
        {
            "model_dir": str(scene["package"]),
            "source": str(scene["video"]),
            "loop": "true",
            "max_frames": "10000",
            "publisher": "jsonl",
            "jsonl": str(tmp_path / "soak.jsonl"),
            "health_interval": "5",
            "snapshot_dir": str(tmp_path / "snaps"),
            "snapshot_interval": "0.2",
            "snapshot_max_mb": "2",
            "capture_dir": str(tmp_path / "capture"),
            "capture_interval": "0.2",
        }
    )
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    result = run(config, install_signals=False)
    stop_sampling.set()
    sampler.join()
    assert result.frames == 10_000
    warm = [rss for _, rss in samples[len(samples) // 5 :]]  # after the first fifth: caches and pools are built
    growth = max(warm) - min(warm)
    assert growth < 25, f"resident memory grew by {growth:.1f} MB over the run"
    snapshots = sum(p.stat().st_size for p in (tmp_path / "snaps").iterdir())
    assert snapshots <= 2 * 2**20  # the snapshot folder stays within its budget
