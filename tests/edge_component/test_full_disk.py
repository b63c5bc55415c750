"""A full, failing or corrupt work folder never costs a crossing silently (issue 34).

The device's work folder is a real tiny filesystem (a 64 KiB tmpfs mounted here, as root): it fills in the middle of a
run of the real loop (real model, real MQTT broker), and every crossing counted is still published, every frame's
detections still go out, the device says so (warnings, health) and counts as lost only what truly could not be kept
nor sent. Unreadable outbox files at start (corrupt, truncated, on a read-only disk) are counted lost and never stop
the start; a full outbox beside the real Counter holds what it can in memory and counts the rest.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest

from odctl.synth_video import SynthSpec, write_video
from odedge.app import run
from odedge.config import EdgeConfig
from odedge.counting import Counter, Line
from odedge.messages import CountsOutbox, health_message
from odedge.outbox import Entry, Outbox
from odedge.postprocess import Detection
from odedge.publishers import JsonlTransport, OutboxSender
from odedge.telemetry import Counters
from tests.conftest import REPO
from tests.edge_component.relay import Relay
from tests.edge_component.test_publishers import _subscriber, _wait

DOOR = Line("door", (0.5, 0.0), (0.5, 1.0), "left-to-right")
LINES = json.dumps([{"name": "middle", "points": [[0.5, 0.0], [0.5, 1.0]], "in": "left-to-right"}])
SCHEMA = json.loads((REPO / "edge_component" / "schemas" / "health.schema.json").read_text())


def _mount(folder: Path, *options: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    if shutil.which("mount") is None:
        pytest.skip("no mount command here: the full-disk tests mount a 64 KiB tmpfs as the work folder")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", ",".join(["size=64k", *options]), "tmpfs", str(folder)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"mounting a tmpfs is not permitted here ({done.stderr.strip()}): needs root with CAP_SYS_ADMIN")


@pytest.fixture
def tiny_disk(tmp_path):
    """A 64 KiB filesystem for the device's work folder; unmounted afterwards."""
    folder = tmp_path / "work"
    _mount(folder)
    yield folder
    if subprocess.run(["umount", str(folder)], capture_output=True).returncode != 0:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def _walk(counter: Counter, xs: list[int], t0: float = 0.0) -> list[dict[str, Any]]:
    """One box (track 1) at these centres, a frame each: every move across the door is a crossing."""
    events = []
    for t, x in enumerate(xs):
        box = Detection("blue box", 0, 0.9, (x - 30, 150, x + 30, 210), 1)
        events += counter.observe([box], (640, 360), t0 + t)
    return events


def _logged(caplog, event: str, level: str | None = None) -> list[logging.LogRecord]:
    return [r for r in list(caplog.records) if r.getMessage() == event and (level is None or r.levelname == level)]


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    """What log_event put on the record (the JSON line's fields)."""
    return dict(record.__dict__.get("fields") or {})


def _health(counter: Counter, counters: Counters) -> dict[str, Any]:
    """The health message the device would send now, checked against its schema."""
    import jsonschema

    message = json.loads(health_message("dev-1", "m", counters.snapshot(), 0.0, {}, 1.0, counter.summary()))
    jsonschema.validate(message, SCHEMA, format_checker=jsonschema.FormatChecker())
    return message


def _sent(outbox: Outbox, counters: Counters, path: Path) -> list[int]:
    """What the real sender delivers from the outbox (to a JSON Lines file), in order."""
    sender = OutboxSender(outbox, JsonlTransport(str(path)), counters)
    assert sender.flush(10)
    sender.close()
    return [json.loads(line)["message"]["seq"] for line in path.read_text().splitlines()]


def test_a_full_outbox_beside_the_real_counter_sends_from_memory_and_counts_only_the_truly_lost(tmp_path, caplog):
    """Capacity 2, nothing delivered yet, six crossings: two on disk, two held in memory and sent all the same
    (warnings, counts_unkept), two past the memory bound as well: lost (errors, counts_lost). seq and totals count
    all six crossings that happened; the consumer sees the gap 5-6 that counts_lost explains."""
    counters = Counters()
    outbox = Outbox(str(tmp_path / "outbox"), 2, counters, reserve=0)
    counter = Counter([DOOR], [], str(tmp_path / "counts.json"), outbox=CountsOutbox(outbox, "dev-1", "od/c"))
    events = _walk(counter, [280, 380] * 3 + [280])
    assert [e["seq"] for e in events] == [1, 2, 3, 4, 5, 6]
    assert counters.get("counts_unkept") == 2 and counters.get("counts_lost") == 2
    assert [_fields(r)["seq"] for r in _logged(caplog, "outbox.not_kept", "WARNING")] == [3, 4]
    assert [_fields(r)["seq"] for r in _logged(caplog, "outbox.full", "ERROR")] == [5, 6]
    health = _health(counter, counters)
    status = health["counts"]["outbox"]
    assert (status["pending"], status["in_memory"], status["full"], status["lost"]) == (4, 2, True, 2)
    assert health["counts_lost"] == 2 and health["counts_unkept"] == 2 and health["counts"]["seq"] == 6
    door = health["counts"]["lines"]["door"]
    assert sum(door["in"].values()) + sum(door["out"].values()) == 6
    assert json.loads((tmp_path / "counts.json").read_text())["seq"] == 6
    assert _sent(outbox, counters, tmp_path / "sent.jsonl") == [1, 2, 3, 4]
    assert counters.get("counts_delivered") == 4
    assert [p.name for p in (tmp_path / "outbox").iterdir()] == ["lost.tally"]  # the two lost, for the next start
    assert json.loads((tmp_path / "outbox" / "lost.tally").read_text()) == {"lost": 2}


def test_a_corrupt_and_a_truncated_outbox_file_at_start_are_counted_lost_and_their_seq_never_reused(tmp_path, caplog):
    """The oldest file garbage, the newest cut short (and the totals' file one crossing behind it, as after a cut):
    the start goes on, both crossings are counted lost and named by seq in an error, health says so, the readable
    one is still sent, and the next crossing takes seq 4, not the lost 3's."""
    outbox = Outbox(str(tmp_path / "outbox"), 100, Counters())
    counter = Counter([DOOR], [], str(tmp_path / "counts.json"), outbox=CountsOutbox(outbox, "dev-1", "od/c"))
    _walk(counter, [280, 380, 280, 380])
    first, second, third = sorted((tmp_path / "outbox").glob("*.json"))
    first.write_text("not json {")
    third.write_bytes(third.read_bytes()[:40])
    (tmp_path / "counts.json").write_text(json.dumps(json.loads(second.read_text())["state"]))
    counters = Counters()
    outbox = Outbox(str(tmp_path / "outbox"), 100, counters)
    counter = Counter([DOOR], [], str(tmp_path / "counts.json"), outbox=CountsOutbox(outbox, "dev-1", "od/c"))
    assert counters.get("counts_lost") == 2 and counters.get("outbox_unreadable") == 2
    assert [_fields(r)["seq"] for r in _logged(caplog, "outbox.unreadable", "ERROR")] == [1, 3]
    assert counter.seq == 3 and sorted(outbox.entries) == [2]
    assert [e["seq"] for e in _walk(counter, [280, 380], 10.0)] == [4]
    health = _health(counter, counters)
    assert health["counts"]["outbox"]["unreadable"] == 2 and health["counts_lost"] == 2
    assert health["counts"]["outbox"]["lost"] == 2
    assert sorted(p.name for p in (tmp_path / "outbox").iterdir()) == [
        "000000000001.unreadable",
        "000000000002.json",
        "000000000003.unreadable",
        "000000000004.json",
        "lost.tally",
    ]
    assert _sent(outbox, counters, tmp_path / "sent.jsonl") == [2, 4]
    # the next start: the process lost nothing yet, the outbox still says what its stream lost before
    counters = Counters()
    outbox = Outbox(str(tmp_path / "outbox"), 100, counters)
    counter = Counter([DOOR], [], str(tmp_path / "counts.json"), outbox=CountsOutbox(outbox, "dev-1", "od/c"))
    health = _health(counter, counters)
    assert (health.get("counts_lost", 0), health["counts"]["outbox"]["lost"]) == (0, 2)
    # a tally the disk spoilt is said (an error naming it) and starts again: the consumer's gap report stays
    (tmp_path / "outbox" / "lost.tally").write_text("{cut")
    outbox = Outbox(str(tmp_path / "outbox"), 100, Counters())
    assert outbox.status()["lost"] == 0 and _logged(caplog, "outbox.lost_tally_unreadable", "ERROR")
    assert (tmp_path / "outbox" / "lost.tally.unreadable").read_text() == "{cut"  # kept aside for a person


def test_an_unreadable_file_that_cannot_be_set_aside_is_said_once_at_each_start_and_never_added_up(tmp_path):
    """The rename to ``.unreadable`` fails (its name taken by a folder): the file stays, every start finds it and
    says the crossing lost, and the folder's tally never grows with it (three starts: still one lost)."""
    folder = tmp_path / "outbox"
    folder.mkdir()
    (folder / "000000000001.json").write_text("not json {")
    (folder / "000000000001.unreadable").mkdir()
    for _ in range(3):
        counters = Counters()
        assert Outbox(str(folder), 100, counters).status()["lost"] == 1 and counters.get("counts_lost") == 1
    assert not (folder / "lost.tally").exists()


def test_a_read_only_work_folder_stops_neither_the_start_nor_the_crossings(tiny_disk, tmp_path, caplog):
    """The disk turns read-only (EROFS) with a truncated outbox file and a ``.part`` on it: the rename and the unlink
    fail and the start goes on (the file counted lost); a crossing then is sent from memory, and health names the
    disk's refusal of the outbox file and of the totals' file."""
    outbox = Outbox(str(tiny_disk / "outbox"), 100, Counters(), reserve=0)
    counter = Counter([DOOR], [], str(tiny_disk / "counts.json"), outbox=CountsOutbox(outbox, "dev-1", "od/c"))
    _walk(counter, [280, 380, 280])
    newest = sorted((tiny_disk / "outbox").glob("*.json"))[-1]
    newest.write_bytes(newest.read_bytes()[:25])
    (tiny_disk / "outbox" / "000000000009.json.part").write_bytes(b"half")
    subprocess.run(["mount", "-o", "remount,ro", str(tiny_disk)], check=True)
    counters = Counters()
    outbox = Outbox(str(tiny_disk / "outbox"), 100, counters, reserve=0)
    counter = Counter([DOOR], [], str(tiny_disk / "counts.json"), outbox=CountsOutbox(outbox, "dev-1", "od/c"))
    assert counters.get("counts_lost") == 1 and _logged(caplog, "outbox.unreadable_left", "ERROR")
    assert [e["seq"] for e in _walk(counter, [280, 380], 10.0)] == [3]
    assert counters.get("counts_unkept") == 1 and counters.get("counts_lost") == 1
    health = _health(counter, counters)
    disk_error = health["counts"]["outbox"]["disk_error"]
    assert disk_error["path"].startswith(str(tiny_disk)) and disk_error["error"].startswith("EROFS")
    assert health["counts"]["disk_error"]["path"] == str(tiny_disk / "counts.json")
    assert health["counts"]["outbox"]["in_memory"] == 1 and health["counts"]["outbox"]["full"] is True
    assert health["counts"]["outbox"]["lost"] == 1  # the file left: found, and said, at every start, in no tally
    assert not (tiny_disk / "outbox" / "lost.tally").exists()
    assert _sent(outbox, counters, tmp_path / "sent.jsonl") == [1, 3]


def test_losses_the_disk_cannot_record_are_still_said_once_in_the_log_and_in_health(tiny_disk, caplog):
    """The work folder turns read-only with an empty outbox: the first crossing is held in memory, the next two are
    lost, and so is the tally's write: health still says the two (in memory), one error names the tally's file and
    the disk's refusal (not one per crossing), and nothing half-written is left."""
    counters = Counters()
    outbox = Outbox(str(tiny_disk / "outbox"), 1, counters, reserve=0)
    subprocess.run(["mount", "-o", "remount,ro", str(tiny_disk)], check=True)
    kept = [outbox.put(Entry(seq, "od/c", b"{}"), {"seq": seq}) for seq in (1, 2, 3)]
    assert kept == [False, False, False] and counters.get("counts_lost") == 2
    assert (outbox.status()["lost"], outbox.status()["in_memory"]) == (2, 1)
    (said,) = _logged(caplog, "outbox.lost_tally_not_written", "ERROR")
    assert _fields(said)["error"].startswith("EROFS") and _fields(said)["path"] == str(
        tiny_disk / "outbox" / "lost.tally"
    )
    assert list((tiny_disk / "outbox").iterdir()) == []


def test_the_reserve_says_nearly_full_before_it_refuses_and_then_sends_from_memory(tmp_path, caplog):
    """Without root (no tmpfs), on the real disk's free space: a reserve of two thirds of what is free lets the
    crossing onto the disk but says nearly full first (a warning naming the folder, ``nearly_full`` in health, not
    ``full``); restarted with a reserve above what is free, the next crossing is not written (``low_space``), sent
    from memory and said, and nothing is lost."""
    free = os.statvfs(tmp_path).f_bavail * os.statvfs(tmp_path).f_frsize
    counters = Counters()
    outbox = Outbox(str(tmp_path / "outbox"), 100, counters, reserve=int(free / 1.5))
    counter = Counter([DOOR], [], str(tmp_path / "counts.json"), outbox=CountsOutbox(outbox, "dev-1", "od/c"))
    assert [e["seq"] for e in _walk(counter, [280, 380])] == [1]
    (warned,) = _logged(caplog, "outbox.nearly_full", "WARNING")
    assert _fields(warned)["path"] == str(tmp_path / "outbox") and not _logged(caplog, "outbox.not_kept")
    status = _health(counter, counters)["counts"]["outbox"]
    assert (status["nearly_full"], status["full"], status["pending"], status["in_memory"]) == (True, False, 1, 0)
    assert status["reserve_bytes"] == int(free / 1.5) and status["free_bytes"] > status["reserve_bytes"]
    outbox = Outbox(str(tmp_path / "outbox"), 100, counters, reserve=2 * free)
    counter = Counter([DOOR], [], str(tmp_path / "counts.json"), outbox=CountsOutbox(outbox, "dev-1", "od/c"))
    assert [e["seq"] for e in _walk(counter, [280, 380], 10.0)] == [2]
    (refused,) = _logged(caplog, "outbox.not_kept", "WARNING")
    assert (_fields(refused)["seq"], _fields(refused)["reason"]) == (2, "low_space")
    status = _health(counter, counters)["counts"]["outbox"]
    assert (status["nearly_full"], status["full"], status["pending"], status["in_memory"]) == (True, True, 2, 1)
    assert "disk_error" not in status and counters.get("counts_lost") == 0
    assert json.loads((tmp_path / "counts.json").read_text())["seq"] == 2  # the reserve is what keeps room for it
    assert _sent(outbox, counters, tmp_path / "sent.jsonl") == [1, 2]


def test_a_failing_disk_eio_sends_the_crossing_from_memory_and_names_the_path(tmp_path, caplog, monkeypatch):
    """The third errno of issue 34: the disk fails the fsync (EIO, as a dying SD card does) while two crossings are
    kept. Each frame still returns its crossing (the frame goes on), the crossing is sent from memory and said
    (warning, counts_unkept), nothing is counted lost, no ``.part`` is left, health names the failing files (the
    outbox's and the totals') with EIO; once the disk answers again the next crossing is on disk and the totals'
    file catches up, so a restart neither reuses a seq nor loses the totals."""
    import errno

    import odedge.durable

    counters = Counters()
    outbox = Outbox(str(tmp_path / "outbox"), 100, counters, reserve=0)
    counter = Counter([DOOR], [], str(tmp_path / "counts.json"), outbox=CountsOutbox(outbox, "dev-1", "od/c"))
    assert [e["seq"] for e in _walk(counter, [280, 380])] == [1]
    real_fsync = os.fsync

    def failing(descriptor: int) -> None:
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr(odedge.durable.os, "fsync", failing)
    assert [e["seq"] for e in _walk(counter, [280, 380], 10.0)] == [2, 3]
    assert counters.get("counts_unkept") == 2 and counters.get("counts_lost") == 0
    assert [_fields(r)["seq"] for r in _logged(caplog, "outbox.not_kept", "WARNING")] == [2, 3]
    assert all(_fields(r)["error"].startswith("EIO") for r in _logged(caplog, "outbox.disk_error", "ERROR"))
    assert not list(tmp_path.rglob("*.part"))
    health = _health(counter, counters)
    status = health["counts"]["outbox"]
    assert (status["pending"], status["in_memory"], status["full"]) == (3, 2, True)
    assert status["disk_error"]["path"] == str(tmp_path / "outbox" / "000000000003.json")
    assert status["disk_error"]["error"].startswith("EIO") and status["disk_error"]["count"] == 2
    assert health["counts"]["disk_error"]["path"] == str(tmp_path / "counts.json")
    assert health["counts"]["disk_error"]["error"].startswith("EIO")
    assert json.loads((tmp_path / "counts.json").read_text())["seq"] == 1  # behind: written again each frame
    monkeypatch.setattr(odedge.durable.os, "fsync", real_fsync)
    assert [e["seq"] for e in _walk(counter, [280], 20.0)] == [4]
    assert sorted(p.name for p in (tmp_path / "outbox").glob("*.json")) == ["000000000001.json", "000000000004.json"]
    assert json.loads((tmp_path / "counts.json").read_text())["seq"] == 4
    assert _logged(caplog, "counts.saved_again", "WARNING")
    assert _health(counter, counters)["counts"]["outbox"]["full"] is False
    assert _sent(outbox, counters, tmp_path / "sent.jsonl") == [1, 2, 3, 4]
    assert counters.get("counts_lost") == 0


@pytest.mark.integration
def test_the_component_starts_with_unreadable_outbox_files_and_says_so(scene, tmp_path):
    """The real component, with a corrupt and a truncated file in its outbox: it runs, and its health (valid against
    the schema) counts both crossings lost."""
    import jsonschema

    (tmp_path / "outbox").mkdir()
    (tmp_path / "outbox" / "000000000001.json").write_text("\x00\x00garbage")
    (tmp_path / "outbox" / "000000000002.json").write_text('{"seq":2,"topic":"od/dev-1/counts","payl')
    config = EdgeConfig.from_mapping(
        {
            "model_dir": str(scene["package"]),
            "source": str(scene["video"]),
            "publisher": "jsonl",
            "jsonl": str(tmp_path / "out.jsonl"),
            "lines": LINES,
            "counts_file": str(tmp_path / "counts.json"),
            "max_frames": "10",
            "health_interval": "3600",
        }
    )
    result = run(config, install_signals=False)
    assert result.frames == 10 and result.counters["counts_lost"] == 2
    messages = [json.loads(line)["message"] for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    health = [m for m in messages if m.get("type") == "health"][-1]
    jsonschema.validate(health, SCHEMA, format_checker=jsonschema.FormatChecker())
    assert health["counts_lost"] == 2 and health["counts"]["outbox"]["unreadable"] == 2


def _fill(path: Path, leave: int) -> None:
    """Another writer (logs, snapshots) takes all of the work folder but ``leave`` bytes."""
    stats = os.statvfs(path.parent)
    with open(path, "wb") as handle:
        try:
            handle.write(b"\1" * max(0, stats.f_bavail * stats.f_frsize - leave))
            handle.flush()
        except OSError:
            pass


def _crossings(messages: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {m["event_id"]: m for m in messages if m.get("type") == "crossing"}


def _detection_frames(messages: list[dict[str, Any]]) -> set[int]:
    return {m["frame"] for m in messages if "frame" in m and "detections" in m}


def _counted(caplog) -> int:
    """The newest seq the device counted (its log line per crossing)."""
    return max((_fields(r)["seq"] for r in _logged(caplog, "counts.crossing")), default=0)


def _caught_up(got: list, caplog) -> bool:
    """Every crossing counted so far received, and the detections of every frame so far."""
    messages = [m for _, m in list(got)]
    seqs = {m["seq"] for m in _crossings(messages).values()}
    frames = _detection_frames(messages)
    return seqs >= set(range(1, _counted(caplog) + 1)) and frames == set(range(len(frames)))


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.parametrize("reserve_kb", [0, 8], ids=["no-reserve-ENOSPC", "reserve-8k"])
def test_a_work_folder_that_fills_mid_run_publishes_every_crossing_and_every_frame(
    scene, broker, tiny_disk, tmp_path, caplog, reserve_kb
):
    """The real loop, offline, its work folder a 64 KiB tmpfs that something else fills after the first crossing.
    Without a reserve the disk refuses the outbox and the totals' file (ENOSPC: the bug of issue 34 threw the
    frames away); with one, the outbox stops at it and says nearly full first. Either way each crossing the disk
    cannot keep is held in memory, said loudly, and published once the broker is back; every frame's detections go
    out; nothing is counted lost; no ``.part`` is left; the totals' file catches up once there is room again."""
    caplog.set_level(logging.INFO)
    spec = SynthSpec("mixed_boxes_5", ("blue box", "yellow box"), 100, seed=5, scenario="crossings")
    video, _ = write_video(spec, tmp_path)
    relay = Relay(broker.port)  # closed: the device is offline
    client, got = _subscriber(broker.port, "od/#")
    config = EdgeConfig.from_mapping(
        {
            "model_dir": str(scene["package"]),
            "source": str(video),
            "loop": "true",
            "publisher": "mqtt",
            "mqtt_host": "127.0.0.1",
            "mqtt_port": str(relay.port),
            "thing_name": "dev-full",
            "lines": LINES,
            "counts_file": str(tiny_disk / "counts.json"),
            "score_threshold": "0.4",
            "publish_empty": "true",
            "health_interval": "1",
            "buffer_size": "100000",
            "outbox_reserve_kb": str(reserve_kb),
        }
    )
    stop, outcome = threading.Event(), {}
    worker = threading.Thread(target=lambda: outcome.update(result=run(config, stop, install_signals=False)))
    worker.start()
    try:
        assert _wait(lambda: _counted(caplog) >= 1, 120), "no crossing before the disk filled"
        _fill(tiny_disk / "filler.log", leave=20 * 1024)
        assert _wait(lambda: len(_logged(caplog, "outbox.not_kept")) >= 3, 240), "the disk never refused a crossing"
        relay.open.set()
        assert _wait(lambda: _caught_up(got, caplog), 120), "the crossings held in memory were not all published"
        (tiny_disk / "filler.log").unlink()  # room again: the totals' file catches up
        assert _wait(lambda: json.loads((tiny_disk / "counts.json").read_text())["seq"] >= _counted(caplog), 60)
        assert _wait(lambda: _caught_up(got, caplog), 60)
    finally:
        stop.set()
        worker.join(timeout=60)
        relay.close()
    assert _wait(lambda: _caught_up(got, caplog), 10)
    client.loop_stop()
    _check_the_run(outcome["result"], [m for _, m in got], tiny_disk, caplog, reserve_kb)


def _check_the_run(result: Any, messages: list[dict[str, Any]], work: Path, caplog, reserve_kb: int) -> None:
    counters, final = result.counters, result.counts["seq"]
    assert counters.get("frame_errors", 0) == 0 and counters.get("counting_errors", 0) == 0
    assert counters.get("counts_lost", 0) == 0 and counters["counts_unkept"] >= 3
    assert counters["counts_unkept"] == len(_logged(caplog, "outbox.not_kept", "WARNING"))
    crossings = _crossings(messages)
    left = {int(p.stem) for p in (work / "outbox").glob("*.json")}  # waiting for the next start, if any
    assert {m["seq"] for m in crossings.values()} | left == set(range(1, final + 1))  # every crossing counted
    assert _detection_frames(messages) == set(range(result.frames))  # every frame's detections
    assert json.loads((work / "counts.json").read_text())["seq"] == final
    assert not list(work.rglob("*.part"))
    health = [m for m in messages if m.get("type") == "health"]
    assert any(h["counts"]["outbox"]["full"] for h in health)
    if reserve_kb:  # the reserve kept the disk from refusing anything; nearly full was said first
        assert counters.get("disk_errors", 0) == 0 and all("disk_error" not in h["counts"] for h in health)
        warned, refused = _logged(caplog, "outbox.nearly_full"), _logged(caplog, "outbox.not_kept")
        assert warned and caplog.records.index(warned[0]) < caplog.records.index(refused[0])
        assert any(h["counts"]["outbox"]["nearly_full"] for h in health)
    else:  # the disk said ENOSPC: named in errors and in health, with the path
        errors = _logged(caplog, "outbox.disk_error", "ERROR") + _logged(caplog, "counts.save_failed", "ERROR")
        assert errors and all(_fields(r)["error"].startswith("ENOSPC") for r in errors)
        named = [h["counts"].get("disk_error") or h["counts"]["outbox"].get("disk_error") for h in health]
        assert any(d and d["path"].startswith(str(work)) and d["error"].startswith("ENOSPC") for d in named)
