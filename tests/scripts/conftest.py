"""Generated videos shared by the CLI tests (made once per session, by code)."""

from __future__ import annotations

import pytest

from odctl.synth_video import SynthSpec, write_video


@pytest.fixture(scope="session")
def small_video(tmp_path_factory):
    folder = tmp_path_factory.mktemp("videos")
    spec = SynthSpec("blue_box_1", ("blue box", "yellow box"), frames=40, width=320, height=180, fps=10, seed=3)
    video, boxes = write_video(spec, folder)
    return video, boxes, spec


@pytest.fixture(scope="session")
def labeled_dataset(tmp_path_factory, small_video):
    """Frames of the small video, labeled by the Ground Truth stand-in and prepared for training."""
    from odctl.local_labeling import label_from_known_boxes
    from odshared.data.dataprep import PrepareOptions, prepare_training
    from odshared.data.frames import extract_frames
    from odshared.data.input_manifest import build_input_manifest

    video, boxes, spec = small_video
    root = tmp_path_factory.mktemp("dataset")
    extract_frames(str(video), str(root / "frames"), every=2)
    build_input_manifest([str(root / "frames")], str(root / "in.manifest"))
    label_from_known_boxes(str(root / "in.manifest"), str(boxes.parent), str(root / "out.manifest"), list(spec.classes))
    prepare_training(
        [str(root / "out.manifest")],
        str(root / "prepared"),
        PrepareOptions(classes=spec.classes, validation_fraction=0.25),
    )
    return root
