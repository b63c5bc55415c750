"""The component's configuration: recipe DefaultConfiguration values (strings, as Greengrass passes them),
command-line flags and environment, validated once at start with errors that name the key."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

from .errors import ConfigError
from .runtimes import BACKEND_CHOICES, PRECISIONS

__all__ = ["ConfigError", "EdgeConfig", "argument_parser", "from_args", "instant"]


@dataclass(frozen=True)
class EdgeConfig:
    model_dir: str
    source: str = "0"
    backend: str = "auto"  # auto: openvino on x86-64 where it is installed, else onnx; or mxnet
    precision: str = "int8"  # int8 where the model package has it, else fp32 (health says which runs)
    score_threshold: float = 0.5
    classes: tuple[str, ...] = ()
    input_size: int = 0  # 0: whatever the model says; otherwise the model must match
    thing_name: str = field(default_factory=lambda: os.environ.get("AWS_IOT_THING_NAME", "local"))
    # the model component's version (the recipe passes the model component's own ComponentVersion setting): health
    # names it, so a canary judges the model by reports of that version only
    model_component: str = ""
    publisher: str = "auto"  # auto | ipc | mqtt | jsonl
    publish_topic: str = "od/{thing}/detections"
    health_topic: str = "od/{thing}/health"
    request_topic: str = "od/{thing}/requests"
    result_topic: str = "od/{thing}/results"
    local_topic: str = ""
    publish_interval: float = 0.0
    publish_empty: bool = False
    health_interval: float = 30.0
    mqtt_host: str = "localhost"
    mqtt_port: int = 1883
    jsonl: str = ""
    loop: bool = False
    realtime: bool = False
    max_frames: int = 0
    max_retries: int = 0  # a live source's reconnect attempts before the run fails; 0: forever (Greengrass)
    # a video file's clock: ISO 8601 time of its first frame (with its zone); "": the file's modification time less
    # its duration (a looped file: when the run starts). Its frames are stamped start + position, so a recorded hour
    # is an hour in the counts (cameras keep the wall clock)
    start_time: str = ""
    queue_size: int = 2
    buffer_size: int = 1000
    snapshot_dir: str = ""
    snapshot_interval: float = 10.0
    snapshot_max_mb: float = 100.0
    capture_dir: str = ""
    uncertain_low: float = 0.3
    uncertain_high: float = 0.6
    capture_interval: float = 5.0
    capture_motion: bool = False
    upload_bucket: str = ""
    upload_prefix: str = "capture"
    threads: int = 0  # the runtime's intra-op threads; 0: its default (one per core)
    track: bool = False  # give detections track ids (on by itself when lines or zones are set)
    track_low: float = 0.1  # the tracker's second stage: weaker boxes that keep a track alive
    track_max_lost: int = 30  # frames a track survives unseen (occlusion, a step out of view)
    weak_model_map: float = 0.6  # under this recorded mAP (held-out, else validation): too weak to count
    flood_new_tracks: float = 0.2  # more new tracks a frame than this (150 frames) names the model too weak
    lines: str = ""  # JSON: [{"name": ..., "points": [[x, y], [x, y]], "in": "left-to-right"}], fractions of the frame
    zones: str = ""  # JSON: [{"name": ..., "points": [[x, y], ...]}]
    counts_topic: str = "od/{thing}/counts"
    counts_file: str = ""  # totals and the sequence survive restarts here (the component's work folder)
    outbox_dir: str = ""  # crossings not yet delivered; default: "outbox" beside counts_file (in memory without one)
    outbox_max: int = 10000  # crossings the outbox keeps; past it a crossing's event is lost, loudly
    # KiB the outbox leaves free in the work folder (the totals' file, the device); past it crossings are sent from
    # memory, loudly (odedge.outbox)
    outbox_reserve_kb: int = 1024
    # evidence per crossing (odedge.evidence): off at 0 MB, the default (pictures of whoever passes the camera are
    # the operator's decision, not a fleet default); the folder defaults to "evidence" beside counts_file
    evidence_max_mb: float = 0.0
    evidence_dir: str = ""
    evidence_frames: int = 4  # JPEGs per crossing: half before it (the object on its side), the crossing, after
    evidence_ring: int = 24  # recent frames kept in memory, shrunk to evidence_width
    evidence_width: int = 480  # pixels: the ring's and the JPEGs' width
    evidence_privacy: str = "blur"  # blur (outside the boxes), crop (to the track), none
    evidence_queue: int = 8  # items waiting for the writer; past it an item is dropped (counted), never waited for
    evidence_upload: bool = True  # to s3://upload_bucket/evidence/<thing>/<event_id>/ where upload_bucket is set

    @property
    def outbox_folder(self) -> str:
        if self.outbox_dir or not self.counts_file:
            return self.outbox_dir
        return os.path.join(os.path.dirname(self.counts_file) or ".", "outbox")

    @property
    def evidence_folder(self) -> str:
        """Where evidence goes, "" when it is off (no budget, or no folder to put it in)."""
        if self.evidence_max_mb <= 0:
            return ""
        if self.evidence_dir or not self.counts_file:
            return self.evidence_dir
        return os.path.join(os.path.dirname(self.counts_file) or ".", "evidence")

    def _evidence_checks(self) -> list[tuple[bool, str, str]]:
        on = self.evidence_max_mb > 0
        return [
            (self.evidence_max_mb >= 0, "evidence_max_mb", "must be 0 (off) or more"),
            (not on or bool(self.evidence_folder), "evidence_dir", "needed for evidence without counts_file"),
            (self.evidence_frames >= 2, "evidence_frames", "must be at least 2 (one each side of the line)"),
            (self.evidence_ring >= self.evidence_frames, "evidence_ring", "must be at least evidence_frames"),
            (self.evidence_width >= 64, "evidence_width", "must be at least 64 pixels"),
            (self.evidence_privacy in ("blur", "crop", "none"), "evidence_privacy", "must be blur, crop or none"),
            (self.evidence_queue >= 1, "evidence_queue", "must be at least 1"),
        ]

    def __post_init__(self) -> None:
        checks = [
            (0.0 <= self.score_threshold <= 1.0, "score_threshold", "must be in [0, 1]"),
            (self.max_retries >= 0, "max_retries", "must be 0 (retry forever) or more"),
            (self.backend in BACKEND_CHOICES, "backend", f"must be one of {', '.join(BACKEND_CHOICES)}"),
            (self.precision in PRECISIONS, "precision", f"must be one of {', '.join(PRECISIONS)}"),
            (self.publisher in ("auto", "ipc", "mqtt", "jsonl"), "publisher", "must be auto, ipc, mqtt or jsonl"),
            (self.queue_size >= 1, "queue_size", "must be at least 1"),
            (self.buffer_size >= 1, "buffer_size", "must be at least 1"),
            (self.outbox_max >= 1, "outbox_max", "must be at least 1"),
            (self.outbox_reserve_kb >= 0, "outbox_reserve_kb", "must be 0 or more"),
            (self.threads >= 0, "threads", "must be 0 (the runtime's default) or more"),
            (
                0.0 <= self.uncertain_low <= self.uncertain_high <= 1.0,
                "uncertain_low/uncertain_high",
                "must satisfy 0 <= low <= high <= 1",
            ),
            (1 <= self.mqtt_port <= 65535, "mqtt_port", "must be a TCP port"),
            (0.0 <= self.weak_model_map <= 1.0, "weak_model_map", "must be in [0, 1]"),
            (self.flood_new_tracks > 0, "flood_new_tracks", "must be more than 0"),
            *self._evidence_checks(),
        ]
        for ok, key, why in checks:
            if not ok:
                raise ConfigError(f"configuration {key}: {why} (got {getattr(self, key.split('/')[0])!r})")
        self.start_epoch  # noqa: B018 - names a bad start_time at start
        from .counting import parse_lines, parse_zones  # names the bad key: lines[0].points, zones[1].points, ...

        parse_lines(self.lines, notify=False)  # the loop's own parse logs what is deprecated, once
        parse_zones(self.zones)
        if not 0.0 <= self.track_low <= self.score_threshold:
            raise ConfigError(f"configuration track_low: must be in [0, score_threshold] (got {self.track_low!r})")

    @property
    def start_epoch(self) -> float | None:
        """``start_time`` in seconds since the epoch; None for the file's default (odedge.sources)."""
        try:
            return instant(self.start_time)
        except ValueError as exc:
            raise ConfigError(f"configuration start_time: {exc}") from None

    @property
    def tracking(self) -> bool:
        return self.track or bool(self.lines.strip() or self.zones.strip())

    def topic(self, template: str) -> str:
        return template.replace("{thing}", self.thing_name).replace("{iot:thingName}", self.thing_name)

    @classmethod
    def from_mapping(cls, values: dict[str, Any]) -> EdgeConfig:
        """Build from string values (recipe configuration), converting each to its field's type."""
        known = {f.name: f for f in fields(cls)}
        kwargs: dict[str, Any] = {}
        for key, raw in values.items():
            if raw is None or key not in known:
                continue
            kind = known[key].type
            try:
                if kind in ("float", float):
                    kwargs[key] = float(raw)
                elif kind in ("int", int):
                    kwargs[key] = int(float(raw))
                elif kind in ("bool", bool):
                    kwargs[key] = raw if isinstance(raw, bool) else str(raw).strip().lower() in ("1", "true", "yes")
                elif key == "classes":
                    items = raw if isinstance(raw, list | tuple) else str(raw).split(",")
                    kwargs[key] = tuple(item.strip() for item in items if item.strip())
                else:
                    kwargs[key] = str(raw)
            except ValueError as exc:
                raise ConfigError(f"configuration {key}: {raw!r} is not a valid {kind}") from exc
        if "model_dir" not in kwargs:
            raise ConfigError("configuration model_dir: required (the model component's artifact folder)")
        return cls(**kwargs)


def instant(text: str) -> float | None:
    """An ISO 8601 time with its zone in seconds since the epoch; "" is None. A time without its zone is refused:
    read in the device's own zone, it would shift every hour of the counts without a word."""
    text = text.strip()
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise ValueError(f"ISO 8601 with a zone, such as 2026-03-01T08:00:00Z (got {text!r})")
    return moment.timestamp()


def argument_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="odedge", description="SSD inference loop for Greengrass v2 devices.")
    for f in fields(EdgeConfig):
        flag = "--" + f.name.replace("_", "-")
        if f.type in ("bool", bool):
            parser.add_argument(flag, default=None, help=f"{f.name} (true/false)")
        else:
            parser.add_argument(flag, default=None, help=f.name)
    return parser


# keys whose values are JSON: the recipe passes them as ODEDGE_<KEY> environment variables (Setenv), never through a
# shell command line, where a quote in a line's name would end the word
ENVIRONMENT_KEYS = ("lines", "zones")


def from_args(argv: list[str] | None = None) -> EdgeConfig:
    args = argument_parser().parse_args(argv)
    values = {
        key: os.environ[f"ODEDGE_{key.upper()}"] for key in ENVIRONMENT_KEYS if f"ODEDGE_{key.upper()}" in os.environ
    }
    values.update({k: v for k, v in vars(args).items() if v is not None})  # a flag wins
    return EdgeConfig.from_mapping(values)
