"""Soak: 10,000 frames through the real loop with flat memory (resident set growth measured)."""

from __future__ import annotations

import json
import logging
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]


# The loop runs in a process of its own, as on the device: the suite's own process holds what earlier tests left
# (servers' threads, caches, garbage a collection frees mid-run) and its resident set moved by 40 MB under a loop
# that, alone, holds flat to 0.1 MB.
_SOAK = """
import json, sys, threading
from odedge.app import run
from odedge.config import EdgeConfig

def rss_mb():
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * 4096 / 2**20

samples, stop = [], threading.Event()
def sample():
    while not stop.wait(0.5):
        samples.append(rss_mb())
threading.Thread(target=sample, daemon=True).start()
result = run(EdgeConfig.from_mapping(json.loads(sys.argv[1])), install_signals=False)
stop.set()
print(json.dumps({"frames": result.frames, "rss_mb": samples}))
"""


def test_ten_thousand_frames_with_flat_memory(scene, tmp_path):
    config = {
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
    done = subprocess.run(
        [sys.executable, "-c", _SOAK, json.dumps(config)], capture_output=True, text=True, timeout=900, check=True
    )
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["frames"] == 10_000
    samples = result["rss_mb"]
    assert len(samples) >= 20  # sampled through the run (twice a second), not a vacuous pass
    warm = samples[len(samples) // 5 :]  # after the first fifth: caches and pools are built
    growth = max(warm) - min(warm)
    assert growth < 25, f"resident memory grew by {growth:.1f} MB over the run"
    snapshots = sum(p.stat().st_size for p in (tmp_path / "snaps").iterdir())
    assert snapshots <= 2 * 2**20  # the snapshot folder stays within its budget


def test_twenty_thousand_tracks_leave_no_state_behind(tmp_path, caplog):
    """Boxes walk in at the left, cross the middle line and leave at the right, eight in view at a time: 20,000
    tracks through the tracker, the counter and the outbox (drained to a file by the real sender). What the
    tracker and the counter hold stays what is in view, and traced memory stays flat."""
    import tracemalloc

    from odedge.counting import Counter, Line
    from odedge.messages import CountsOutbox
    from odedge.outbox import Outbox
    from odedge.postprocess import Detection
    from odedge.publishers import JsonlTransport, OutboxSender
    from odedge.telemetry import Counters
    from odedge.tracking import Tracker

    # an INFO line per crossing would pile up in pytest's log capture (where an earlier test left the root logger at
    # INFO) and be measured as the loop's memory
    caplog.set_level(logging.WARNING)
    counters = Counters()
    outbox = Outbox("", 10_000, counters)
    sender = OutboxSender(outbox, JsonlTransport(str(tmp_path / "counts.jsonl")), counters)
    tracker = Tracker(high=0.5, low=0.1, max_lost=5)
    counter = Counter([Line("door", (0.5, 0.0), (0.5, 1.0))], [], outbox=CountsOutbox(outbox, "dev", "od/dev/counts"))
    step, spacing, lanes = 20, 2, 8  # px per frame; a new box every 2 frames; 8 lanes so boxes never overlap
    frames = 20_000 * spacing + 640 // step
    tracemalloc.start()
    held, traced = [], []
    for frame in range(frames):
        boxes = []
        first = -(-max(0, frame - 640 // step) // spacing) * spacing  # box k starts at frame k * spacing
        for start in range(first, min(frame, 20_000 * spacing - 1) + 1, spacing):
            x = (frame - start) * step
            y = 20 + 40 * ((start // spacing) % lanes)
            boxes.append(Detection("box", 0, 0.9, (x, y, x + 50, y + 30)))
        counter.observe(tracker.update(boxes), (640, 360), float(frame))
        counter.forget(tracker.ended)
        if frame % 4000 == 0:
            assert sender.flush(30)  # measure what is held, not a backlog the sender thread has yet to drain
            held.append((len(tracker.tracks), len(counter.sides)))
            traced.append(tracemalloc.get_traced_memory()[0])
    tracemalloc.stop()
    assert sender.flush(30)
    sender.close()
    assert 20_000 <= tracker.next_id - 1 <= 20_100 and counter.seq >= 19_900  # one track per box; each crossed
    assert max(t for t, _ in held) <= 30 and max(s for _, s in held) <= 30  # 16 in view, a few just ended
    growth = (max(traced[2:]) - min(traced[2:])) / 2**20
    assert growth < 1.0, f"traced memory grew by {growth:.2f} MB over 20,000 tracks"
