"""Crossings reach the consumer once each: through a broker outage, a restart in the middle of one and a power cut,
never dropped for detection traffic, and a consumer tells a gap from silence by the health message's seq."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from odctl.crossing_sequence import crossing_streams
from odctl.synth_video import SynthSpec, write_video
from odedge.counting import Counter, Line
from odedge.messages import CountsOutbox
from odedge.outbox import Entry, Outbox
from odedge.telemetry import Counters
from tests.conftest import REPO
from tests.edge_component.relay import Relay
from tests.edge_component.test_publishers import _subscriber, _wait

DOOR = Line("door", (0.5, 0.0), (0.5, 1.0), "left-to-right")
LINE = "middle:0.5,0,0.5,1"


def _state(counts_file: Path) -> dict:
    return json.loads(counts_file.read_text()) if counts_file.exists() else {"seq": 0, "lines": {}}


def _totals(state: dict) -> dict:
    line = state["lines"].get("middle", {"in": {}, "out": {}})
    return {(way, label): n for way in ("in", "out") for label, n in line[way].items() if n}


def _received_totals(messages: list[dict]) -> dict:
    once = {m["event_id"]: m for m in messages}
    totals: dict = {}
    for m in once.values():
        totals[(m["direction"], m["class"])] = totals.get((m["direction"], m["class"]), 0) + 1
    return totals


def _detect(video: Path, package: str, port: int, counts_file: Path, *extra: str) -> subprocess.Popen:
    argv = [sys.executable, "-m", "odctl.cli", "detect", str(video), "--model", package, "--line", LINE]
    argv += ["--mqtt-host", "127.0.0.1", "--mqtt-port", str(port), "--counts-file", str(counts_file)]
    argv += [*extra] if "--threshold" in extra else ["--threshold", "0.4", *extra]
    counts_file.parent.mkdir(parents=True, exist_ok=True)
    out, log = (open(counts_file.with_suffix(s), "w") for s in (".out", ".log"))  # noqa: SIM115 - the child's
    return subprocess.Popen(argv, stdout=out, stderr=log)


@pytest.fixture
def crossings_video(tmp_path):
    def make(frames: int, seed: int = 5) -> Path:
        video, _ = write_video(
            SynthSpec(
                f"mixed_boxes_{seed}", ("blue box", "yellow box"), frames=frames, seed=seed, scenario="crossings"
            ),
            tmp_path,
        )
        return video

    return make


@pytest.mark.integration
@pytest.mark.slow
def test_a_minute_without_the_broker_loses_no_crossing_and_doubles_none(
    scene, broker_factory, crossings_video, tmp_path
):
    """A camera-paced video with many crossings through `odctl detect`; the broker killed for 60 s and restarted.
    The crossings received, counted once by event_id, are the device's totals, seq 1..N with no gap; detections
    overflowed their small buffer meanwhile (dropped, counted) without taking a crossing with them."""
    video = crossings_video(1500)
    broker = broker_factory().start()
    relay = Relay(broker.port)
    relay.open.set()
    first, got = _subscriber(broker.port, "od/#")
    counts_file = tmp_path / "state" / "counts.json"
    device = _detect(
        video,
        str(scene["package"]),
        relay.port,
        counts_file,
        "--realtime",
        "--detections-buffer",
        "50",
        "--threshold",
        "0.3",
    )
    try:
        assert _wait(lambda: len(got) >= 1, 40), "no crossing arrived before the outage"
        relay.cut()
        broker.stop()
        at_cut = _state(counts_file)["seq"]
        time.sleep(60)
        during = _state(counts_file)["seq"] - at_cut
        broker.start()
        second, got_after = _subscriber(broker.port, "od/#")
        relay.open.set()
        assert device.wait(timeout=240) == 0
    finally:
        device.kill()
        relay.close()
    first.loop_stop()
    second.loop_stop()
    out = counts_file.with_suffix(".out").read_text()  # the messages (one line each), then the summary (indented)
    summary = json.loads(out[out.rindex("\n{\n") + 1 :])
    received = [m for _, m in got + got_after]
    messages = [m for m in received if m.get("type") == "crossing"]
    state = _state(counts_file)
    # the outage must hold crossings (at least two: their order across the reconnect is checked too)
    assert during >= 2, f"only {during} crossings happened while the broker was away"
    assert sorted({m["seq"] for m in messages}) == list(range(1, state["seq"] + 1))  # none lost
    assert _received_totals(messages) == _totals(state)  # none doubled
    (stream,) = crossing_streams(received).values()  # what the consumer sees: the health's seq, nothing missing
    assert stream.health_seq == state["seq"] and stream.missing == []
    assert summary["counters"]["publish_dropped"] > 0  # detections gave way; crossings did not
    assert not list((counts_file.parent / "outbox").iterdir())


@pytest.mark.integration
@pytest.mark.slow
def test_a_restart_in_the_middle_of_an_outage_resumes_the_outbox(scene, broker_factory, crossings_video, tmp_path):
    """Offline, the process is killed (SIGKILL) after several crossings; the next start delivers them, in order, and
    its own crossings continue the sequence."""
    video = crossings_video(900)
    broker = broker_factory().start()
    relay = Relay(broker.port)  # closed: the device is offline
    counts_file = tmp_path / "state" / "counts.json"
    device = _detect(video, str(scene["package"]), relay.port, counts_file)
    try:
        assert _wait(lambda: _state(counts_file)["seq"] >= 3, 120), "too few crossings before the kill"
        device.send_signal(signal.SIGKILL)
        device.wait(timeout=10)
    finally:
        device.kill()
    offline = _state(counts_file)
    pending = sorted(p.name for p in (counts_file.parent / "outbox").glob("*.json"))
    assert len(pending) == offline["seq"]  # every crossing waits on disk
    client, got = _subscriber(broker.port, "od/+/counts")
    relay.open.set()
    again = _detect(video, str(scene["package"]), relay.port, counts_file, "--realtime", "--max-frames", "120")
    try:
        assert again.wait(timeout=120) == 0
    finally:
        again.kill()
        relay.close()
    client.loop_stop()
    messages = [m for _, m in got]
    final = _state(counts_file)
    seqs = [m["seq"] for m in messages]
    assert seqs[: offline["seq"]] == list(range(1, offline["seq"] + 1))  # the outbox first, in order
    assert sorted(set(seqs)) == list(range(1, final["seq"] + 1))
    assert _received_totals(messages) == _totals(final)
    assert final["stream"] == offline["stream"]


POWER_CUT = textwrap.dedent(
    """
    import os, signal, sys
    from odedge import durable
    from odedge.counting import Counter, Line
    from odedge.messages import CountsOutbox
    from odedge.outbox import Outbox
    from odedge.postprocess import Detection
    from odedge.telemetry import Counters

    folder, cut_at = sys.argv[1], int(sys.argv[2])
    calls = [0]
    rename = os.replace

    def cut(source, target):  # the power goes between the write (fsynced) and the rename
        calls[0] += 1
        if calls[0] == cut_at:
            os.kill(os.getpid(), signal.SIGKILL)
        rename(source, target)

    durable.os.replace = cut
    outbox = Outbox(folder + "/outbox", 100, Counters())
    counts = CountsOutbox(outbox, "dev-1", "od/dev-1/counts")
    counter = Counter([Line("door", (0.5, 0.0), (0.5, 1.0))], [], folder + "/counts.json", outbox=counts)
    for t, x in enumerate([280, 380] * 5):
        counter.observe([Detection("blue box", 0, 0.9, (x - 30, 150, x + 30, 210), 1)], (640, 360), float(t))
    """
)


@pytest.mark.parametrize("cut_at, kept", [(5, 2), (6, 3), (1, 0)])
def test_a_power_cut_between_write_and_rename_leaves_a_readable_state(tmp_path, cut_at, kept):
    """Each crossing renames its outbox file, then the totals' file. Cut at the 3rd crossing's outbox rename (5), at
    its totals' rename (6: the outbox file is in, the totals are not), at the very first: what is read at the next
    start is whole, the crossings kept are exactly those whose event landed, and the sequence goes on from them."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "edge_component")}
    done = subprocess.run([sys.executable, "-c", POWER_CUT, str(tmp_path), str(cut_at)], env=env, timeout=60)
    assert done.returncode == -signal.SIGKILL
    assert list(tmp_path.rglob("*.part")), "the cut left no partial file: it did not land between write and rename"
    outbox = Outbox(str(tmp_path / "outbox"), 100, Counters())
    counter = Counter([DOOR], [], str(tmp_path / "counts.json"), outbox=CountsOutbox(outbox, "dev-1", "t"))
    assert counter.seq == kept and sorted(outbox.entries) == list(range(1, kept + 1))
    summary = counter.summary()["lines"]["door"]
    assert sum(summary["in"].values()) + sum(summary["out"].values()) == kept
    assert not list(tmp_path.rglob("*.part"))
    if kept:
        assert json.loads((tmp_path / "counts.json").read_text())["seq"] == kept  # the file caught up at start


def test_a_full_outbox_says_so_and_keeps_what_it_has(tmp_path, caplog):
    """Past its capacity the outbox keeps no more on disk: the next crossing is held in memory and sent all the
    same (said loudly); past as many again held in memory, one is lost (counted)."""
    counters = Counters()
    outbox = Outbox(str(tmp_path / "outbox"), 2, counters, reserve=0)
    kept = [outbox.put(Entry(seq, "od/t/counts", b"{}"), {"seq": seq}) for seq in (1, 2, 3, 4, 5)]
    assert kept == [True, True, False, False, False]
    assert counters.get("counts_unkept") == 2 and counters.get("counts_lost") == 1
    status = outbox.status()
    assert (status["pending"], status["in_memory"], status["capacity"], status["full"]) == (4, 2, 2, True)
    assert status["lost"] == 1
    assert any(r.levelname == "WARNING" and r.getMessage() == "outbox.not_kept" for r in caplog.records)
    assert any(r.levelname == "ERROR" and r.getMessage() == "outbox.full" for r in caplog.records)
    assert sorted(p.name for p in (tmp_path / "outbox").iterdir()) == [
        "000000000001.json",
        "000000000002.json",
        "lost.tally",  # what was lost, for the starts to come
    ]


@pytest.mark.integration
def test_a_consumer_tells_a_gap_from_silence_by_the_health_seq(scene, crossings_video, tmp_path):
    """The messages `odctl detect` wrote: complete, no seq is missing; one crossing taken out (the first, or the last,
    which only the health message's seq reveals), the gap is named; a redelivery is a duplicate, not a crossing."""
    from odctl.cli import main

    out = tmp_path / "messages.jsonl"
    package = str(scene["package"])
    assert main(["detect", str(crossings_video(300)), "--model", package, "--line", LINE, "--out", str(out)]) == 0
    records = [json.loads(line) for line in out.read_text().splitlines()]
    crossings = [r for r in records if r["message"].get("type") == "crossing"]
    assert len(crossings) >= 2
    (report,) = crossing_streams(records).values()
    assert report.missing == [] and report.last_seq == len(crossings) and report.duplicates == 0
    lost = crossings[0]["message"]["seq"]
    (gapped,) = crossing_streams([r for r in records if r is not crossings[0]]).values()
    assert gapped.missing == [lost]
    health = [r for r in records if r["message"].get("type") == "health"][-1]
    assert health["message"]["counts"]["seq"] == len(crossings)
    (doubled,) = crossing_streams([*records, crossings[-1]]).values()
    assert doubled.duplicates == 1 and doubled.missing == []
    (silent,) = crossing_streams([r for r in records if r is not crossings[-1]]).values()
    assert silent.missing == [crossings[-1]["message"]["seq"]]  # the last one: only the health message shows it
