"""The odctl entry point: help with examples, JSON results, clear errors with exit code 2."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from odctl.cli import build_parser, main

COMMANDS = [
    "record",
    "synth-video",
    "extract-frames",
    "make-manifest",
    "preview-manifest",
    "show-labels",
    "prepare-training",
    "label-local",
    "convert",
    "train-local",
    "evaluate",
    "package-component",
    "detect",
    "pipeline",
    "demo",
]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_with_an_example(command, capsys):
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "example:" in out and f"odctl {command}" in out


def test_parser_lists_every_command():
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    assert sorted(sub.choices) == sorted(COMMANDS)


def test_chain_through_the_cli(tmp_path, capsys):
    videos = tmp_path / "videos"
    assert (
        main(
            [
                "synth-video",
                "--out",
                str(videos),
                "--name",
                "blue_box_1",
                "--classes",
                "blue box",
                "--frames",
                "20",
                "--width",
                "192",
                "--height",
                "108",
                "--seed",
                "1",
            ]
        )
        == 0
    )
    assert (
        main(["extract-frames", str(videos / "blue_box_1.mp4"), "--out", str(tmp_path / "frames"), "--every", "2"]) == 0
    )
    assert (
        main(
            [
                "make-manifest",
                str(tmp_path / "frames"),
                "--out",
                str(tmp_path / "in.manifest"),
                "--metadata-from-name",
                "{color}_{object}_{n}",
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "label-local",
                str(tmp_path / "in.manifest"),
                "--boxes-dir",
                str(videos),
                "--out",
                str(tmp_path / "out.manifest"),
                "--classes",
                "blue box",
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert (
        main(
            [
                "prepare-training",
                str(tmp_path / "out.manifest"),
                "--out",
                str(tmp_path / "prepared"),
                "--class-from",
                "color=blue:blue box",
                "--flip",
            ]
        )
        == 0
    )
    result = json.loads(capsys.readouterr().out)
    assert result["classes"] == ["blue box"]
    assert result["counts"]["flipped_images"] == result["counts"]["train_images"] / 2


def test_errors_exit_2_with_the_reason(tmp_path, capsys):
    code = main(["prepare-training", str(tmp_path / "nope.manifest"), "--out", str(tmp_path / "o")])
    assert code == 2
    assert f"{tmp_path / 'nope.manifest'}: no such file" in capsys.readouterr().err


def test_console_script_runs_in_a_subprocess(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "odctl.cli", "make-manifest", str(tmp_path / "missing"), "--out", str(tmp_path / "m")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "no such folder" in done.stderr
    events = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    assert events and events[-1]["event"] == "command.failed"
