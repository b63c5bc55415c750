"""Camera faults part-way through generated scenes, and what odedge.camera_health makes of them (issue 36).

Two scenes: ``synth``, odctl's generated boxes (a textured floor, boxes bouncing across it, a pole passing, the
lighting drifting by +-22%, sensor noise) seen through a 640x360 window of a larger canvas; ``room``, the two real
frames of the original room (shared/fixtures/seed: a person carrying a blue box, then a yellow one, taking turns),
through a window of the 1920x1080 frame at 640x360, with fresh sensor noise on every frame. A fault is applied to the
camera's picture between two times: covered (a cloth over 90% of the lens), dark, overexposed, blurred (defocus
before the sensor's noise), shifted or rotated (the window moved on the scene: the camera knocked), frozen (the
frame at the fault's start repeated exactly, as a decoder repeating its buffer).

``python -m tests.edge_component.camera_scenes`` prints every fault's detection and clearing delays and the states
found on normal scenes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from tests.conftest import SEED

EPOCH = 1_767_225_600.0  # 2026-01-01T00:00:00Z: the frames' clock starts here
FAULT_STATES = {
    "covered": "covered",
    "dark": "dark",
    "overexposed": "overexposed",
    "blurred": "defocused",
    "shifted": "moved",
    "rotated": "moved",
    "frozen": "frozen",
}
SYNTH_CANVAS, SYNTH_VIEW, SYNTH_ORIGIN = (768, 432), (640, 360), (64, 36)


@dataclass(frozen=True)
class Fault:
    kind: str | None = None  # one of FAULT_STATES, None: a normal scene
    start: float = 35.0  # seconds into the scene
    end: float = 65.0

    def on(self, t: float) -> bool:
        return self.kind is not None and self.start <= t < self.end


def synth_canvases(count: int = 60, seed: int = 0) -> list[np.ndarray]:
    """odctl's generated scene on a canvas larger than the camera's view; cycled, ``count`` frames make the scene."""
    from odctl.synth_video import SynthSpec, render

    spec = SynthSpec("camera", ("blue box", "yellow box"), count, *SYNTH_CANVAS, seed=seed)
    return [frame for frame, _ in render(spec)]


def room_canvases() -> list[np.ndarray]:
    return [cv2.imread(str(SEED / name)) for name in ("blue_box_1_000133.jpg", "yellow_box_1_000086.jpg")]


def _window(canvas: np.ndarray, view: tuple[int, int], origin: tuple[int, int], fault: str | None) -> np.ndarray:
    """The camera's view of the canvas; shifted or rotated when it was knocked."""
    x, y = origin
    width, height = view
    if fault == "shifted":  # 7.5% of the width across, 5% down
        x, y = x + round(0.075 * width), y + round(0.05 * height)
    if fault == "rotated":  # 5 degrees about the view's centre
        centre = (x + width / 2, y + height / 2)
        canvas = cv2.warpAffine(canvas, cv2.getRotationMatrix2D(centre, 5.0, 1.0), canvas.shape[1::-1])
    return canvas[y : y + height, x : x + width]


def _damage(image: np.ndarray, fault: str | None, noise: np.ndarray) -> np.ndarray:
    """The picture's own faults (the window's are in ``_window``), each with the sensor's noise after it."""
    height, width = image.shape[:2]
    if fault == "covered":  # a cloth over 90% of the lens: one colour with a soft fold
        cloth = np.empty_like(image)
        cloth[:] = (70, 95, 130)
        fold = np.linspace(-8, 8, width)[None, :, None]
        image = image.copy()
        image[:, : int(0.9 * width)] = np.clip(cloth + fold, 0, 255).astype(np.uint8)[:, : int(0.9 * width)]
    elif fault == "dark":
        image = cv2.convertScaleAbs(image, alpha=0.08)
    elif fault == "overexposed":
        image = cv2.convertScaleAbs(image, alpha=2.5, beta=90)
    elif fault == "blurred":  # defocus: 3 px (at 640 wide) before the sensor
        image = cv2.GaussianBlur(image, (0, 0), 3.0 * width / 640)
    else:
        return image
    return _noisy(image, noise)


def _noisy(image: np.ndarray, noise: np.ndarray) -> np.ndarray:
    return np.clip(image.astype(np.int16) + noise, 0, 255).astype(np.uint8)


@dataclass
class Scene:
    """Frames of one scene with one fault: ``frames()`` yields (BGR image, the frame's time). The sensor's noise
    (sigma 2) comes from a pool of seven noise frames, a different one on consecutive frames."""

    name: str  # synth or room
    fault: Fault = field(default_factory=Fault)
    seconds: float = 95.0
    fps: float = 10.0
    canvases: list[np.ndarray] = field(default_factory=list)
    seed: int = 0
    views: dict[tuple[int, str | None], np.ndarray] = field(default_factory=dict)  # the room's windows, made once

    def frames(self) -> Iterator[tuple[np.ndarray, float]]:
        canvases = self.canvases or (synth_canvases() if self.name == "synth" else room_canvases())
        rng = np.random.default_rng(self.seed)
        pool = [rng.normal(0, 2.0, size=(360, 640, 1)).astype(np.int16) for _ in range(7)]
        held: np.ndarray | None = None
        for index in range(int(self.seconds * self.fps)):
            t = index / self.fps
            kind = self.fault.kind if self.fault.on(t) else None
            if kind == "frozen" and held is not None:
                yield held, EPOCH + t
                continue
            image = _damage(self._picture(canvases, index, kind, pool), kind, pool[(index + 3) % len(pool)])
            held = image if kind == "frozen" else None
            yield image, EPOCH + t

    def _picture(self, canvases: list[np.ndarray], index: int, kind: str | None, pool: list[np.ndarray]) -> np.ndarray:
        if self.name == "synth":
            return _window(canvases[index % len(canvases)], SYNTH_VIEW, SYNTH_ORIGIN, kind)
        # the room: the two frames take turns every 1.5 s, each frame with its own noise
        turn = int(index / self.fps / 1.5) % 2
        window = kind if kind in ("shifted", "rotated") else None
        if (turn, window) not in self.views:
            view = _window(canvases[turn], (1728, 972), (96, 54), window)
            self.views[(turn, window)] = cv2.resize(view, SYNTH_VIEW, interpolation=cv2.INTER_AREA)
        return _noisy(self.views[(turn, window)], pool[index % len(pool)])


@dataclass
class Outcome:
    """What camera health said over a scene: each state's entries and clearings (scene seconds)."""

    entered: dict[str, list[float]] = field(default_factory=dict)
    cleared: dict[str, list[float]] = field(default_factory=dict)

    def delays(self, fault: Fault) -> dict[str, Any]:
        """The fault's state: seconds from the fault's start to its entry and from its end to its clearing;
        ``false``: every other entry (any state outside the fault, or another state during it)."""
        expected = FAULT_STATES.get(fault.kind or "", "")
        entries = [t for t in self.entered.get(expected, []) if t >= fault.start]
        clears = [t for t in self.cleared.get(expected, []) if t >= fault.end]
        false = sum(len(times) for state, times in self.entered.items() if state != expected)
        false += sum(1 for t in self.entered.get(expected, []) if not fault.start <= t < fault.end + 1)
        return {
            "state": expected,
            "detected_after_s": round(entries[0] - fault.start, 1) if entries else None,
            "cleared_after_s": round(clears[0] - fault.end, 1) if clears else None,
            "false_states": false,
        }


def run_scene(scene: Scene, health: Any) -> Outcome:
    """Feed the scene's frames to a ``CameraHealth``; record when each state enters and clears."""
    from odedge.camera_health import STATES

    outcome, active = Outcome(), set()
    for image, now in scene.frames():
        health.watch(image, now)
        for state in STATES:
            on = health.tracks[state].active
            if on and state not in active:
                outcome.entered.setdefault(state, []).append(round(now - EPOCH, 2))
            if not on and state in active:
                outcome.cleared.setdefault(state, []).append(round(now - EPOCH, 2))
            (active.add if on else active.discard)(state)
    return outcome


def evaluate() -> dict[str, Any]:
    """Every fault on both scenes, and normal scenes: the delays and the false states."""
    from odedge.camera_health import CameraHealth

    canvases = {"synth": synth_canvases(), "room": room_canvases()}
    views: dict[tuple[int, str | None], np.ndarray] = {}
    report: dict[str, Any] = {}
    for name in ("synth", "room"):
        for kind in (*FAULT_STATES, None):
            fault = Fault(kind)
            scene = Scene(name, fault, canvases=canvases[name], views=views if name == "room" else {})
            report[f"{name}/{kind or 'normal'}"] = run_scene(scene, CameraHealth()).delays(fault)
    return report


def normal_videos(folder: Path, seeds: range = range(6), loops: int = 3) -> dict[str, Any]:
    """``odctl synth-video``'s defaults (300 frames, 10 fps) and its crossings scenario for each seed, written as mp4
    and decoded by the device's own source, each played ``loops`` times over: every state said is a false one."""
    from odctl.synth_video import SynthSpec, write_video
    from odedge.camera_health import CameraHealth
    from odedge.sources import EndOfStream, VideoSource
    from odedge.telemetry import Counters

    said: dict[str, Any] = {}
    for seed in seeds:
        for scenario in ("random", "crossings"):
            spec = SynthSpec(f"{scenario}_{seed}", ("blue box", "yellow box"), seed=seed, scenario=scenario)
            video, _ = write_video(spec, folder)
            source = VideoSource(str(video), Counters(), loop=True, start_time=EPOCH)
            health, entered, last = CameraHealth(), 0, ""
            while source.index < source.declared_frames * loops:
                try:
                    frame = source.read()
                except EndOfStream:
                    break
                if frame is not None:
                    flag = health.watch(frame.image, frame.timestamp)
                    entered += bool(flag and flag != last)
                    last = flag
            said[spec.name] = {"seconds": round(source.index / spec.fps), "false_states": entered}
    return said


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        report = {"faults": evaluate(), "normal_videos": normal_videos(Path(tmp))}
    print(json.dumps(report, indent=2))  # noqa: T201 - the evaluation's output is its report
