"""Ingestion at scale: one video of a bucket prefix becomes its frames, its part of the labeling manifest and its
contact sheet (one Distributed Map item, the ExtractVideo Lambda); then the parts become one labeling manifest, in
video and frame order, streamed (the MergeManifest Lambda). ``odctl extract-frames``/``make-manifest`` run the same
frame, sampling and manifest-line code. The run's layout and the merge live in :mod:`odshared.data.ingest_runs`,
which needs no numpy: the MergeManifest bundle carries no wheels.

Layout under the run's prefix: ``parts/<video-stem>.manifest`` and ``parts/<video-stem>.json`` (written last: the
video is complete, with these parameters), ``sheets/<video-stem>.png``, ``labeling.manifest``. Frames go to
``<frames prefix>/<video-stem>/<video-stem>_<frame:06d>.jpg`` as ``extract-frames`` writes them.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from odshared.core import storage
from odshared.core.log import log_event
from odshared.data.frames import extract_frames
from odshared.data.ingest_runs import IngestError, video_stem
from odshared.data.input_manifest import build_input_manifest

logger = logging.getLogger(__name__)
VIDEO_SUFFIXES = (".mp4", ".mov", ".avi", ".mkv", ".m4v", ".webm")
FLUSH_MARGIN_S = 20.0  # left for the uploads in flight and the manifest part when time runs out


@dataclass(frozen=True)
class IngestVideo:
    """One item of the ingestion map: the video and how to sample it."""

    video: str
    frames_prefix: str
    output_prefix: str
    every: int | None = None
    fps: float | None = None
    metadata_from_name: str | None = None

    @classmethod
    def from_event(cls, event: dict[str, Any]) -> IngestVideo:
        item = event.get("item") or {}
        key, bucket = item.get("Key"), event.get("bucket")
        if not isinstance(key, str) or not isinstance(bucket, str):
            raise IngestError(f"the map item names no S3 object: {json.dumps(event)[:300]}")
        sampling = event.get("sampling") or {}
        every, fps = sampling.get("every"), sampling.get("fps")
        return cls(
            f"s3://{bucket}/{key}",
            event["frames_prefix"],
            event["output_prefix"],
            int(every) if every is not None else None,
            float(fps) if fps is not None else None,
            event.get("metadata_from_name") or None,
        )

    def parameters(self) -> dict[str, Any]:
        return {"every": self.every, "fps": self.fps, "metadata_from_name": self.metadata_from_name}


def ingest_video(
    request: IngestVideo, remaining_s: Callable[[], float] | None = None, workdir: str | None = None
) -> dict[str, Any]:
    """Frames, manifest part and contact sheet of one video; a video already done with the same parameters is
    not redone. ``remaining_s`` is the function's time left: the video fails, naming the limit, before it runs out.
    A failure is recorded under ``failed/<video-stem>.json`` (the merge lists them) and raised, so the map counts it
    against its tolerated share."""
    failed = storage.join(request.output_prefix, "failed", f"{video_stem(request.video)}.json")
    try:
        result = _ingest(request, remaining_s, workdir)
    except Exception as exc:
        record = {"video": request.video, "error": type(exc).__name__, "cause": str(exc)}
        storage.write_text(failed, json.dumps(record) + "\n", "application/json")
        log_event(logger, "ingest.video_failed", level=logging.ERROR, **record)
        raise
    storage.delete(failed)  # an earlier run's failure of this video is over (deleting none is no error)
    return result


def _ingest(request: IngestVideo, remaining_s: Callable[[], float] | None, workdir: str | None) -> dict[str, Any]:
    stem, video = video_stem(request.video), request.video
    if not video.lower().endswith(VIDEO_SUFFIXES):
        return {"video": video, "status": "skipped", "reason": f"not a video ({', '.join(VIDEO_SUFFIXES)})"}
    part = storage.join(request.output_prefix, "parts", f"{stem}.manifest")
    done = storage.join(request.output_prefix, "parts", f"{stem}.json")
    if storage.exists(done):
        record = json.loads(storage.read_text(done))
        if record.get("parameters") == request.parameters():
            log_event(logger, "ingest.unchanged", video=video)
            return {**record, "status": "unchanged"}
    workdir = workdir or tempfile.gettempdir()
    _check_space(video, workdir)

    def deadline() -> None:
        if remaining_s is not None and remaining_s() < FLUSH_MARGIN_S:
            raise IngestError(
                f"{video}: not finished within the ExtractVideo function's time limit; the frames written so far "
                "are kept (a re-run resumes): raise the function's timeout or split the video"
            )

    sheet = storage.join(request.output_prefix, "sheets", f"{stem}.png")
    extracted = extract_frames(
        video,
        storage.join(request.frames_prefix, stem),
        request.every,
        request.fps,
        preview=sheet,
        workers=16,
        on_frame=deadline,
        workdir=workdir,
    )
    manifest = build_input_manifest(
        [storage.join(request.frames_prefix, stem)],
        part,
        pattern=request.metadata_from_name,
        listing=lambda _: iter(extracted.frames),
    )
    record = {
        "video": video,
        "part": part,
        "lines": manifest.lines,
        "frames_in_video": extracted.frames_in_video,
        "frames_written": extracted.written,
        "contact_sheet": sheet,
        "parameters": request.parameters(),
    }
    storage.write_text(done, json.dumps(record, indent=2) + "\n", "application/json")
    log_event(logger, "ingest.video_done", **{k: v for k, v in record.items() if k != "parameters"})
    return {**record, "status": "done"}


def _check_space(video: str, workdir: str) -> None:
    """An s3:// video is downloaded to the function's ephemeral storage first."""
    if not storage.is_s3(video):
        return
    bucket, key = storage.split_s3(video)
    size = storage.s3_client().head_object(Bucket=bucket, Key=key)["ContentLength"]
    free = shutil.disk_usage(workdir).free
    if size > free * 0.9:
        raise IngestError(
            f"{video} is {size / 2**20:.0f} MiB but the ExtractVideo function has {free / 2**20:.0f} MiB of "
            "ephemeral storage free: raise its ephemeral storage (up to 10240 MiB) or split the video"
        )
