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
    "label-studio",
    "convert",
    "train-local",
    "evaluate",
    "evaluate-tracking",
    "package-component",
    "detect",
    "preview-lines",
    "camera",
    "counts",
    "fleet",
    "pipeline",
    "model",
    "watch",
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


def _subcommands() -> dict:
    return next(a for a in build_parser()._actions if a.dest == "command").choices


# the least each command needs, pointing at inputs that do not exist
MISSING_INPUTS = {
    "record": ["--camera", "{tmp}/none.mp4", "--name", "x", "--out", "{tmp}"],
    "synth-video": ["--out", "{tmp}", "--name", "x", "--classes", ","],
    "extract-frames": ["{tmp}/none.mp4", "--out", "{tmp}/frames"],
    "make-manifest": ["{tmp}/none", "--out", "{tmp}/m.manifest"],
    "preview-manifest": ["{tmp}/none.manifest", "--out", "{tmp}/p.png"],
    "show-labels": ["{tmp}/none.manifest", "--out", "{tmp}/labels"],
    "prepare-training": ["{tmp}/none.manifest", "--out", "{tmp}/prepared"],
    "label-local": ["{tmp}/none.manifest", "--boxes-dir", "{tmp}", "--out", "{tmp}/o", "--classes", "a"],
    "convert": ["--model", "{tmp}/none.tar.gz", "--out", "{tmp}/pkg"],
    "train-local": ["--train", "{tmp}/none", "--validation", "{tmp}/none", "--out", "{tmp}/m.tar.gz"],
    "evaluate": ["--model", "{tmp}/none", "{tmp}/none.manifest"],
    "evaluate-tracking": ["{tmp}/none.mp4", "--model", "{tmp}/none", "--line", "door:0.5,0,0.5,1"],
    "label-studio": ["push", "{tmp}/none.manifest", "--project", "p", "--url", "http://127.0.0.1:1", "--token", "t"],
    "package-component": ["--model", "{tmp}/none", "--out", "{tmp}/gg"],
    "detect": ["{tmp}/none.mp4", "--model", "{tmp}/none"],
    "preview-lines": ["{tmp}/none.mp4", "--line", "door:0,0.5,1,0.5:top-to-bottom", "--out", "{tmp}/p.png"],
    "camera": ["reference", "{tmp}/none.mp4", "--counts-file", "{tmp}/counts.json"],
    "pipeline": ["start", "--manifest", "{tmp}/local.manifest"],
    "model": ["approve"],
    "watch": ["--mqtt-host", "127.0.0.1", "--mqtt-port", "1", "--seconds", "1"],
    "counts": ["--from", "{tmp}/none.jsonl"],
    "fleet": ["--from", "{tmp}/none.jsonl"],
    "demo": ["--workdir", "{tmp}/demo", "--minutes", "0"],
}


def test_the_walk_covers_every_command():
    assert sorted(MISSING_INPUTS) == sorted(_subcommands())


@pytest.mark.parametrize("command", sorted(MISSING_INPUTS))
def test_every_command_with_missing_input_is_one_line_and_exit_2(command, tmp_path, capsys):
    argv = [command, *(a.format(tmp=tmp_path) for a in MISSING_INPUTS[command])]
    try:
        code = main(argv)
    except SystemExit as exit_:  # argparse's own refusals
        code = exit_.code
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.startswith(("odctl", "usage:")) or "error:" in line]
    assert any(line.startswith(f"odctl {command}") for line in lines), err


def _numeric_options():
    from odctl.cli_types import Number

    for command, parser in sorted(_subcommands().items()):
        for action in parser._actions:
            if isinstance(action.type, Number) and action.option_strings:  # positionals: their own tests
                yield command, action.option_strings[0], action.type


@pytest.mark.parametrize("command, option, kind", list(_numeric_options()))
def test_every_numeric_option_is_checked_against_its_range(command, option, kind, tmp_path, capsys):
    required = [a.format(tmp=tmp_path) for a in MISSING_INPUTS[command]]
    others = {o for c, o, _ in _numeric_options() if c == command and o != option}
    for index in [i for i, token in enumerate(required) if token in others][::-1]:
        del required[index : index + 2]  # another option's bad value (demo's --minutes 0) would be said first
    for bad in (kind.outside(), "nan", "twelve"):
        with pytest.raises(SystemExit) as info:
            main([command, *required, option, bad])
        err = capsys.readouterr().err
        assert info.value.code == 2 and "Traceback" not in err
        assert f"argument {option}" in err, err


def test_log_level_after_the_subcommand_and_version(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0 and capsys.readouterr().out.startswith("odctl ")
    with pytest.raises(SystemExit):
        main(["synth-video", "--log-level", "DEBUG", "--help"])
    assert "(default: 300)" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("line", "said"),
    [
        (
            "door:320,0,320,480",
            "points are fractions of the frame (0 to 1; 0.5 is the middle), not pixels: 320, 320, 480",
        ),
        ("door:0.5,0,0.5,0.5,0.6,1", "a line has two points, NAME:x1,y1,x2,y2 (a zone, --zone, takes three or more)"),
    ],
)
def test_a_line_in_pixels_or_with_three_points_is_named_as_the_option(line, said, tmp_path, capsys):
    code = main(["detect", str(tmp_path / "none.mp4"), "--model", str(tmp_path / "none"), "--line", line])
    err = capsys.readouterr().err
    assert code == 2 and f"--line {line!r}: {said}" in err and "Traceback" not in err


def test_model_approve_takes_a_positive_version(capsys):
    for bad in ("0", "three"):
        with pytest.raises(SystemExit) as info:
            main(["model", "approve", bad])
        assert info.value.code == 2
    assert "version" in capsys.readouterr().err


def test_convert_on_a_file_that_is_not_gzip_says_so_in_one_line(tmp_path, capsys):
    fake = tmp_path / "model.tar.gz"
    fake.write_text("hello\n")
    assert main(["convert", "--model", str(fake), "--out", str(tmp_path / "pkg"), "--classes", "a"]) == 2
    err = capsys.readouterr().err
    assert f"{fake}: not a model.tar.gz (not gzip data)" in err and "method bz2" not in err


def test_ctrl_c_stops_a_command_without_a_traceback(tmp_path, capsys, monkeypatch):
    import odshared.data.frames as frames

    def interrupted(*_args, **_kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(frames, "extract_frames", interrupted)
    video = tmp_path / "v.mp4"
    video.write_bytes(b"")
    assert main(["extract-frames", str(video), "--out", str(tmp_path / "frames")]) == 130
    err = capsys.readouterr().err
    assert "interrupted; run it again" in err and "Traceback" not in err
