"""The report's charts read as charts: titled axes with units, tick labels, a legend; time on the crossings chart's
x axis and counts on its y; epochs on the training curve's x, mAP and loss on its two y axes. Drawn from what the
real steps produce (a short train-local, the device loop counting on a generated crossings video, the ledger's
crossings_by_minute query over what it published), through ``write_report``, the one function every report uses."""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from odctl.report import (
    ClassAP,
    Epoch,
    PeriodCount,
    ReportFigures,
    crossings_chart,
    nice_ticks,
    write_report,
)

LINE = {"name": "middle", "points": [[0.5, 0.0], [0.5, 1.0]], "in": "left-to-right"}


@pytest.fixture(scope="module")
def real_figures(scene, tmp_path_factory) -> ReportFigures:
    """A three-epoch train-local's history, and the counts and per-minute ledger rows of the device loop on a
    generated crossings video (evaluate-tracking: the device's code, scored against the video's true tracks)."""
    from datetime import UTC, datetime, timedelta

    from odctl.ledger_local import run_query_files
    from odctl.synth_video import SynthSpec, write_video
    from odctl.tracking_eval import evaluate_tracking
    from odctl.train_local import train_local
    from odshared.fleet.ledger import period_parameters

    folder = tmp_path_factory.mktemp("report-charts")
    prepared = scene["root"] / "prepared"
    hyper = {"base_network": "tiny", "image_shape": 300, "mini_batch_size": 4, "epochs": 3, "optimizer": "adam"}
    trained = train_local(
        str(prepared / "train.manifest"),
        str(prepared / "validation.manifest"),
        str(folder / "model.tar.gz"),
        hyper,
        classes=["blue box", "yellow box"],
        max_batches=2,
    )
    video, _ = write_video(
        SynthSpec("mixed_boxes_8", ("blue box", "yellow box"), frames=200, seed=8, scenario="crossings"), folder
    )
    messages = folder / "counting.jsonl"
    counting = evaluate_tracking(str(video), str(scene["package"]), [LINE], threshold=0.4, messages_out=str(messages))
    window = period_parameters(datetime(2000, 1, 1, tzinfo=UTC), datetime.now(UTC) + timedelta(days=1))
    rows = run_query_files("crossings_by_minute", window, [messages])
    return ReportFigures(
        title="Charts from real steps",
        counts=counting["counts"],
        counts_on="a generated crossings video",
        per_class=[ClassAP("blue box", 0.5, 3), ClassAP("yellow box", None, 0)],
        training=[Epoch(h["epoch"] + 1, h["mAP"], h["cross_entropy"], h["smooth_l1"]) for h in trained.history],
        crossings=[PeriodCount(r["period"], r["direction"], r["crossings"], r["line"], r["class"]) for r in rows],
        crossings_command="odctl counts --from counting.jsonl --by minute",
        raw={"epochs": len(trained.history)},
    )


def _svgs(page: str) -> list[str]:
    return re.findall(r"<svg .*?</svg>", page, re.S)


def _texts(svg: str) -> list[str]:
    return re.findall(r"<text [^>]*>(.*?)</text>", svg)


@pytest.mark.integration
def test_the_charts_have_titled_axes_ticks_and_legends(real_figures, tmp_path):
    page = write_report(tmp_path, real_figures).read_text()
    headings = re.findall(r"<h2>(.*?)</h2>", page)
    assert headings[0] == "Counted against the truth on a generated crossings video"
    assert {"Training", "Crossings over time"} <= set(headings)
    training, crossings = _svgs(page)
    texts = _texts(training)
    assert {"epochs trained", "validation mAP@0.5", "training loss"} <= set(texts)  # x and both y axes
    assert {"validation mAP@0.5 (left)", "cross-entropy loss (right)", "smooth L1 loss (right)"} <= set(texts)
    assert {"1", "2", "3"} <= set(texts) and {"0", "0.2", "1"} <= set(texts)  # epochs and mAP ticks
    assert training.count("<polyline") == 3  # one line per series over the three epochs
    assert 'transform="rotate(-90' in training  # the y titles read along their axes
    texts = _texts(crossings)
    assert "crossings per minute" in texts and any(t.startswith("time (UTC, 20") for t in texts)
    assert {"in", "out"} <= set(texts)  # the legend
    assert any(re.fullmatch(r"\d\d:\d\d", t) for t in texts)  # the minutes, as times of day
    ways = {w: sum(r.crossings for r in real_figures.crossings if r.direction == w) for w in ("in", "out")}
    assert ways["in"] + ways["out"] > 0 and f"{ways['in']} in and {ways['out']} out" in crossings  # its description
    bar = r'<rect x="[^"]+" y="[^"]+" width="[^"]+" height="([^"]+)" fill="#(?:2e7d32|c62828)"/>'
    assert any(float(height) > 0 for height in re.findall(bar, crossings))
    assert "odctl counts --from counting.jsonl --by minute" in page
    for name in ("training_curve.png", "crossings_per_minute.png"):  # the same charts, as pictures
        image = cv2.imdecode(np.frombuffer((tmp_path / name).read_bytes(), np.uint8), cv2.IMREAD_COLOR)
        assert image is not None and image.shape[1] > 1000 and (image < 128).any()


def test_no_crossings_is_an_empty_chart_with_its_axes():
    """Zero is an answer: the chart is drawn, axes titled, with a word where the bars would be."""
    from odctl.report import chart_svg

    svg = chart_svg(crossings_chart([], "hour"))
    texts = _texts(svg)
    assert "crossings per hour" in texts and "no crossings" in texts and "0" in texts


def test_ticks_are_round_numbers_covering_the_range():
    assert nice_ticks(1.0) == (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
    assert nice_ticks(7, whole=True) == (0, 2, 4, 6, 8)
    assert nice_ticks(2, whole=True) == (0, 1, 2)
    assert nice_ticks(0.37)[-1] >= 0.37 and len(nice_ticks(0.37)) <= 7


def test_a_report_leaves_out_what_it_has_no_figures_for(tmp_path):
    """odctl evaluate --report has no training history or ledger: those sections and their pictures are absent."""
    page = write_report(tmp_path, ReportFigures(title="Evaluation", per_class=[ClassAP("box", 0.25, 4)])).read_text()
    assert re.findall(r"<h2>(.*?)</h2>", page) == ["mAP@0.5 per class on the evaluation images"]
    assert "<svg" not in page and sorted(p.name for p in Path(tmp_path).iterdir()) == ["report.html"]
