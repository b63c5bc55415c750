"""Wiring: configuration -> model package -> runtime -> source -> sinks -> loop, and signal handling."""

from __future__ import annotations

import logging
import signal
import threading
from dataclasses import replace
from typing import Any

from .config import EdgeConfig
from .counting import Counter, parse_lines, parse_zones
from .evidence import EvidenceRecorder, EvidenceSettings
from .loop import InferenceLoop, LoopResult
from .messages import CountsOutbox
from .model import ModelError, ModelPackage
from .outbox import Outbox
from .publishers import BufferedPublisher, JsonlTransport, OutboxSender, create_transport
from .runtimes import create_runtime
from .sources import open_source
from .stages import ActiveLearning, FrameStage, Snapshots
from .telemetry import Counters, log_event
from .tracking import Tracker

logger = logging.getLogger(__name__)


def build_sinks(config: EdgeConfig, counters: Counters) -> list[BufferedPublisher]:
    main = create_transport(config.publisher, config)
    sinks = [BufferedPublisher(main, counters, config.buffer_size, "publisher")]
    if config.jsonl and not isinstance(main, JsonlTransport):
        sinks.append(BufferedPublisher(JsonlTransport(config.jsonl), counters, config.buffer_size, "jsonl"))
    return sinks


def build_stages(config: EdgeConfig, counters: Counters) -> list[FrameStage]:
    """The optional stages the configuration asks for, in the order they see each frame."""
    stages: list[FrameStage] = []
    if config.snapshot_dir:
        stages.append(Snapshots(config.snapshot_dir, config.snapshot_interval, config.snapshot_max_mb))
    if config.capture_dir:
        stages.append(
            ActiveLearning(
                config.capture_dir,
                config.thing_name,
                config.uncertain_low,
                config.uncertain_high,
                config.capture_interval,
                config.capture_motion,
                counters,
                config.upload_bucket,
                config.upload_prefix,
            )
        )
    return stages


def build_counting(
    config: EdgeConfig, counters: Counters, sinks: list[BufferedPublisher]
) -> tuple[Tracker | None, Counter | None, Outbox | None]:
    """The tracker when tracking is on; the counter when lines or zones are configured; with lines, the outbox its
    crossings go through (the sinks after the first get a best-effort copy: the JSON Lines record)."""
    if not config.tracking:
        return None, None, None
    tracker = Tracker(high=config.score_threshold, low=config.track_low, max_lost=config.track_max_lost)
    lines, zones = parse_lines(config.lines), parse_zones(config.zones)
    if not lines and not zones:
        return tracker, None, None
    reserve = config.outbox_reserve_kb * 1024
    outbox = Outbox(config.outbox_folder, config.outbox_max, counters, reserve) if lines else None
    counts = (
        CountsOutbox(outbox, config.thing_name, config.topic(config.counts_topic), sinks[1:])
        if outbox is not None
        else None
    )
    return tracker, Counter(lines, zones, config.counts_file, outbox=counts), outbox


def build_evidence(config: EdgeConfig, counter: Counter | None) -> EvidenceRecorder | None:
    """Evidence per crossing where it is on (a budget, a folder) and lines count; uploads go to the captures'
    bucket under evidence/<thing>/ where one is set and EvidenceUpload allows."""
    if not config.evidence_folder or counter is None or not counter.lines:
        return None
    settings = EvidenceSettings(
        folder=config.evidence_folder,
        max_bytes=int(config.evidence_max_mb * 2**20),
        frames=config.evidence_frames,
        ring=config.evidence_ring,
        width=config.evidence_width,
        privacy=config.evidence_privacy,
        queue=config.evidence_queue,
        bucket=config.upload_bucket if config.evidence_upload else "",
        thing=config.thing_name,
    )
    try:
        return EvidenceRecorder(settings, counter.lines)
    except OSError as exc:  # a folder it cannot make or read: the device counts on without pictures, loudly
        log_event(logger, "evidence.unavailable", level=logging.ERROR, folder=settings.folder, error=str(exc))
        return None


def run(config: EdgeConfig, stop: threading.Event | None = None, install_signals: bool = True) -> LoopResult:
    """Start everything; errors in the model or configuration are raised before any frame is read."""
    stop = stop or threading.Event()
    counters = Counters()
    package = ModelPackage.load(config.model_dir)
    if config.input_size and config.input_size != package.input_size:
        raise ModelError(
            f"{package.root}: the model takes {package.input_size}x{package.input_size} input but the "
            f"configuration says InputSize={config.input_size}"
        )
    runtime = create_runtime(config.backend, package, config.threads or None, config.precision)
    source = open_source(config.source, counters, config.loop, config.max_retries, config.start_epoch)
    sinks = build_sinks(config, counters)
    source.listen(sinks[0].transport.subscribe, config.topic(config.request_topic))
    stages = build_stages(config, counters)
    tracker, counter, outbox = build_counting(config, counters, sinks)
    sender = OutboxSender(outbox, sinks[0].transport, counters) if outbox is not None else None
    evidence = build_evidence(config, counter)
    if install_signals and threading.current_thread() is threading.main_thread():

        def on_signal(signum: int, _frame: Any) -> None:
            log_event(logger, "signal.received", signal=signal.Signals(signum).name)
            stop.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
    log_event(
        logger,
        "loop.starting",
        source=config.source,
        model=str(package.root),
        model_version=package.version,
        runtime=runtime.choice.describe(),
        classes=list(package.classes),
        input_size=package.input_size,
    )
    loop = InferenceLoop(config, package, runtime, source, sinks, counters, stop, stages, tracker, counter, evidence)
    try:
        result = loop.run()
    finally:
        source.close()
        for stage in stages:
            stage.close()
        if evidence is not None:  # what waits for frames after is written with what it has
            evidence.close(timeout=2.0)
        if sender is not None:  # before the sinks: they close the transport it sends through
            sender.close(timeout=2.0)
        for sink in sinks:
            sink.close(timeout=1.5)
    # the counters after the sinks flushed: "published" then counts the final health message too
    return replace(result, counters=counters.snapshot())
