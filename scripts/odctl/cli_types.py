"""Argument types that check ranges where argparse parses, so a bad number is one usage line and exit 2.

Each type keeps its bounds (``low``/``high``): the CLI test walks every numeric option and tries a value outside.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Number:
    kind: Callable[[str], float | int]
    low: float | None = None
    high: float | None = None
    low_open: bool = False  # low itself is refused
    high_open: bool = False  # high itself is refused

    def __call__(self, text: str) -> float | int:
        try:
            value = self.kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {self._noun()}") from None
        if isinstance(value, float) and not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
        too_low = self.low is not None and (value < self.low or (self.low_open and value == self.low))
        too_high = self.high is not None and (value > self.high or (self.high_open and value == self.high))
        if too_low or too_high:
            raise argparse.ArgumentTypeError(f"{text} is out of range: {self.describe()}")
        return value

    def _noun(self) -> str:
        return "an integer" if self.kind is int else "a number"

    def describe(self) -> str:
        low = "" if self.low is None else f"{'>' if self.low_open else '>='} {self.low:g}"
        high = "" if self.high is None else f"{'<' if self.high_open else '<='} {self.high:g}"
        return f"{self._noun()} {' and '.join(p for p in (low, high) if p)}"

    def outside(self) -> str:
        """A value this type refuses (for the CLI walk test)."""
        value = 1e12 if self.low is None else (self.low if self.low_open else self.low - 1)
        return str(int(value)) if self.kind is int else str(float(value))

    @property
    def __name__(self) -> str:  # argparse names the type in its messages
        return self._noun()


def positive_int(high: int | None = None) -> Number:
    return Number(int, 1, high)


def non_negative_int(high: int | None = None) -> Number:
    return Number(int, 0, high)


def positive_float(high: float | None = None) -> Number:
    return Number(float, 0.0, high, low_open=True)


def fraction(low_open: bool = False, high_open: bool = False) -> Number:
    return Number(float, 0.0, 1.0, low_open=low_open, high_open=high_open)


PORT = Number(int, 1, 65535)


def shape_option(text: str, option: str) -> dict[str, Any]:
    """``NAME:x1,y1,x2,y2[:DIRECTION]`` (a line; the in-direction as a move on the image: left-to-right,
    right-to-left, top-to-bottom or bottom-to-top) or ``NAME:x1,y1,x2,y2,x3,y3,...`` (a zone), fractions of the
    frame; the device's configuration checks the points."""
    name, _, rest = text.partition(":")
    coordinates, _, direction = rest.partition(":")
    try:
        values = [float(v) for v in coordinates.split(",")]
    except ValueError:
        raise ValueError(f"{option} {text!r}: expected NAME:x1,y1,x2,y2,... with numbers in [0, 1]") from None
    if not name or len(values) % 2:
        raise ValueError(f"{option} {text!r}: expected NAME:x1,y1,x2,y2,... (pairs of numbers)")
    outside = [v for v in values if not 0.0 <= v <= 1.0]
    if outside:
        raise ValueError(
            f"{option} {text!r}: points are fractions of the frame (0 to 1; 0.5 is the middle), not pixels: "
            f"{', '.join(f'{v:g}' for v in outside)}"
        )
    if option == "--line" and len(values) != 4:
        raise ValueError(
            f"{option} {text!r}: a line has two points, NAME:x1,y1,x2,y2 (a zone, --zone, takes three or more)"
        )
    shape: dict[str, Any] = {"name": name, "points": [values[i : i + 2] for i in range(0, len(values), 2)]}
    if option != "--line":
        if direction:
            raise ValueError(f"{option} {text!r}: a zone has no direction (a line, --line, has)")
        return shape
    try:
        inward = _configuration_word((values[0], values[1]), (values[2], values[3]), direction)
    except ValueError as exc:
        raise ValueError(f"{option} {text!r}: {exc}") from None
    return shape if inward is None else {**shape, "in": inward}


def _configuration_word(start: tuple[float, float], end: tuple[float, float], direction: str) -> str | None:
    """The device configuration's ``in`` for the image's word ``direction``: top-to-bottom and bottom-to-top as
    they are (the device reads them as the image's), left-to-right and right-to-left as the line's own side (what
    the device has always read them as: the mirrored word for a line drawn upwards). Without a direction, the
    device's default (the line's own left-to-right) where that is a left or right move, else the image's word that
    means the same, so the configuration never holds a word that runs along its line (the device logs those)."""
    from odedge.counting import fitting_words, image_direction, line_direction

    if start == end:
        raise ValueError("a line needs two different points")
    if not direction:
        return None if "left-to-right" in fitting_words(start, end) else image_direction(start, end, "left-to-right")
    own = line_direction(start, end, direction)  # refuses a word that runs along the line, naming those that fit
    return direction if direction in ("top-to-bottom", "bottom-to-top") else own
