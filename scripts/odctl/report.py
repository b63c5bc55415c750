"""The evaluation report: one self-contained HTML page a person reads, from typed figures.

``write_report`` is the one way to write it (the demo's, ``odctl evaluate --report``'s): the counts against the truth
first (what the product is for), the headline figures with their units, AP per class, the inference loop's latency,
the training curve and the crossings over time as labelled charts, the pictures, then every figure as the summary
records it (folded away: it is for diffing runs, not for reading). Charts are inline SVG drawn here (no charting
library, no script, readable offline and searchable as text); each is also written beside the page as a PNG of the
same layout, for a slide or an issue, where inline SVG does not travel.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, NotRequired, TypedDict

import numpy as np

from odedge.drawing import BoxStyle, draw_box
from odshared.data.contact_sheet import encode_png

from .synth_video import class_colour


class CountPair(TypedDict):
    """One line, direction and class: what the device counted, the truth, and the ledger's count (when queried)."""

    counted: int
    true: int
    ledger: NotRequired[int]


Counts = Mapping[str, Mapping[str, Mapping[str, CountPair]]]  # line -> direction -> class -> pair


@dataclass(frozen=True)
class Headline:
    """One figure as a person reads it: what it is, its value, its unit (``%``, ``ms``, ``frames/s``...)."""

    label: str
    value: float | int | str | bool | None
    unit: str = ""


@dataclass(frozen=True)
class ClassAP:
    """Average precision at IoU 0.5 of one class, per precision measured, and its ground-truth boxes."""

    name: str
    ap: float | None
    boxes: int
    ap_int8: float | None = None


@dataclass(frozen=True)
class StageLatency:
    """One stage of the inference loop: its median and 95th percentile, in milliseconds."""

    stage: str
    p50_ms: float
    p95_ms: float | None = None


@dataclass(frozen=True)
class Epoch:
    """One training epoch: ``epoch`` counts the epochs trained (1 after the first), then the validation mAP@0.5
    and the training losses the trainer logged for it."""

    epoch: int
    validation_map: float
    cross_entropy: float
    smooth_l1: float


@dataclass(frozen=True)
class PeriodCount:
    """One row of the ledger's ``crossings_by_<period>`` query: crossings in ``direction`` in the period starting at
    ``period`` (UTC); ``line`` and ``class_name`` as the query's row has them."""

    period: datetime
    direction: str
    crossings: int
    line: str = ""
    class_name: str = ""


@dataclass(frozen=True)
class Picture:
    """A picture beside the page (a path relative to it) and what it shows."""

    src: str
    caption: str


@dataclass(frozen=True)
class ReportFigures:
    """Everything a report shows; a section without figures is left out. ``counts_on`` and ``per_class_on`` say what
    was counted and scored (``"the crossings video"``); ``crossings_period`` is the ledger query's period (minute,
    hour or day) and ``crossings_command`` the command that gives the same rows; ``raw`` every figure as the run's
    summary records it."""

    title: str
    summary: str = ""
    headlines: Sequence[Headline] = ()
    counts: Counts = field(default_factory=dict)
    counts_on: str = "the video"
    per_class: Sequence[ClassAP] = ()
    per_class_on: str = "the evaluation images"
    latency: Sequence[StageLatency] = ()
    training: Sequence[Epoch] = ()
    crossings: Sequence[PeriodCount] | None = None
    crossings_period: str = "minute"
    crossings_command: str = ""
    pictures: Sequence[Picture] = ()
    raw: Mapping[str, Any] = field(default_factory=dict)


# --- charts: one layout, drawn as inline SVG and as PNG --------------------------------------------------------------

WIDTH, HEIGHT = 760, 380
LEFT, RIGHT, TOP, BOTTOM = 78, 78, 74, 64  # the plot area's margins: ticks, axis titles, title and legend
INK, GRID, MUTED = "#222222", "#dddddd", "#555555"
SERIES = {"in": "#2e7d32", "out": "#c62828", "map": "#1f5fbf", "ce": "#e07b00", "l1": "#7b3fa0"}


@dataclass(frozen=True)
class Mark:
    """One thing drawn: ``line`` (x1, y1, x2, y2), ``rect`` (x, y, w, h), ``path`` (x, y, x, y...), ``dot`` (x, y,
    r) or ``text`` (x, y; ``anchor`` start, middle or end; ``vertical`` reads bottom to top)."""

    kind: str
    at: tuple[float, ...]
    colour: str = INK
    width: float = 1.0
    dashed: bool = False
    text: str = ""
    size: int = 12
    anchor: str = "start"
    vertical: bool = False
    bold: bool = False


@dataclass(frozen=True)
class Chart:
    """A chart's marks on a ``WIDTH`` x ``HEIGHT`` canvas, and its one-line description (the SVG's title)."""

    description: str
    marks: tuple[Mark, ...]


@dataclass(frozen=True)
class Axis:
    """A value axis: its title and ticks (the first and last are its range)."""

    title: str
    ticks: tuple[float, ...]

    def fraction(self, value: float) -> float:
        """Where ``value`` sits between the first and last tick, 0 to 1: the same for every backend."""
        low, high = self.ticks[0], self.ticks[-1]
        return (value - low) / (high - low) if high > low else 0.0


def nice_ticks(top: float, whole: bool = False, count: int = 5) -> tuple[float, ...]:
    """0 up to ``top`` or just above, in steps of 1, 2, 2.5 or 5 times a power of ten (whole numbers: at least 1)."""
    top = top if top > 0 else 1.0
    raw = top / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw * (1 - 1e-9))
    step = max(1.0, float(math.ceil(step))) if whole else step
    return tuple(round(i * step, 10) for i in range(int(math.ceil(top / step - 1e-9)) + 1))


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _frame(title: str, x_title: str, left: Axis, right: Axis | None) -> list[Mark]:
    """The plot area, its gridlines, tick labels and axis titles, and the chart's title."""
    x0, x1, y0, y1 = LEFT, WIDTH - RIGHT, TOP, HEIGHT - BOTTOM
    marks = [Mark("text", (WIDTH / 2, 22), text=title, size=15, anchor="middle", bold=True)]
    for tick in left.ticks:
        y = y1 - (y1 - y0) * left.fraction(tick)
        marks += [Mark("line", (x0, y, x1, y), GRID), Mark("text", (x0 - 8, y + 4), text=_number(tick), anchor="end")]
    marks += [
        Mark("line", (x0, y1, x1, y1)),
        Mark("line", (x0, y0, x0, y1)),
        Mark("text", (18, (y0 + y1) / 2), text=left.title, size=13, anchor="middle", vertical=True),
        Mark("text", ((x0 + x1) / 2, HEIGHT - 14), text=x_title, size=13, anchor="middle"),
    ]
    if right is not None:
        for tick in right.ticks:
            y = y1 - (y1 - y0) * right.fraction(tick)
            marks.append(Mark("text", (x1 + 8, y + 4), text=_number(tick)))
        marks += [
            Mark("line", (x1, y0, x1, y1)),
            Mark("text", (WIDTH - 16, (y0 + y1) / 2), text=right.title, size=13, anchor="middle", vertical=True),
        ]
    return marks


def _legend(entries: Sequence[tuple[str, str, bool]]) -> list[Mark]:
    """A row of (label, colour, dashed) swatches under the title, centred."""
    widths = [34 + 7 * len(label) for label, _, _ in entries]
    x = (WIDTH - sum(widths)) / 2
    marks = []
    for (label, colour, dashed), width in zip(entries, widths, strict=True):
        marks += [
            Mark("line", (x, 46, x + 20, 46), colour, 3, dashed),
            Mark("text", (x + 26, 50), MUTED, text=label),
        ]
        x += width
    return marks


def training_chart(epochs: Sequence[Epoch]) -> Chart:
    """Validation mAP@0.5 (left axis, 0 to 1) and the two training losses (right axis) per epoch trained."""
    ordered = sorted(epochs, key=lambda e: e.epoch)
    first, last = (ordered[0].epoch, ordered[-1].epoch) if ordered else (1, 1)
    low, high = (first, last) if last > first else (first - 0.5, last + 0.5)
    step = nice_ticks(max(1, last - first), whole=True)[1] if last > first else 1
    x0, x1, y0, y1 = LEFT, WIDTH - RIGHT, TOP, HEIGHT - BOTTOM
    left = Axis("validation mAP@0.5", nice_ticks(1.0))
    loss = max((max(e.cross_entropy, e.smooth_l1) for e in ordered), default=1.0)
    right = Axis("training loss", nice_ticks(loss))
    marks = _frame("Training: validation mAP and loss per epoch", "epochs trained", left, right)
    for tick in range(first, last + 1, int(step)):
        x = x0 + (x1 - x0) * (tick - low) / (high - low)
        marks += [Mark("line", (x, y1, x, y1 + 5)), Mark("text", (x, y1 + 20), text=str(tick), anchor="middle")]
    series = (
        ("validation mAP@0.5 (left)", SERIES["map"], False, left, lambda e: e.validation_map),
        ("cross-entropy loss (right)", SERIES["ce"], False, right, lambda e: e.cross_entropy),
        ("smooth L1 loss (right)", SERIES["l1"], True, right, lambda e: e.smooth_l1),
    )
    for _, colour, dashed, axis, value in series:
        points = [
            (x0 + (x1 - x0) * (e.epoch - low) / (high - low), y1 - (y1 - y0) * axis.fraction(value(e))) for e in ordered
        ]
        if len(points) > 1:
            marks.append(Mark("path", tuple(c for p in points for c in p), colour, 2.5, dashed))
        marks += [Mark("dot", (x, y, 3.5), colour) for x, y in points]
    marks += _legend([(label, colour, dashed) for label, colour, dashed, _, _ in series])
    if not ordered:
        marks.append(Mark("text", ((x0 + x1) / 2, (y0 + y1) / 2), MUTED, text="no epoch recorded", anchor="middle"))
    summary = (
        f"{len(ordered)} epochs; best validation mAP@0.5 {max((e.validation_map for e in ordered), default=0):.3f}"
    )
    return Chart(f"Training curve: {summary}", tuple(marks))


PERIOD_STEP = {"minute": timedelta(minutes=1), "hour": timedelta(hours=1), "day": timedelta(days=1)}
PERIOD_LABEL = {"minute": "%H:%M", "hour": "%H:00", "day": "%Y-%m-%d"}


def _periods(rows: Sequence[PeriodCount], period: str) -> list[tuple[datetime, dict[str, int]]]:
    """In and out per period, every period from the first to the last (a quiet one is a zero, not left out)."""
    totals: dict[datetime, dict[str, int]] = {}
    for row in rows:
        slot = totals.setdefault(row.period, {"in": 0, "out": 0})
        slot[row.direction] = slot.get(row.direction, 0) + row.crossings
    if not totals:
        return []
    step, start, end = PERIOD_STEP[period], min(totals), max(totals)
    if (end - start) / step <= 240:
        moment = start
        while moment <= end:
            totals.setdefault(moment, {"in": 0, "out": 0})
            moment += step
    return sorted(totals.items())


def _time_title(bands: Sequence[tuple[datetime, dict[str, int]]], period: str) -> str:
    days = sorted({moment.strftime("%Y-%m-%d") for moment, _ in bands})
    when = f", {days[0]}" if period != "day" and len(days) == 1 else ""
    return f"time (UTC{when}), one {period} per group of bars"


def crossings_chart(rows: Sequence[PeriodCount], period: str = "minute") -> Chart:
    """Crossings per period over time (x: the periods, UTC; y: crossings), in and out side by side, every line and
    class together (the counts table has them apart)."""
    bands = _periods(rows, period)
    peak = max((max(ways.values()) for _, ways in bands), default=0)
    left = Axis(f"crossings per {period}", nice_ticks(max(peak, 1), whole=True))
    marks = _frame(f"Crossings per {period} in the ledger, in and out", _time_title(bands, period), left, None)
    x0, x1, y0, y1 = LEFT, WIDTH - RIGHT, TOP, HEIGHT - BOTTOM
    band = (x1 - x0) / max(1, len(bands))
    every = max(1, math.ceil(len(bands) / 12))  # at most a dozen time labels
    for index, (moment, ways) in enumerate(bands):
        left_edge = x0 + index * band
        bar = min(40.0, band * 0.36)
        for offset, way in ((-1, "in"), (0, "out")):
            height = (y1 - y0) * left.fraction(ways.get(way, 0))
            x = left_edge + band / 2 + offset * bar
            marks.append(Mark("rect", (x, y1 - height, bar - 1, height), SERIES[way]))
            if len(bands) <= 30 and ways.get(way):
                marks.append(
                    Mark("text", (x + bar / 2, y1 - height - 4), text=str(ways[way]), size=11, anchor="middle")
                )
        if index % every == 0:
            label = moment.strftime(PERIOD_LABEL[period])
            marks += [
                Mark("line", (left_edge + band / 2, y1, left_edge + band / 2, y1 + 5)),
                Mark("text", (left_edge + band / 2, y1 + 20), text=label, anchor="middle"),
            ]
    marks += _legend([("in", SERIES["in"], False), ("out", SERIES["out"], False)])
    if not bands:
        marks.append(Mark("text", ((x0 + x1) / 2, (y0 + y1) / 2), MUTED, text="no crossings", anchor="middle"))
    total = {way: sum(ways.get(way, 0) for _, ways in bands) for way in ("in", "out")}
    description = f"Crossings per {period}: {total['in']} in and {total['out']} out over {len(bands)} {period}s"
    return Chart(description, tuple(marks))


def _svg_mark(mark: Mark) -> str:
    a = mark.at
    dash = ' stroke-dasharray="7 4"' if mark.dashed else ""
    if mark.kind == "line":
        return f'<line x1="{a[0]:.1f}" y1="{a[1]:.1f}" x2="{a[2]:.1f}" y2="{a[3]:.1f}" stroke="{mark.colour}" ' + (
            f'stroke-width="{mark.width}"{dash}/>'
        )
    if mark.kind == "rect":
        return f'<rect x="{a[0]:.1f}" y="{a[1]:.1f}" width="{a[2]:.1f}" height="{a[3]:.1f}" fill="{mark.colour}"/>'
    if mark.kind == "path":
        points = " ".join(f"{a[i]:.1f},{a[i + 1]:.1f}" for i in range(0, len(a), 2))
        return f'<polyline points="{points}" fill="none" stroke="{mark.colour}" stroke-width="{mark.width}"{dash}/>'
    if mark.kind == "dot":
        return f'<circle cx="{a[0]:.1f}" cy="{a[1]:.1f}" r="{a[2]}" fill="{mark.colour}"/>'
    turn = f' transform="rotate(-90 {a[0]:.1f} {a[1]:.1f})"' if mark.vertical else ""
    weight = ' font-weight="bold"' if mark.bold else ""
    return (
        f'<text x="{a[0]:.1f}" y="{a[1]:.1f}" font-size="{mark.size}" text-anchor="{mark.anchor}" '
        f'fill="{mark.colour}"{weight}{turn}>{html.escape(mark.text)}</text>'
    )


def chart_svg(chart: Chart) -> str:
    """The chart as inline SVG: scales with the page, its description as its accessible name."""
    body = "".join(_svg_mark(mark) for mark in chart.marks)
    label = html.escape(chart.description)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{label}" '
        f'class="chart" font-family="sans-serif"><title>{label}</title>'
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="#ffffff"/>{body}</svg>'
    )


def _bgr(colour: str) -> tuple[int, int, int]:
    return int(colour[5:7], 16), int(colour[3:5], 16), int(colour[1:3], 16)


def _png_text(image: np.ndarray, mark: Mark, scale: int) -> None:
    """Text in OpenCV's Hershey font, anchored as in the SVG; vertical text drawn level, then turned."""
    import cv2

    font, size = cv2.FONT_HERSHEY_SIMPLEX, mark.size * scale / 30
    thick = 2 if mark.bold else 1
    (w, h), base = cv2.getTextSize(mark.text, font, size, thick)
    shift = {"start": 0, "middle": w // 2, "end": w}[mark.anchor]
    x, y = int(mark.at[0] * scale), int(mark.at[1] * scale)
    if not mark.vertical:
        cv2.putText(image, mark.text, (x - shift, y), font, size, _bgr(mark.colour), thick, cv2.LINE_AA)
        return
    tile: np.ndarray = np.full((h + base + 2, w + 2, 3), 255, np.uint8)
    cv2.putText(tile, mark.text, (1, h + 1), font, size, _bgr(mark.colour), thick, cv2.LINE_AA)
    tile = cv2.rotate(tile, cv2.ROTATE_90_COUNTERCLOCKWISE)
    top, left = max(0, y - tile.shape[0] // 2), max(0, x - tile.shape[1] + base)
    image[top : top + tile.shape[0], left : left + tile.shape[1]] = tile[
        : image.shape[0] - top, : image.shape[1] - left
    ]


def chart_png(chart: Chart, scale: int = 2) -> bytes:
    """The same chart as a PNG (``scale`` times the SVG's size, for a sharp picture)."""
    import cv2

    image = np.full((HEIGHT * scale, WIDTH * scale, 3), 255, np.uint8)
    for mark in chart.marks:
        a = [int(round(v * scale)) for v in mark.at]
        colour, width = _bgr(mark.colour), max(1, int(round(mark.width * scale)))
        if mark.kind == "line":
            cv2.line(image, (a[0], a[1]), (a[2], a[3]), colour, width, cv2.LINE_AA)
        elif mark.kind == "rect":
            cv2.rectangle(image, (a[0], a[1]), (a[0] + a[2], a[1] + a[3]), colour, -1)
        elif mark.kind == "path":
            points = np.array(a, np.int32).reshape(-1, 2)
            cv2.polylines(image, [points], False, colour, width, cv2.LINE_AA)
        elif mark.kind == "dot":
            cv2.circle(image, (a[0], a[1]), max(1, a[2]), colour, -1, cv2.LINE_AA)
        else:
            _png_text(image, mark, scale)
    return encode_png(image)


# the strip's boxes: a black rim under each (a class's colour reads on any frame) and a white label
STRIP_BOX = BoxStyle(outline=2, scale=0.55, text_colour=(255, 255, 255), text_thickness=2, pad=3, lift=6, top=14)


def detection_strip(
    video: str,
    messages: Sequence[dict[str, Any]],
    count: int = 6,
    width: int = 320,
    lines: Sequence[tuple[tuple[float, float], tuple[float, float]]] = (),
) -> bytes:
    """Annotated frames of a video, drawn from the messages the device published: boxes with their class, score
    and track id (when tracked), and the counting ``lines`` (fractions of the frame)."""
    import cv2

    by_frame = {m["frame"]: m for m in messages}
    if not by_frame:
        return encode_png(np.full((60, width, 3), 255, np.uint8))
    frames = sorted(by_frame)
    chosen = set(frames[int(round(i * (len(frames) - 1) / max(1, count - 1)))] for i in range(count))
    capture = cv2.VideoCapture(video)
    tiles: list[Any] = []
    index = 0
    while len(tiles) < len(chosen):
        ok, image = capture.read()
        if not ok:
            break
        if index in chosen:
            for det in by_frame[index]["detections"]:
                track = f" #{det['track_id']}" if "track_id" in det else ""
                label = f"{det['label']} {det['score']:.2f}{track}"
                draw_box(image, det["box"], class_colour(det["label"]), label, STRIP_BOX)
            height, width_px = image.shape[:2]
            for (x1, y1), (x2, y2) in lines:
                ends = (int(x1 * width_px), int(y1 * height)), (int(x2 * width_px), int(y2 * height))
                cv2.line(image, *ends, (0, 0, 255), 3)
            cv2.putText(image, f"frame {index}", (8, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (255, 255, 255), 2)
            tiles.append(cv2.resize(image, (width, int(image.shape[0] * width / image.shape[1]))))
        index += 1
    capture.release()
    return encode_png(np.hstack(tiles) if tiles else np.full((60, width, 3), 255, np.uint8))


# --- tables and the page ---------------------------------------------------------------------------------------------


def _ap(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def figure_cell(value: Any) -> str:
    """One figure as HTML, escaped: a mapping (per class, per stage, per counting line) becomes a nested key | value
    table, so a reader never has to parse JSON out of a cell; numbers and flags read as JSON writes them."""
    if isinstance(value, dict):
        if not value:
            return "<em>none</em>"
        rows = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{figure_cell(v)}</td></tr>" for k, v in value.items())
        return f'<table class="nested">{rows}</table>'
    if isinstance(value, list | tuple):
        return ", ".join(figure_cell(v) for v in value) if value else "<em>none</em>"
    if value is None:
        return "n/a"
    return html.escape(value if isinstance(value, str) else json.dumps(value))


def counts_table(counts: Counts | Mapping[str, Any]) -> str:
    """Counted against the truth (and the ledger), one row per line, direction and class; a row where the device's
    count is not the truth, or the ledger not the device, is marked."""
    rows = []
    for line, ways in counts.items():
        for way, classes in ways.items():
            for name, pair in classes.items():
                counted, true, ledger = pair.get("counted"), pair.get("true"), pair.get("ledger")
                wrong = [f"off by {counted - true:+d}"] if counted != true else []
                wrong += ["ledger differs"] if ledger is not None and ledger != counted else []
                mark = f'<td class="bad">&#10007; {", ".join(wrong)}</td>' if wrong else '<td class="ok">&#10003;</td>'
                cells = "".join(f"<td>{figure_cell(v)}</td>" for v in (line, way, name, counted, true, ledger))
                row_class = ' class="mismatch"' if wrong else ""
                rows.append(f"<tr{row_class}>{cells}{mark}</tr>")
    columns = ("line", "direction", "class", "counted", "true", "ledger", "")
    head = "<tr>" + "".join(f"<th>{c}</th>" for c in columns) + "</tr>"
    return f'<table class="counts">{head}{"".join(rows)}</table>' if rows else "<p><em>no line was counted</em></p>"


def latency_table(stages: Sequence[StageLatency]) -> str:
    """Per stage of the loop, median and tail side by side: where a frame's time goes, and how much it varies."""
    rows = "".join(
        f"<tr><td>{html.escape(s.stage)}</td><td>{figure_cell(s.p50_ms)}</td><td>{figure_cell(s.p95_ms)}</td></tr>"
        for s in stages
    )
    return f"<table><tr><th>stage</th><th>p50 ms</th><th>p95 ms</th></tr>{rows}</table>"


def _headline_value(item: Headline) -> str:
    if isinstance(item.value, bool):
        return "yes" if item.value else "no"
    if isinstance(item.value, float):
        text = "n/a" if math.isnan(item.value) else f"{item.value:,.3f}".rstrip("0").rstrip(".")
    else:
        text = "n/a" if item.value is None else f"{item.value:,}" if isinstance(item.value, int) else str(item.value)
    return html.escape(f"{text} {item.unit}".strip() if text != "n/a" else text)


def headline_table(items: Sequence[Headline]) -> str:
    """What each figure is, in words, and its value with its unit: read without knowing the summary's keys."""
    rows = "".join(f"<tr><th>{html.escape(i.label)}</th><td>{_headline_value(i)}</td></tr>" for i in items)
    return f'<table class="headline">{rows}</table>'


def class_table(classes: Sequence[ClassAP]) -> str:
    """AP per class at each precision measured (INT8 only when measured), with the boxes it rests on."""
    int8 = any(c.ap_int8 is not None for c in classes)
    head = "<tr><th>class</th><th>AP FP32</th>" + ("<th>AP INT8</th>" if int8 else "") + "<th>boxes</th></tr>"
    rows = "".join(
        f"<tr><td>{html.escape(c.name)}</td><td>{_ap(c.ap)}</td>"
        + (f"<td>{_ap(c.ap_int8)}</td>" if int8 else "")
        + f"<td>{c.boxes}</td></tr>"
        for c in classes
    )
    return f"<table>{head}{rows}</table>"


def _chart_figure(chart: Chart, caption: str) -> str:
    return f'<figure class="chart">{chart_svg(chart)}<figcaption>{html.escape(caption)}</figcaption></figure>'


STYLE = """body{font-family:sans-serif;margin:2em;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:1em 0}
td,th{border:1px solid #ccc;padding:4px 10px;text-align:left}figure{margin:1.5em 0}
img{max-width:100%;border:1px solid #ddd}figcaption{color:#444;margin-top:.4em}svg.chart{width:100%;max-width:900px;
height:auto;border:1px solid #ddd}table.headline th{font-weight:normal;color:#444}
table.nested{margin:0}table.nested td,table.nested th{padding:2px 8px;font-weight:normal}
tr.mismatch td{background:#fde8e8}td.bad{color:#b00020;font-weight:bold}td.ok{color:#1b7f3b}
details{margin:2em 0}summary{cursor:pointer;color:#444}"""


def _sections(figures: ReportFigures) -> list[str]:
    """The page's sections, each only when it has figures: counts, headline figures, AP, latency, charts."""
    parts = []
    if figures.counts:
        parts.append(
            f"<h2>Counted against the truth on {html.escape(figures.counts_on)}</h2>{counts_table(figures.counts)}"
        )
    if figures.headlines:
        parts.append(f"<h2>Headline figures</h2>{headline_table(figures.headlines)}")
    if figures.per_class:
        on = html.escape(figures.per_class_on)
        parts.append(f"<h2>mAP@0.5 per class on {on}</h2>{class_table(figures.per_class)}")
    if figures.latency:
        parts.append(f"<h2>Latency of the inference loop</h2>{latency_table(figures.latency)}")
    if figures.training:
        caption = "Validation mAP@0.5 after each epoch (left axis) and the training losses (right axis)."
        parts.append(f"<h2>Training</h2>{_chart_figure(training_chart(figures.training), caption)}")
    if figures.crossings is not None:
        chart = crossings_chart(figures.crossings, figures.crossings_period)
        source = f" The same rows: {figures.crossings_command}." if figures.crossings_command else ""
        caption = (
            f"What the device published, through the ledger's crossings_by_{figures.crossings_period} query.{source}"
        )
        parts.append(f"<h2>Crossings over time</h2>{_chart_figure(chart, caption)}")
    return parts


def _pictures(pictures: Sequence[Picture]) -> str:
    shown = "".join(
        f'<figure><img src="{html.escape(p.src)}" alt="{html.escape(p.caption)}"><figcaption>{html.escape(p.caption)}'
        "</figcaption></figure>"
        for p in pictures
    )
    return f"<h2>Pictures</h2>{shown}" if pictures else ""


def _raw(raw: Mapping[str, Any]) -> str:
    if not raw:
        return ""
    rows = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{figure_cell(v)}</td></tr>" for k, v in raw.items())
    return (
        f"<details><summary>Every figure, as the run's summary.json records it</summary><table>{rows}</table></details>"
    )


def write_report(folder: Path, figures: ReportFigures) -> Path:
    """``folder``/report.html from ``figures`` (self-contained but for the pictures, which it links relative to
    itself), and each chart beside it as a PNG: training_curve.png, crossings_per_<period>.png."""
    folder.mkdir(parents=True, exist_ok=True)
    if figures.training:
        (folder / "training_curve.png").write_bytes(chart_png(training_chart(figures.training)))
    if figures.crossings is not None:
        chart = crossings_chart(figures.crossings, figures.crossings_period)
        (folder / f"crossings_per_{figures.crossings_period}.png").write_bytes(chart_png(chart))
    title = html.escape(figures.title)
    summary = f"<p>{html.escape(figures.summary)}</p>" if figures.summary else ""
    body = "\n".join([*_sections(figures), _pictures(figures.pictures), _raw(figures.raw)])
    page = (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{title}</title>\n'
        f"<style>{STYLE}</style></head>\n<body><h1>{title}</h1>{summary}\n{body}\n</body></html>\n"
    )
    path = folder / "report.html"
    path.write_bytes(page.encode("ascii", "xmlcharrefreplace"))  # any other character as an entity: no locale
    return path
