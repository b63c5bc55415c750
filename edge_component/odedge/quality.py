"""A model too weak to count is named before its counts are trusted.

A weak detector floods the tracker: false boxes start short tracks, and every false track that drifts across a
line is a crossing (a 30-epoch model with validation mAP 0.53 counted 43 crossings against 5 true). Two signs, each
said once as a WARNING log line, in every health message (``model_warning``) and in ``odctl detect``'s summary:
- the package's recorded mAP is under ``floor``: model.json ``held_out.map`` (odctl evaluate, on frames the training
  never saw) where there is one, else ``validation.mAP`` (the conversion from local training, the workflow's
  scoring step); the warning names which;
- tracks are confirmed faster than real objects arrive: more than ``flood`` new tracks per frame over ``window``
  frames (0.2 a frame is four new objects a second at 20 frames a second, sustained).
"""

from __future__ import annotations

import logging
from collections import deque

from .telemetry import log_event

logger = logging.getLogger(__name__)


class ModelQuality:
    def __init__(self, floor: float, flood: float, window: int = 150) -> None:
        self.floor, self.flood = floor, flood
        self.recent: deque[int] = deque(maxlen=window)
        self.in_window = 0  # the sum of ``recent``, kept as frames come and go (this runs on every frame)
        self.flooded = False
        self.warnings: list[str] = []

    def check_recorded(self, recorded_map: float | None, source: str = "validation") -> None:
        """``source``: held-out (odctl evaluate, frames the training never saw) or validation (the training's)."""
        if recorded_map is not None and recorded_map < self.floor:
            self._warn(
                f"{source} mAP {recorded_map:.2f} is under {self.floor:.2f}: counts will be inflated by false "
                "tracks; train longer or label more frames before trusting them",
                recorded_map=recorded_map,
                source=source,
            )

    def observe(self, confirmed_now: int) -> None:
        """One frame's newly confirmed tracks."""
        if len(self.recent) == self.recent.maxlen:
            self.in_window -= self.recent[0]
        self.recent.append(confirmed_now)
        self.in_window += confirmed_now
        if len(self.recent) == self.recent.maxlen and not self.flooded:
            rate = self.in_window / len(self.recent)
            if rate > self.flood:
                self.flooded = True
                self._warn(
                    f"tracks flood: {rate:.2f} new tracks a frame over {len(self.recent)} frames (more than "
                    f"{self.flood:.2f}): the model sees objects that are not there; its counts are not to be trusted",
                    rate=round(rate, 3),
                )

    @property
    def warning(self) -> str:
        return "; ".join(self.warnings)

    def _warn(self, text: str, **fields: float | str) -> None:
        self.warnings.append(text)
        log_event(logger, "model.weak", level=logging.WARNING, why=text, **fields)
