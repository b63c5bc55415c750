"""The inference loop: capture, inference and publishing overlap on separate threads.

Capture never waits for inference: from a live source only the newest frames are kept (older ones are
dropped and counted); a file or folder is read at the pace of inference with nothing dropped, unless
``realtime`` plays it at its own frame rate like a camera. SIGTERM (how Greengrass stops a component)
finishes the frame in hand, flushes the publishers and returns.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from . import camera_health
from .config import EdgeConfig
from .counting import Counter
from .evidence import EvidenceRecorder
from .messages import detection_message, health_message
from .model import ModelPackage
from .postprocess import detections
from .preprocess import preprocess
from .quality import ModelQuality
from .runtimes import Runtime
from .sources import EndOfStream, Frame, FrameSource, SourceError
from .stages import FrameResult, FrameStage
from .telemetry import Counters, LatencyWindow, ZoneVisits, log_event
from .tracking import Tracker

logger = logging.getLogger(__name__)


class LatestFrames:
    """A small frame buffer: live sources drop the oldest when full, files block instead."""

    def __init__(self, size: int, drop_oldest: bool, counters: Counters) -> None:
        self.items: deque[Frame] = deque()
        self.size = size
        self.drop_oldest = drop_oldest
        self.counters = counters
        self.cond = threading.Condition()
        self.finished = False

    def put(self, frame: Frame, stop: threading.Event) -> None:
        with self.cond:
            while len(self.items) >= self.size and not self.drop_oldest and not stop.is_set():
                self.cond.wait(0.1)
            if len(self.items) >= self.size:
                self.items.popleft()
                self.counters.add("frames_dropped")
            self.items.append(frame)
            self.cond.notify_all()

    def get(self, timeout: float = 0.2) -> Frame | None:
        with self.cond:
            if not self.items and not self.finished:
                self.cond.wait(timeout)
            if not self.items:
                return None
            frame = self.items.popleft()
            self.cond.notify_all()
            return frame

    def finish(self) -> None:
        with self.cond:
            self.finished = True
            self.cond.notify_all()

    def done(self) -> bool:
        with self.cond:
            return self.finished and not self.items


@dataclass
class LoopResult:
    frames: int
    counters: dict[str, float]
    fps: float
    latency_ms: dict[str, dict[str, float]]
    stopped_by: str
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)
    counts: dict[str, Any] | None = None  # the counter's summary at the end (lines' totals), when counting
    warnings: tuple[str, ...] = ()  # the model named too weak to count (odedge.quality), a file cut short
    zones: dict[str, Any] | None = None  # each zone over the run (odedge.telemetry.ZoneVisits), when zones are set
    clock: dict[str, str] | None = None  # a video file's clock: its first frame's time and where it came from


class InferenceLoop:
    def __init__(
        self,
        config: EdgeConfig,
        package: ModelPackage,
        runtime: Runtime,
        source: FrameSource,
        sinks: list[Any],
        counters: Counters | None = None,
        stop: threading.Event | None = None,
        stages: list[FrameStage] | None = None,
        tracker: Tracker | None = None,
        counter: Counter | None = None,
        evidence: EvidenceRecorder | None = None,
    ) -> None:
        self.config = config
        self.package = package
        self.runtime = runtime
        self.source = source
        self.sinks = sinks
        self.counters = counters or Counters()
        self.stop = stop or threading.Event()
        self.latency = LatencyWindow()
        self.stages = stages or []
        self.tracker, self.counter = tracker, counter
        # pictures of each crossing (odedge.evidence): fed after the counter put it in the outbox
        self.evidence = evidence
        self.camera = camera_health.from_config(config, source)  # None where frames are requests, not a camera
        zones = counter.zones if counter is not None else ()
        self.zone_visits = ZoneVisits(zone.name for zone in zones) if zones else None
        self.frame_time: float | None = None  # the last processed frame's time (a video file's own clock)
        self.quality = ModelQuality(config.weak_model_map, config.flood_new_tracks)
        self.quality.check_recorded(package.recorded_map, package.recorded_map_source)
        self.wanted = frozenset(config.classes) if config.classes else None
        unknown = set(config.classes) - set(package.classes)
        if unknown:
            from .model import ModelError

            raise ModelError(
                f"configuration classes {sorted(unknown)} are not in the model's classes {list(package.classes)}"
            )
        self.frames = LatestFrames(config.queue_size, source.live or config.realtime, self.counters)
        self.topic = config.topic(config.publish_topic)
        self.health_topic = config.topic(config.health_topic)
        self.result_topic = config.topic(config.result_topic)
        self._last_publish = float("-inf")
        self._health_mark = (0.0, 0.0)  # frames processed, detections at the last health message
        self.source_error: SourceError | None = None

    # capture thread ------------------------------------------------------------------------------------
    def _capture(self) -> None:
        pace = 1.0 / self.source.fps() if self.config.realtime and self.source.fps() > 0 else 0.0
        next_at = time.monotonic()
        try:
            while not self.stop.is_set():
                if self.config.max_frames and self.source.index >= self.config.max_frames:
                    break
                try:
                    frame = self.source.read()
                except EndOfStream:
                    break
                if frame is None:
                    continue
                self.counters.add("frames_in")
                self.frames.put(frame, self.stop)
                if pace:
                    next_at += pace
                    time.sleep(max(0.0, next_at - time.monotonic()))
        except SourceError as exc:  # the source gave up (a live source past its retries): the run fails with it
            self.source_error = exc
        except Exception:
            logger.exception("capture.failed")
            self.counters.add("capture_errors")
        finally:
            self.frames.finish()

    # the loop ------------------------------------------------------------------------------------------
    def _publish(self, topic: str, payload: bytes) -> None:
        for sink in self.sinks:
            try:  # one failing sink never stops the loop
                sink.publish(topic, payload)
            except Exception:
                logger.exception("sink.failed")
                self.counters.add("sink_errors")

    def process(self, frame: Frame) -> list[Any]:
        start = time.monotonic()
        self.frame_time = frame.timestamp
        blob, meta = preprocess(frame.image, self.package.input_size)
        t_pre = time.monotonic()
        rows = self.runtime.predict(blob)
        t_inf = time.monotonic()
        if self.camera is not None:  # before counting: a crossing counted while the camera is not OK says so
            flag = self.camera.watch(frame.image, frame.timestamp)
            if self.counter is not None:
                self.counter.camera = flag
        found = self._detect(rows, meta, frame)
        t_post = time.monotonic()
        stages = {
            "queue": (start - frame.captured) * 1000,
            "preprocess": (t_pre - start) * 1000,
            "inference": (t_inf - t_pre) * 1000,
            "postprocess": (t_post - t_inf) * 1000,
            "total": (t_post - frame.captured) * 1000,
        }
        self.latency.record(stages)
        self.counters.add("frames_processed")
        self.counters.add("detections", len(found))
        # a request always gets its answer, on the result topic (or the reply topic it named)
        topic = self.result_topic if self.source.replies else self.topic
        if found or self.config.publish_empty or self.source.replies:
            if self._due():
                self._publish(
                    frame.reply_to or topic,
                    detection_message(
                        self.config.thing_name,
                        frame.source,
                        frame.index,
                        frame.timestamp,
                        self.package.version,
                        found,
                        stages,
                        (frame.image.shape[1], frame.image.shape[0]),
                    ),
                )
        if self.stages:
            valid = rows[rows[:, 0] >= 0]
            best = float(valid[:, 1].max()) if len(valid) else 0.0
            self._observe(FrameResult(frame.image, frame.index, found, best))
        return found

    def _detect(self, rows: Any, meta: Any, frame: Frame) -> list[Any]:
        """This frame's detections; with tracking, with track ids, and the crossings they made published."""
        threshold, classes = self.config.score_threshold, self.package.classes
        if self.tracker is None:
            return detections(rows, meta, classes, threshold, self.wanted)
        tracked = self.tracker.update(detections(rows, meta, classes, self.tracker.low, self.wanted))
        self.quality.observe(self.tracker.confirmed_now)
        if self.counter is not None:  # its outbox sends the crossings (odedge.outbox), not the loop's sinks
            events = self._count(self.counter, self.tracker, tracked, frame)
            if self.evidence is not None:  # after the outbox: evidence never delays a crossing's message
                self._evidence(self.evidence, frame, tracked, events)
        # a box that continues a confirmed track is the object still there, published down to TrackLow (as
        # ByteTrack reports its tracks): dropping it where the score dips would report the object as gone
        kept = (d for d in tracked if d.score >= threshold or d.track_id is not None)
        return sorted(kept, key=lambda d: -d.score)

    def _count(self, counter: Counter, tracker: Tracker, tracked: list[Any], frame: Frame) -> list[dict[str, Any]]:
        """Counting never costs the frame its detections: the counter keeps or sends each crossing whatever the
        disk does (odedge.outbox); anything it still raises is logged and counted (``counting_errors``) here, and
        the frame's detections go out all the same. The zones' visits are followed over the whole run beside it."""
        events: list[dict[str, Any]] = []
        try:
            events = counter.observe(tracked, (frame.image.shape[1], frame.image.shape[0]), frame.timestamp)
            counter.forget(tracker.ended)
            if self.zone_visits is not None:  # the counter's entered: the (zone, track) pairs inside this frame
                seen = (d.track_id for d in tracked if d.track_id is not None)
                self.zone_visits.observe(list(counter.entered), seen, frame.timestamp)
                self.zone_visits.forget(tracker.ended)
        except Exception:
            logger.exception("counting.failed")
            self.counters.add("counting_errors")
        return events

    def _evidence(self, evidence: EvidenceRecorder, frame: Frame, tracked: list[Any], events: list[Any]) -> None:
        """The frame into the evidence ring; a failure there is logged and counted, and costs nothing else."""
        try:
            evidence.observe(frame.image, frame.index, frame.timestamp, tracked, events)
        except Exception:
            logger.exception("evidence.failed")
            self.counters.add("evidence_errors")

    def _observe(self, result: FrameResult) -> None:
        for stage in self.stages:
            try:  # one failing stage never stops the loop or the other stages
                stage.observe(result)
            except Exception:
                logger.exception("stage.failed", extra={"fields": {"stage": stage.name}})
                self.counters.add("stage_errors")

    def _due(self) -> bool:
        interval = self.config.publish_interval
        now = time.monotonic()
        if interval <= 0 or now - self._last_publish >= interval:
            self._last_publish = now
            return True
        return False

    def _detections_per_frame(self) -> float:
        """Boxes per processed frame since the last health message: what a canary compares with the model before."""
        frames, found = self.counters.get("frames_processed"), self.counters.get("detections")
        last_frames, last_found = self._health_mark
        self._health_mark = (frames, found)
        return round((found - last_found) / (frames - last_frames), 4) if frames > last_frames else 0.0

    def health(self, started: float) -> bytes:
        return health_message(
            self.config.thing_name,
            self.package.version,
            self.counters.snapshot(),
            self.latency.fps(),
            self.latency.percentiles(),
            time.monotonic() - started,
            self.counter.summary() if self.counter is not None else None,
            self.runtime.choice.describe(),
            self._detections_per_frame(),
            self.quality.warning,
            self.config.model_component,
            self.frame_time if self.source.clock is not None else None,  # a file's own clock; a camera's: now
            camera=self.camera.summary() if self.camera is not None else None,
            evidence=self.evidence.summary() if self.evidence is not None else None,
        )

    def run(self) -> LoopResult:
        started = time.monotonic()
        capture = threading.Thread(target=self._capture, name="capture", daemon=True)
        capture.start()
        next_health = started + self.config.health_interval
        stopped_by = "end of source"
        while True:
            if self.stop.is_set():
                stopped_by = "stop requested"
                break
            frame = self.frames.get()
            if frame is None:
                if self.frames.done():
                    break
            else:
                try:
                    self.process(frame)
                except Exception:
                    logger.exception("frame.failed")
                    self.counters.add("frame_errors")
            if time.monotonic() >= next_health:
                self._publish(self.health_topic, self.health(started))
                next_health = time.monotonic() + self.config.health_interval
        self.stop.set()
        capture.join(timeout=2.0)
        if self.evidence is not None:  # the last crossings' items written (2 s at most) before the last health
            self.evidence.close(timeout=2.0)
        self._publish(self.health_topic, self.health(started))
        if self.source_error is not None:
            raise self.source_error
        result = self._result(stopped_by, started)
        log_event(
            logger,
            "loop.stopped",
            stopped_by=stopped_by,
            frames=result.frames,
            fps=result.fps,
            dropped=self.counters.get("frames_dropped"),
        )
        return result

    def _result(self, stopped_by: str, started: float) -> LoopResult:
        """What the run comes to: the caller's summary (odctl detect) is made of it."""
        return LoopResult(
            int(self.counters.get("frames_processed")),
            self.counters.snapshot(),
            self.latency.fps(),
            self.latency.percentiles(),
            stopped_by,
            round(time.monotonic() - started, 2),
            counts=self.counter.summary() if self.counter is not None else None,
            warnings=(*self.quality.warnings, *self.source.warnings),
            zones=self.zone_visits.summary() if self.zone_visits is not None else None,
            clock=self.source.clock,
        )
