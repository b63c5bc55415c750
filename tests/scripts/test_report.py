"""The demo's report page: its figures are what the demo measured, and a figure that is a mapping (AP per class,
latency per stage, counts per line, direction and class) reads as a nested table, never as JSON in a cell.

The report is written by the demo's own code (``odctl.demo._write_report``) from the demo's own steps on generated
videos: the device loop, evaluate, evaluate-tracking. Only the trained detector is replaced, by one that returns
each frame's true boxes (training one takes minutes); the training history stands in for train-local's."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import numpy as np
import pytest

from odctl import demo
from odctl.synth_video import SynthSpec, read_boxes, write_video
from odedge.model import ModelPackage
from odedge.runtimes import RuntimeChoice

SIZE = 300


class _TrueBoxes:
    """A runtime answering each call with the next frame's true boxes, as the model's rows (normalised)."""

    def __init__(self, frames: list[dict], precision: str) -> None:
        self.frames, self.choice = iter(frames), RuntimeChoice("oracle", precision)

    def predict(self, _blob: np.ndarray) -> np.ndarray:
        record = next(self.frames)
        w, h = record["width"], record["height"]
        rows = []
        for b in record["boxes"]:
            x1, y1 = b["left"] / w, b["top"] / h
            rows.append([b["class_id"], 0.9, x1, y1, x1 + b["width"] / w, y1 + b["height"] / h])
        return np.array(rows, np.float32).reshape(-1, 6)


@pytest.fixture
def true_detector(monkeypatch, tmp_path):
    """Every model folder loads as a package whose runtimes return the frames set in ``frames`` in turn."""
    import odedge.app
    import odedge.runtimes

    package = ModelPackage(
        root=tmp_path,
        classes=demo.CLASSES,
        input_size=SIZE,
        anchors=1917,
        detection={},
        files={"fp32": "model.onnx", "int8": "model.int8.onnx"},
        version="true-boxes",
    )
    frames: list[dict] = []
    monkeypatch.setattr(ModelPackage, "load", classmethod(lambda cls, root, verify=True: package))

    def runtime(backend, package, threads=None, precision="fp32", withheld_ok=False):
        return _TrueBoxes(list(frames), precision)

    # the device's loop, and the scoring odctl evaluate runs (it imports the factory when it scores)
    for module in (odedge.app, odedge.runtimes):
        monkeypatch.setattr(module, "create_runtime", runtime)
    return frames


def _demo_report(root: Path, frames: list[dict]) -> dict:
    """The demo's evaluate, run-device and count steps, then its report, on short generated videos."""
    from odctl.evaluate import evaluate
    from odctl.local_labeling import label_from_known_boxes
    from odctl.tracking_eval import evaluate_tracking
    from odctl.training_data import read_training_images
    from odedge.app import run
    from odedge.config import EdgeConfig
    from odshared.data.frames import extract_frames
    from odshared.data.input_manifest import build_input_manifest

    videos, report = root / "videos", root / "report"
    report.mkdir(parents=True)
    held, _, seed = demo.HELD_OUT
    _, boxes = write_video(SynthSpec(held, demo.CLASSES, frames=30, seed=seed), videos)
    extract_frames(str(videos / f"{held}.mp4"), str(root / "frames"), every=3)
    build_input_manifest([str(root / "frames")], str(root / "held.manifest"))
    labels = str(root / "labels.manifest")
    label_from_known_boxes(str(root / "held.manifest"), str(videos), labels, list(demo.CLASSES), job_name="held-out")
    truth = read_boxes(boxes)
    frames[:] = [truth[int(Path(i.source_ref).stem.rsplit("_", 1)[1])] for i in read_training_images(labels, "bb")]
    evaluation = evaluate("true-boxes", labels, str(report), classes=list(demo.CLASSES))

    jsonl = report / "detections.jsonl"
    frames[:] = [truth[i] for i in sorted(truth)]
    settings = {"model_dir": "true-boxes", "source": str(videos / f"{held}.mp4"), "publisher": "jsonl"}
    run(EdgeConfig.from_mapping({**settings, "jsonl": str(jsonl), "health_interval": 3600}), install_signals=False)

    name, classes, seed = demo.COUNTING_VIDEO
    _, crossing_boxes = write_video(SynthSpec(name, classes, frames=120, seed=seed, scenario="crossings"), videos)
    crossings = read_boxes(crossing_boxes)
    frames[:] = [crossings[i] for i in sorted(crossings)]
    counted = evaluate_tracking(
        str(videos / f"{name}.mp4"), "true-boxes", [demo.COUNTING_LINE], messages_out=str(report / "counting.jsonl")
    )
    counting = demo._counting_figures(report, videos, counted)
    history = [{"epoch": e, "cross_entropy": 1.0 / (e + 1), "smooth_l1": 0.5, "mAP": 0.3 * e} for e in range(3)]
    return demo._write_report(report, videos, history, evaluation, {"published_over_mqtt": False}, jsonl, counting)


def _nested(value: dict) -> str:
    """The HTML a mapping figure must be rendered as."""
    rows = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{_nested(v) if isinstance(v, dict) else _scalar(v)}</td></tr>"
        for k, v in value.items()
    )
    return f'<table class="nested">{rows}</table>'


def _scalar(value) -> str:
    return "n/a" if value is None else html.escape(value if isinstance(value, str) else json.dumps(value))


def test_mapping_figures_are_nested_tables_not_json(true_detector, tmp_path):
    summary = _demo_report(tmp_path, true_detector)
    figures = summary["figures"]
    page = (tmp_path / "report" / "report.html").read_text()
    assert figures["heldout_mAP@0.5"] == 1.0 and figures["counting"]["count_pairs_exact"] == 1.0  # the true boxes
    mappings = [k for k, v in figures.items() if isinstance(v, dict)]
    assert {"heldout_AP_per_class", "loop_latency_ms_p50", "loop_latency_ms_p95", "counting"} <= set(mappings)
    assert "inference" in figures["loop_latency_ms_p50"] and "middle" in figures["counting"]["counts"]
    for key, value in figures.items():  # each figure's cell, nested as deep as the figure is
        cell = _nested(value) if isinstance(value, dict) else _scalar(value)
        assert f"<tr><th>{html.escape(key)}</th><td>{cell}</td></tr>" in page, key
    cells = re.findall(r"<td>(.*?)</td>", page)
    assert cells and not [c for c in cells if c.lstrip().startswith(("{", "["))]  # no JSON object or list in a cell
    assert "{&quot;" not in page and '{"' not in page


def test_a_figure_cell_escapes_keys_and_values():
    from odctl.report import figure_cell

    cell = figure_cell({"<b>": {"x&y": "a<b>", "none": None, "empty": {}}})
    assert cell == (
        '<table class="nested"><tr><th>&lt;b&gt;</th><td><table class="nested"><tr><th>x&amp;y</th><td>a&lt;b&gt;'
        "</td></tr><tr><th>none</th><td>n/a</td></tr><tr><th>empty</th><td><em>none</em></td></tr></table></td></tr>"
        "</table>"
    )


def test_the_counts_against_the_truth_come_first_with_mismatches_marked(true_detector, tmp_path):
    from odctl.report import counts_table

    _demo_report(tmp_path, true_detector)
    page = (tmp_path / "report" / "report.html").read_text()
    headings = re.findall(r"<h2>(.*?)</h2>", page)
    assert headings[0] == "Counted against the truth on the crossings video"
    assert "Latency of the inference loop" in headings and "<th>p95 ms</th>" in page
    assert 'class="mismatch"' not in page and "&#10003;" in page  # the true boxes count exactly
    table = counts_table({"door": {"in": {"box": {"counted": 4, "true": 1, "ledger": 4}}, "out": {}}})
    assert '<tr class="mismatch">' in table and "off by +3" in table
    assert "ledger differs" in counts_table({"door": {"in": {"box": {"counted": 2, "true": 2, "ledger": 1}}}})
