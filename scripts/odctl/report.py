"""The demo's report: charts drawn with OpenCV and one self-contained HTML page beside them."""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from odshared.data.contact_sheet import encode_png

from .synth_video import class_colour


def crossings_chart_png(rows: Sequence[dict[str, Any]], width: int = 560, height: int = 320) -> bytes:
    """Crossings per minute (the ledger's ``crossings_by_minute`` rows): one bar per minute, in over out."""
    import cv2

    image = np.full((height, width, 3), 255, np.uint8)
    x0, y0, x1, y1 = 50, 45, width - 20, height - 50
    cv2.rectangle(image, (x0, y0), (x1, y1), (0, 0, 0), 1)
    title = "crossings per minute: in (green) over out (red)"
    cv2.putText(image, title, (x0, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (0, 0, 0), 1, cv2.LINE_AA)
    minutes: dict[str, dict[str, int]] = {}
    for row in rows:
        slot = minutes.setdefault(str(row["period"])[11:16], {"in": 0, "out": 0})
        slot[row["direction"]] += int(row["crossings"])
    peak = max((v["in"] + v["out"] for v in minutes.values()), default=1) or 1
    step = (x1 - x0) / max(1, len(minutes))
    for index, (label, ways) in enumerate(sorted(minutes.items())):
        left, right = int(x0 + index * step + 4), int(x0 + (index + 1) * step - 4)
        bottom = y1
        for way, colour in (("out", (60, 60, 220)), ("in", (60, 170, 60))):
            top = int(bottom - (y1 - y0) * ways[way] / peak)
            cv2.rectangle(image, (left, top), (right, bottom), colour, -1)
            bottom = top
        cv2.putText(image, label, (left, y1 + 16), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (0, 0, 0), 1, cv2.LINE_AA)
        total = f"{ways['in']}/{ways['out']}"
        cv2.putText(image, total, (left, bottom - 4), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (0, 0, 0), 1, cv2.LINE_AA)
    return encode_png(image)


def training_curve_png(history: Sequence[dict[str, float]], width: int = 560, height: int = 320) -> bytes:
    import cv2

    image = np.full((height, width, 3), 255, np.uint8)
    x0, y0, x1, y1 = 50, 30, width - 20, height - 40
    cv2.rectangle(image, (x0, y0), (x1, y1), (0, 0, 0), 1)
    cv2.putText(
        image,
        "training: validation mAP (blue), cross-entropy (orange, scaled)",
        (x0, 20),
        cv2.FONT_HERSHEY_SIMPLEX,
        0.42,
        (0, 0, 0),
        1,
        cv2.LINE_AA,
    )
    if history:
        epochs = [h["epoch"] for h in history]
        span = max(1, max(epochs))
        peak = max(h["cross_entropy"] for h in history) or 1.0
        for key, colour, scale in (("mAP", (180, 100, 30), 1.0), ("cross_entropy", (40, 130, 240), 1.0 / peak)):
            points = [
                (int(x0 + (x1 - x0) * h["epoch"] / span), int(y1 - (y1 - y0) * min(1.0, h[key] * scale)))
                for h in history
            ]
            if len(points) > 1:
                cv2.polylines(image, [np.array(points, np.int32)], False, colour, 2, cv2.LINE_AA)
            for point in points:
                cv2.circle(image, point, 3, colour, -1)
        cv2.putText(image, f"epochs 0..{span}", (x0, height - 14), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (0, 0, 0), 1)
    return encode_png(image)


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
                x1, y1, x2, y2 = det["box"]
                colour = class_colour(det["label"])
                cv2.rectangle(image, (x1, y1), (x2, y2), (0, 0, 0), 4)
                cv2.rectangle(image, (x1, y1), (x2, y2), colour, 2)
                track = f" #{det['track_id']}" if "track_id" in det else ""
                cv2.putText(
                    image,
                    f"{det['label']} {det['score']:.2f}{track}",
                    (x1 + 3, max(14, y1 - 6)),
                    cv2.FONT_HERSHEY_SIMPLEX,
                    0.55,
                    (255, 255, 255),
                    2,
                    cv2.LINE_AA,
                )
            height, width_px = image.shape[:2]
            for (x1, y1), (x2, y2) in lines:
                ends = (int(x1 * width_px), int(y1 * height)), (int(x2 * width_px), int(y2 * height))
                cv2.line(image, *ends, (0, 0, 255), 3)
            cv2.putText(image, f"frame {index}", (8, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (255, 255, 255), 2)
            tiles.append(cv2.resize(image, (width, int(image.shape[0] * width / image.shape[1]))))
        index += 1
    capture.release()
    return encode_png(np.hstack(tiles) if tiles else np.full((60, width, 3), 255, np.uint8))


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


def counts_table(counts: dict[str, Any]) -> str:
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


def latency_table(p50: dict[str, float], p95: dict[str, float]) -> str:
    rows = "".join(
        f"<tr><td>{html.escape(stage)}</td><td>{figure_cell(p50[stage])}</td><td>{figure_cell(p95.get(stage))}</td></tr>"
        for stage in p50
    )
    return f"<table><tr><th>stage</th><th>p50 ms</th><th>p95 ms</th></tr>{rows}</table>"


def write_html(folder: Path, summary: dict[str, Any], images: Sequence[tuple[str, str]]) -> Path:
    """report.html: the counts against the truth first (what the product is for), the per-class and latency
    tables, every figure, then every picture with its caption (relative links, works offline)."""
    figures = summary.get("figures", {})
    counting = counts_table(figures.get("counting", {}).get("counts", {}))
    latency = latency_table(figures.get("loop_latency_ms_p50", {}), figures.get("loop_latency_ms_p95", {}))
    rows = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{figure_cell(v)}</td></tr>" for k, v in figures.items())
    per_class = summary.get("evaluation", {}).get("per_class", {})
    int8 = summary.get("evaluation", {}).get("precisions", {}).get("int8", {}).get("per_class", {})
    class_rows = "".join(
        f"<tr><td>{html.escape(name)}</td><td>{_ap(v['ap'])}</td>"
        f"<td>{_ap(int8[name]['ap']) if name in int8 else 'n/a'}</td><td>{v['ground_truth']}</td></tr>"
        for name, v in per_class.items()
    )
    pictures = "".join(
        f'<figure><img src="{html.escape(src)}" alt="{html.escape(caption)}"><figcaption>{html.escape(caption)}'
        f"</figcaption></figure>"
        for src, caption in images
    )
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Edge object detector: offline demo report</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1400px}}table{{border-collapse:collapse;margin:1em 0}}
td,th{{border:1px solid #ccc;padding:4px 10px;text-align:left}}figure{{margin:1.5em 0}}
img{{max-width:100%;border:1px solid #ddd}}figcaption{{color:#444}}
table.nested{{margin:0}}table.nested td,table.nested th{{padding:2px 8px;font-weight:normal}}
tr.mismatch td{{background:#fde8e8}}td.bad{{color:#b00020;font-weight:bold}}td.ok{{color:#1b7f3b}}</style></head>
<body><h1>Edge object detector: offline demo report</h1>
<p>Video &rarr; frames &rarr; labeling manifest &rarr; labels &rarr; training data &rarr; trained SSD
&rarr; converted models &rarr; Greengrass components &rarr; the inference loop on a video it never saw.</p>
<h2>Counted against the truth on the crossings video</h2>{counting}
<h2>mAP@0.5 per class on the held-out video</h2>
<table><tr><th>class</th><th>AP FP32</th><th>AP INT8</th><th>boxes</th></tr>{class_rows}</table>
<h2>Latency of the inference loop</h2>{latency}
<h2>Figures</h2><table>{rows}</table>
<h2>Pictures</h2>{pictures}
</body></html>
"""
    path = folder / "report.html"
    path.write_text(page)
    return path
