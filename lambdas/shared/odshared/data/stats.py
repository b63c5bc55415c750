"""Dataset statistics (counts per class, boxes per image, box sizes) and a PNG chart drawn with Pillow.

Pillow rather than matplotlib keeps the data-preparation Lambda small.
"""

from __future__ import annotations

import io
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from odshared.data.groundtruth import LabeledImage

SIZE_BINS = (0.0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0)


def _quantiles(values: Sequence[float]) -> dict[str, float]:
    if not values:
        return {}
    ordered = sorted(values)

    def q(p: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(p * (len(ordered) - 1) + 0.5))], 4)

    return {"min": q(0.0), "p25": q(0.25), "median": q(0.5), "p75": q(0.75), "max": q(1.0)}


def dataset_stats(splits: Mapping[str, Sequence[LabeledImage]], classes: Sequence[str]) -> dict[str, Any]:
    """Per split: images and boxes per class, a histogram of boxes per image, relative box sizes."""
    report: dict[str, Any] = {"classes": list(classes), "splits": {}}
    for name, images in splits.items():
        boxes_per_class: Counter[str] = Counter()
        images_per_class: Counter[str] = Counter()
        per_image: Counter[int] = Counter()
        sizes: list[float] = []
        for image in images:
            per_image[len(image.boxes)] += 1
            seen = set()
            for box in image.boxes:
                label = classes[box.class_id]
                boxes_per_class[label] += 1
                seen.add(label)
                sizes.append((box.width * box.height / (image.width * image.height)) ** 0.5)
            images_per_class.update(seen)
        size_hist = [0] * (len(SIZE_BINS) - 1)
        for size in sizes:
            for i in range(len(SIZE_BINS) - 1):
                if size <= SIZE_BINS[i + 1]:
                    size_hist[i] += 1
                    break
        report["splits"][name] = {
            "images": len(images),
            "boxes": len(sizes),
            "boxes_per_class": {c: boxes_per_class.get(c, 0) for c in classes},
            "images_per_class": {c: images_per_class.get(c, 0) for c in classes},
            "boxes_per_image": {str(k): v for k, v in sorted(per_image.items())},
            "relative_box_size": _quantiles(sizes),
            "relative_box_size_histogram": {
                f"{SIZE_BINS[i]:g}-{SIZE_BINS[i + 1]:g}": size_hist[i] for i in range(len(size_hist))
            },
        }
    return report


def _panel(
    draw: Any, origin: tuple[int, int], size: tuple[int, int], title: str, series: Mapping[str, Mapping[str, int]]
) -> None:
    """A grouped bar chart: one group per key, one bar per split."""
    from PIL import ImageFont

    font = ImageFont.load_default()
    x0, y0 = origin
    width, height = size
    draw.text((x0 + 8, y0 + 4), title, fill=(0, 0, 0), font=font)
    keys = list(next(iter(series.values())).keys()) if series else []
    peak = max([v for s in series.values() for v in s.values()] + [1])
    colors = [(52, 101, 164), (237, 125, 49), (112, 173, 71)]
    top, bottom = y0 + 24, y0 + height - 28
    draw.line([(x0 + 30, bottom), (x0 + width - 8, bottom)], fill=(0, 0, 0))
    group_w = (width - 40) / max(len(keys), 1)
    bar_w = max(2, int(group_w / (len(series) + 1)))
    for gi, key in enumerate(keys):
        gx = x0 + 34 + gi * group_w
        for si, (_, values) in enumerate(series.items()):
            value = values.get(key, 0)
            bar_h = int((bottom - top) * value / peak)
            bx = int(gx + si * bar_w)
            draw.rectangle([bx, bottom - bar_h, bx + bar_w - 1, bottom], fill=colors[si % len(colors)])
            if value:
                draw.text((bx, bottom - bar_h - 11), str(value), fill=(0, 0, 0), font=font)
        draw.text((int(gx), bottom + 4), str(key)[:14], fill=(0, 0, 0), font=font)
    for si, name in enumerate(series):
        draw.rectangle(
            [x0 + width - 110, y0 + 6 + si * 12, x0 + width - 100, y0 + 14 + si * 12], fill=colors[si % len(colors)]
        )
        draw.text((x0 + width - 96, y0 + 4 + si * 12), name, fill=(0, 0, 0), font=font)


def render_stats_png(stats: Mapping[str, Any]) -> bytes:
    """Three panels: boxes per class, boxes per image, relative box size, each split side by side."""
    from PIL import Image, ImageDraw

    splits = stats["splits"]
    panel_w, panel_h = 520, 220
    image = Image.new("RGB", (panel_w, panel_h * 3), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    per_image_keys = sorted({k for s in splits.values() for k in s["boxes_per_image"]}, key=int)
    panels = [
        ("boxes per class", {n: s["boxes_per_class"] for n, s in splits.items()}),
        (
            "images by number of boxes",
            {n: {k: s["boxes_per_image"].get(k, 0) for k in per_image_keys} for n, s in splits.items()},
        ),
        ("relative box size (sqrt of area fraction)", {n: s["relative_box_size_histogram"] for n, s in splits.items()}),
    ]
    for i, (title, series) in enumerate(panels):
        _panel(draw, (0, i * panel_h), (panel_w, panel_h), title, series)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
