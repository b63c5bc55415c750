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
