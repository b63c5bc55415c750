"""odctl convert --int8: the INT8 model beside the FP32 one, its calibration, its accuracy, and its bad inputs."""

from __future__ import annotations

import json
import logging

import cv2
import numpy as np
import pytest

from odctl.cli import main
from odctl.evaluate import evaluate
from odedge.preprocess import preprocess
from odshared.model.calibration import build_calibration, write_calibration
from odshared.model.quantize import read_calibration
from tests.conftest import CLASSES

pytestmark = pytest.mark.integration


def _convert(scene, out, *extra: str) -> int:
    return main(
        [
            "convert",
            "--model",
            str(scene["root"] / "model.tar.gz"),
            "--out",
            str(out),
            "--classes",
            ",".join(CLASSES),
            *extra,
        ]
    )


def _errors(capsys) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines() if line.startswith("odctl convert")]


def test_held_out_int8_map_stays_with_fp32(scene, tmp_path):
    """The tests' model is trained as the demo's, for 8 epochs instead of 14; held out: a video of another seed,
    labeled from its known boxes. On this weaker model many boxes score near the threshold and INT8's rounding moves
    some across it: over CI runs INT8 was -1.1 to +4.5 points from FP32, so the test allows 2 points of loss. The
    1-point goal is measured on the demo's own model by bench/int8_accuracy.py (-0.1 point, README)."""
    from odctl.local_labeling import label_from_known_boxes
    from odctl.synth_video import SynthSpec, write_video
    from odshared.data.frames import extract_frames
    from odshared.data.input_manifest import build_input_manifest

    video, _ = write_video(SynthSpec("mixed_boxes_8", CLASSES, frames=150, seed=77), tmp_path)
    extract_frames(str(video), str(tmp_path / "frames"))
    build_input_manifest([str(tmp_path / "frames")], str(tmp_path / "in.manifest"))
    label_from_known_boxes(str(tmp_path / "in.manifest"), str(tmp_path), str(tmp_path / "out.manifest"), list(CLASSES))
    report = evaluate(str(scene["package_int8"]), str(tmp_path / "out.manifest"), str(tmp_path / "report"))
    fp32, int8 = report["precisions"]["fp32"]["mAP"], report["precisions"]["int8"]["mAP"]
    print(f"held-out mAP@0.5: FP32 {fp32:.4f}, INT8 {int8:.4f}")  # noqa: T201 - shown with -s, for the record
    assert fp32 > 0.3 and int8 >= fp32 - 0.02, (fp32, int8)  # a weak 8-epoch model, but one that detects
    assert report["mAP"] == fp32 and report["int8_mAP_change"] == pytest.approx(int8 - fp32)
    saved = json.loads((tmp_path / "report" / "evaluation.json").read_text())
    assert set(saved["precisions"]) == {"fp32", "int8"}


def test_convert_int8_writes_both_models_and_records_the_calibration(scene, tmp_path, capsys):
    manifest = scene["root"] / "prepared" / "train.manifest"
    assert (
        _convert(scene, tmp_path / "pkg", "--int8", "--calibration", str(manifest), "--calibration-images", "20") == 0
    )
    result = json.loads(capsys.readouterr().out)
    assert {"model.onnx", "model.int8.onnx"} <= set(result["files"])
    model_json = json.loads((tmp_path / "pkg" / "model.json").read_text())
    assert model_json["files"]["onnx_int8"] == "model.int8.onnx" and "model.int8.onnx" in model_json["sha256"]
    lines = manifest.read_text().splitlines()
    assert model_json["int8"] == {
        "format": "QDQ",
        "quantized": ["Conv"],
        "calibration": {"source": str(manifest), "images": 20, "available": len(lines)},
    }
    assert "  model.int8.onnx" in (tmp_path / "pkg" / "SHA256SUMS").read_text()
    # converting again with the same frames gives the same bytes (nothing rewritten); without --int8 the INT8
    # file of the earlier conversion is removed, not left beside a package that does not list it
    assert (
        _convert(scene, tmp_path / "pkg", "--int8", "--calibration", str(manifest), "--calibration-images", "20") == 0
    )
    assert json.loads(capsys.readouterr().out)["unchanged"] is True
    assert _convert(scene, tmp_path / "pkg") == 0
    assert not (tmp_path / "pkg" / "model.int8.onnx").exists()


def test_calibration_frames_are_the_devices_blobs_exactly(scene, tmp_path):
    """Kept as uint8 and written as the workflow's step writes them: nothing lost against odedge's float blob."""
    folder = scene["root"] / "frames"
    calibration = build_calibration([str(folder)], 300, 4)
    write_calibration(str(tmp_path / "calibration.npz"), calibration)
    again = read_calibration(str(tmp_path / "calibration.npz"))
    assert again.images == calibration.images and again.frames.dtype == np.uint8
    for ref, frame in zip(again.images, again.frames, strict=True):
        assert np.array_equal(preprocess(cv2.imread(ref), 300)[0][0], frame.astype(np.float32))


def test_int8_without_calibration_data_is_refused(scene, tmp_path, capsys):
    assert _convert(scene, tmp_path / "pkg", "--int8") == 2
    (line,) = _errors(capsys)
    assert "--int8: needs frames to calibrate on: --calibration" in line
    assert not (tmp_path / "pkg").exists()
    assert _convert(scene, tmp_path / "pkg", "--calibration", str(tmp_path)) == 2
    assert "--calibration: only used with --int8" in _errors(capsys)[0]


def test_few_calibration_images_warn_with_the_number(scene, tmp_path, caplog):
    folder = tmp_path / "few"
    folder.mkdir()
    for ref in sorted((scene["root"] / "frames").rglob("*.jpg"))[:3]:
        (folder / ref.name).write_bytes(ref.read_bytes())
    with caplog.at_level(logging.WARNING, logger="odshared.model.calibration"):
        assert _convert(scene, tmp_path / "pkg", "--int8", "--calibration", str(folder)) == 0
    (warning,) = [r for r in caplog.records if r.getMessage() == "calibration.few_images"]
    assert warning.__dict__["fields"]["images"] == 3 and warning.__dict__["fields"]["advised"] == 16
    assert json.loads((tmp_path / "pkg" / "model.json").read_text())["int8"]["calibration"]["images"] == 3


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ('{"source-ref": "IMAGE"}\n{"color": "blue"}\n', "few.manifest:2: no source-ref"),
        ('{"source-ref": "IMAGE"}\nnot json\n', "few.manifest:2: malformed JSON"),
        ('{"source-ref": "NOTANIMAGE"}\n', "not a decodable image"),
        ("", "no image in it"),
    ],
)
def test_bad_calibration_data_names_the_line_or_image_and_writes_nothing(scene, tmp_path, capsys, content, expected):
    image = next((scene["root"] / "frames").rglob("*.jpg"))
    (tmp_path / "bad.jpg").write_bytes(b"not a jpeg")
    manifest = tmp_path / "few.manifest"
    manifest.write_text(content.replace("NOTANIMAGE", str(tmp_path / "bad.jpg")).replace("IMAGE", str(image)))
    assert _convert(scene, tmp_path / "pkg", "--int8", "--calibration", str(manifest)) == 2
    (line,) = _errors(capsys)
    assert expected in line, line
    assert not (tmp_path / "pkg").exists()
