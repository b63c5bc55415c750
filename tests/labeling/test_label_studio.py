"""Label Studio end to end against a real server: push a manifest, annotate each task through the API as the
labeling page submits it, pull a Ground Truth output manifest; pre-labels, S3 frames and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from odctl.cli import main
from odctl.labelstudio.formats import rectangle
from odctl.synth_video import SynthSpec, read_boxes, write_video
from odshared.core import storage
from odshared.data.frames import extract_frames
from odshared.data.input_manifest import build_input_manifest
from tests.conftest import CLASSES, REPO, free_port

pytestmark = pytest.mark.integration
VIDEO = "mixed_boxes_3"


@pytest.fixture(scope="module")
def frames(tmp_path_factory):
    """Generated frames with known boxes, their input manifest (metadata from the name), and what label-local
    writes for them."""
    from odctl.local_labeling import label_from_known_boxes

    root = tmp_path_factory.mktemp("ls-frames")
    write_video(SynthSpec(VIDEO, CLASSES, frames=24, seed=5), root)
    extract_frames(str(root / f"{VIDEO}.mp4"), str(root / "frames"), every=4)
    build_input_manifest([str(root / "frames")], str(root / "in.manifest"), pattern="{color}_{object}_{n}")
    label_from_known_boxes(
        str(root / "in.manifest"), str(root), str(root / "local.manifest"), list(CLASSES), job_name="boxes"
    )
    return root


def _connection(label_studio) -> list[str]:
    return ["--url", label_studio.url, "--token", label_studio.credentials.token]


def _push(label_studio, manifest, project, *extra) -> list[str]:
    return ["label-studio", "push", str(manifest), "--project", project, *_connection(label_studio), *extra]


def _annotate_known_boxes(client, project_title: str, boxes_file: Path, label=None) -> int:
    """Submit, for every task, the video's known boxes as the labeling page would."""
    known = read_boxes(boxes_file)
    project = client.project(project_title)
    tasks = client.tasks(project["id"])
    for task in tasks:
        record = known[int(Path(task["data"]["source-ref"]).stem.rsplit("_", 1)[1])]
        size = (record["width"], record["height"])
        results = [
            rectangle(label or b["class"], b["left"], b["top"], b["width"], b["height"], size) for b in record["boxes"]
        ]
        client.annotate(task["id"], results)
    return len(tasks)


def _without_dates(path) -> list[dict]:
    lines = [json.loads(line) for line in storage.read_text(str(path)).splitlines() if line.strip()]
    for line in lines:
        line["bb-metadata"].pop("creation-date")
    return lines


def test_round_trip_equals_label_local(label_studio, client, frames, tmp_path, capsys):
    args = _push(label_studio, frames / "in.manifest", "round-trip", "--classes", ",".join(CLASSES))
    assert main([*args, "--files-root", label_studio.credentials.files_root]) == 0
    pushed = json.loads(capsys.readouterr().out)
    assert pushed["imported"] == 6 and pushed["already_in_project"] == 0
    assert main([*args, "--files-root", label_studio.credentials.files_root]) == 0  # again: nothing new
    assert json.loads(capsys.readouterr().out)["imported"] == 0
    task = client.tasks(client.project("round-trip")["id"])[0]
    assert task["data"]["color"] == "mixed" and task["data"]["object"] == "boxes"  # metadata kept in the task
    assert _annotate_known_boxes(client, "round-trip", frames / f"{VIDEO}.boxes.jsonl") == 6
    out = tmp_path / "labels" / "output.manifest"
    pull = ["label-studio", "pull", "--project", "round-trip", "--out", str(out), "--job-name", "boxes"]
    assert main([*pull, *_connection(label_studio)]) == 0
    assert json.loads(capsys.readouterr().out) == {"manifest": str(out), "written": 6, "unlabeled": 0, "rejected": 0}
    assert _without_dates(out) == _without_dates(frames / "local.manifest")
    assert (
        main(["prepare-training", str(out), "--out", str(tmp_path / "prepared"), "--validation-fraction", "0.2"]) == 0
    )


def test_unlabeled_tasks_are_counted_not_written(label_studio, client, frames, tmp_path, capsys):
    args = _push(label_studio, frames / "in.manifest", "half-done", "--classes", ",".join(CLASSES))
    assert main([*args, "--files-root", label_studio.credentials.files_root]) == 0
    tasks = client.tasks(client.project("half-done")["id"])
    out = tmp_path / "output.manifest"
    pull = ["label-studio", "pull", "--project", "half-done", "--out", str(out), *_connection(label_studio)]
    capsys.readouterr()
    assert main(pull) == 2  # red before: an empty manifest with exit 0
    err = capsys.readouterr().err.strip()
    assert "nothing labeled yet (6 task(s) unlabeled)" in err and "--allow-empty" in err and not out.exists()
    assert main([*pull, "--allow-empty"]) == 0 and out.read_text() == ""
    known = read_boxes(frames / f"{VIDEO}.boxes.jsonl")
    first = known[int(Path(tasks[0]["data"]["source-ref"]).stem.rsplit("_", 1)[1])]
    size = (first["width"], first["height"])
    client.annotate(
        tasks[0]["id"],
        [rectangle(b["class"], b["left"], b["top"], b["width"], b["height"], size) for b in first["boxes"]],
    )
    client.annotate(tasks[1]["id"], [])  # submitted with no boxes: an empty image, its size read from the image
    capsys.readouterr()
    assert main(pull) == 0
    assert json.loads(capsys.readouterr().out)["unlabeled"] == 4
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == 2 and lines[1]["bb"]["annotations"] == []
    assert lines[1]["bb"]["image_size"] == [{"width": size[0], "height": size[1], "depth": 3}]


def test_pre_labels_are_the_models_own_detections(label_studio, client, scene, tmp_path, capsys):
    from odedge.model import ModelPackage
    from odedge.postprocess import detections
    from odedge.preprocess import preprocess
    from odedge.runtimes import OnnxRuntime
    from odshared.data.contact_sheet import decode

    root = tmp_path / "scene-frames"
    extract_frames(str(scene["video"]), str(root), every=30)
    build_input_manifest([str(root)], str(tmp_path / "scene.manifest"))
    args = _push(label_studio, tmp_path / "scene.manifest", "pre-labeled", "--classes", ",".join(CLASSES))
    args += ["--files-root", label_studio.credentials.files_root, "--pre-label", str(scene["package"])]
    assert main([*args, "--min-score", "0.5"]) == 0
    assert json.loads(capsys.readouterr().out)["predictions"] == 4
    package = ModelPackage.load(scene["package"])
    runtime = OnnxRuntime(package)
    project = client.project("pre-labeled")
    for task in client.tasks(project["id"]):
        image = decode(Path(task["data"]["source-ref"]).read_bytes())
        blob, meta = preprocess(image, package.input_size)
        own = detections(runtime.predict(blob), meta, package.classes, 0.5)
        [pred] = task["predictions"]
        assert pred["model_version"] == package.version
        assert [r["value"]["rectanglelabels"][0] for r in pred["result"]] == [d.label for d in own]
        assert [r["score"] for r in pred["result"]] == [round(d.score, 4) for d in own]
        got = [(r["value"]["x"], r["value"]["y"], r["value"]["width"], r["value"]["height"]) for r in pred["result"]]
        height, width = image.shape[:2]
        boxes = [(x1, y1, x2 - x1, y2 - y1) for x1, y1, x2, y2 in (d.box for d in own)]
        want = [(100 * x / width, 100 * y / height, 100 * w / width, 100 * h / height) for x, y, w, h in boxes]
        assert got == [pytest.approx(box) for box in want]
    assert client.call("GET", f"/api/projects/{project['id']}")["model_version"] == package.version
    with_boxes = [t for t in client.tasks(project["id"]) if len(t["predictions"][0]["result"]) >= 2]
    _screenshot_task_page(
        label_studio, project["id"], with_boxes[0]["id"], len(with_boxes[0]["predictions"][0]["result"])
    )


def _screenshot_task_page(label_studio, project_id: int, task_id: int, boxes: int) -> None:
    """The labeling page of one task, opened by a logged-in labeler in headless Chromium: the predicted boxes are
    drawn on the image (regions listed with their labels), and the page is saved."""
    from playwright.sync_api import sync_playwright

    out = REPO / "test-output" / "label-studio-task.png"
    out.parent.mkdir(exist_ok=True)
    flags = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=[*flags, "--no-first-run"])
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.goto(f"{label_studio.url}/user/login")
        page.fill("input[name=email]", label_studio.credentials.username)
        page.fill("input[name=password]", label_studio.credentials.password)
        page.click("button[type=submit]")
        page.wait_for_url(lambda url: "/user/login" not in url, timeout=60_000)
        page.goto(f"{label_studio.url}/projects/{project_id}/data?task={task_id}")
        page.wait_for_selector("canvas", timeout=60_000)
        page.wait_for_timeout(3000)  # the image and the boxes finish drawing
        page.screenshot(path=str(out))
        regions_panel = page.get_by_text("Labeled regions will appear here")
        empty = regions_panel.count()
        browser.close()
    assert empty == 0  # the labeler's annotation starts from the predicted boxes
    assert out.stat().st_size > 20_000


def test_frames_in_s3_are_served_presigned_and_pulled_to_s3(label_studio, client, frames, bucket, tmp_path, capsys):
    import urllib.request

    for path in sorted((frames / "frames").iterdir()):
        storage.write_bytes(f"s3://{bucket}/frames/{VIDEO}/{path.name}", path.read_bytes(), "image/jpeg")
    manifest = f"s3://{bucket}/manifests/in.manifest"
    build_input_manifest([f"s3://{bucket}/frames/{VIDEO}"], manifest, pattern="{color}_{object}_{n}")
    assert main(_push(label_studio, manifest, "from-s3", "--classes", ",".join(CLASSES))) == 0
    assert json.loads(capsys.readouterr().out)["imported"] == 6
    project = client.project("from-s3")
    [stored] = [t for t in client.export(project["id"])][:1]
    assert stored["data"]["image"].startswith(f"s3://{bucket}/frames/")  # nothing copied: the task names the object
    # what the labeling page loads: Label Studio resolves the task's s3:// image (a presigned URL behind it)
    task = client.call("GET", f"/api/tasks/{stored['id']}")
    resolved = task["data"]["image"]
    url = resolved if resolved.startswith("http") else label_studio.url + resolved
    request = urllib.request.Request(url, headers={"Authorization": f"Token {label_studio.credentials.token}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        body = response.read()
    assert body == storage.read_bytes(stored["data"]["source-ref"])
    assert all(t["data"]["source-ref"].startswith("s3://") for t in client.tasks(project["id"]))  # as pushed
    _annotate_known_boxes(client, "from-s3", frames / f"{VIDEO}.boxes.jsonl")
    out = f"s3://{bucket}/labels/from-s3/output.manifest"
    assert main(["label-studio", "pull", "--project", "from-s3", "--out", out, *_connection(label_studio)]) == 0
    assert json.loads(capsys.readouterr().out)["written"] == 6
    local = _without_dates(frames / "local.manifest")
    pulled = _without_dates(out)
    for line in pulled:
        line["source-ref"] = line["source-ref"].rsplit("/", 1)[1]
        line["bb-metadata"]["job-name"] = "labeling-job/boxes"
    for line in local:
        line["source-ref"] = line["source-ref"].rsplit("/", 1)[1]
    assert pulled == local


def test_bad_input_is_one_line_naming_what_to_fix(label_studio, client, frames, tmp_path, capsys):
    bad = tmp_path / "bad.manifest"
    bad.write_text('{"source-ref": "/x/a.jpg"}\n{"color": "blue"}\n')
    assert main(_push(label_studio, bad, "bad", "--classes", "blue box")) == 2
    err = capsys.readouterr().err
    assert f"{bad}:2" in err and "source-ref" in err and "Traceback" not in err
    manifest = frames / "in.manifest"
    root = ["--files-root", label_studio.credentials.files_root]
    assert main([*_push(label_studio, manifest, "fixed-classes", "--classes", "blue box,yellow box"), *root]) == 0
    assert main([*_push(label_studio, manifest, "fixed-classes", "--classes", "yellow box,blue box"), *root]) == 2
    assert "labels ['blue box', 'yellow box'], not ['yellow box', 'blue box']" in capsys.readouterr().err
    down = f"http://127.0.0.1:{free_port()}"
    assert (
        main(["label-studio", "pull", "--project", "x", "--out", str(tmp_path / "o"), "--url", down, "--token", "t"])
        == 2
    )
    assert f"cannot reach Label Studio at {down}" in capsys.readouterr().err
    wrong = ["--url", label_studio.url, "--token", "0" * 40]
    assert main(["label-studio", "pull", "--project", "x", "--out", str(tmp_path / "o"), *wrong]) == 2
    err = capsys.readouterr().err
    assert "refused the token" in err and "Traceback" not in err
    assert len([line for line in err.splitlines() if line.startswith("odctl ")]) == 1


def test_no_server_to_talk_to_names_the_data_dir(tmp_path, monkeypatch, capsys):
    for setting in ("LABEL_STUDIO_URL", "LABEL_STUDIO_API_KEY"):
        monkeypatch.delenv(setting, raising=False)
    argv = ["label-studio", "pull", "--project", "x", "--out", str(tmp_path / "o"), "--data-dir", str(tmp_path)]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "give the --data-dir that `odctl label-studio serve` ran with" in err and "Traceback" not in err


def test_frames_outside_the_files_root_are_one_line_before_anything_is_created(label_studio, client, frames, capsys):
    """Frames in a folder the server does not serve: the root comes from what serve recorded in --data-dir, every
    frame is checked before the project is made, and the line names the folder, the root and the serve command
    that serves both. Told a wrong root (--files-root /), the server's refusal gives the same line, and the
    project made for the push is removed again."""
    import shutil
    import tempfile

    root = Path(label_studio.credentials.files_root)
    outside = Path(tempfile.mkdtemp(prefix="odctl-outside-", dir=root.parent)).resolve()
    try:
        shutil.copytree(frames / "frames", outside / "frames")
        manifest = outside / "in.manifest"
        build_input_manifest([str(outside / "frames")], str(manifest))
        data_dir = label_studio.log.parent
        push = ["label-studio", "push", str(manifest), "--project", "outside", "--classes", ",".join(CLASSES)]
        push += ["--data-dir", str(data_dir)]
        expected = (
            f"odctl label-studio: error: {manifest}: frames folder {outside / 'frames'} is outside Label Studio's "
            f"local files root {root}: restart Label Studio with `odctl label-studio serve --data-dir {data_dir} "
            f"--files-root {outside}`, or push frames from s3://"
        )
        for extra in ([], ["--files-root", "/"]):
            capsys.readouterr()
            assert main([*push, *extra]) == 2
            err = capsys.readouterr().err
            assert [line for line in err.splitlines() if line.startswith("odctl ")] == [expected], extra
            assert "Traceback" not in err and "400" not in err
            assert client.project("outside") is None  # no project, so no task
    finally:
        shutil.rmtree(outside)


def test_the_files_root_itself_and_several_folders_outside_it(tmp_path):
    """Label Studio serves folders below its root, not the root: frames right in it are refused as well; with
    several folders outside, the first is named, the others counted, and the root offered covers them all."""
    from odctl.labelstudio.projects import check_frames_under_root
    from odctl.labelstudio.server import LabelStudioError

    served = tmp_path / "served"
    with pytest.raises(LabelStudioError) as raised:
        check_frames_under_root("m.manifest", [str(served / "a_000001.jpg"), "s3://b/k.jpg"], str(served))
    assert str(raised.value) == (
        f"m.manifest: frames folder {served} is Label Studio's local files root itself, which it does not serve "
        f"(only folders below it): restart Label Studio with `odctl label-studio serve --files-root {tmp_path}`, or "
        "push frames from s3://"
    )
    refs = [str(tmp_path / folder / "f_000001.jpg") for folder in ("served/in", "x/one", "y/two")]
    with pytest.raises(LabelStudioError) as raised:
        check_frames_under_root("m.manifest", refs, str(served))
    message = str(raised.value)
    assert f"frames folder {tmp_path / 'x' / 'one'} (and 1 more) is outside" in message
    assert f"--files-root {tmp_path}`" in message
    check_frames_under_root("m.manifest", refs[:1], str(served))  # below the root: nothing to say


def test_a_restart_with_another_files_root_serves_that_one(tmp_path, monkeypatch):
    """The fix the push error offers works: serve --files-root on a data folder that served another root records
    the new one (the user and token stay); serve without it keeps the saved root."""
    from odctl.labelstudio.server import credentials

    monkeypatch.chdir(tmp_path)
    first = credentials(tmp_path / "data")
    assert first.files_root == str(tmp_path.resolve())  # a first start without --files-root: the current folder
    assert credentials(tmp_path / "data", tmp_path / "frames").files_root == str(tmp_path / "frames")
    again = credentials(tmp_path / "data")
    assert again.files_root == str(tmp_path / "frames") and (again.token, again.password) == (
        first.token,
        first.password,
    )
    assert oct((tmp_path / "data" / "odctl-credentials.json").stat().st_mode & 0o777) == "0o600"


def test_annotations_that_are_not_ground_truth_boxes_are_kept_out(label_studio, client, frames, tmp_path, capsys):
    args = _push(label_studio, frames / "in.manifest", "odd-labels", "--classes", ",".join(CLASSES))
    assert main([*args, "--files-root", label_studio.credentials.files_root]) == 0
    tasks = client.tasks(client.project("odd-labels")["id"])
    size = (640, 360)
    client.annotate(tasks[0]["id"], [rectangle("cat", 10, 10, 50, 50, size)])  # a label the project does not have
    rotated = rectangle("blue box", 10, 10, 50, 50, size)
    rotated["value"]["rotation"] = 30
    client.annotate(tasks[1]["id"], [rotated])
    client.annotate(tasks[2]["id"], [rectangle("blue box", 600, 10, 80, 50, size)])  # past the right edge
    client.annotate(tasks[3]["id"], [rectangle("yellow box", 10, 10, 50, 50, size)])
    capsys.readouterr()
    out = tmp_path / "output.manifest"
    pull = ["label-studio", "pull", "--project", "odd-labels", "--out", str(out), *_connection(label_studio)]
    assert main(pull) == 2
    err = capsys.readouterr().err
    assert f"task {tasks[0]['id']}: label 'cat' is not one of the classes" in err and "rejected.jsonl" in err
    rejected = [json.loads(line) for line in (tmp_path / "rejected.jsonl").read_text().splitlines()]
    assert [r["task"] for r in rejected] == [t["id"] for t in tasks[:3]]
    assert "rotated" in rejected[1]["reason"] and "outside the image" in rejected[2]["reason"]
    assert len(out.read_text().splitlines()) == 1  # the valid one is written
    assert main([*pull, "--skip-invalid"]) == 0


@pytest.mark.slow
def test_serve_installs_on_first_use_prints_the_token_and_stops_on_sigterm(tmp_path):
    """`odctl label-studio serve` as an operator runs it: a fresh environment installed from the lock, the first
    user created, the URL and token printed, the API answering that token, SIGTERM a clean stop."""
    import os
    import signal
    import subprocess
    import sys
    import urllib.request

    port = free_port()
    # a generated password may begin with "-" (secrets.token_urlsafe): the server must still take it
    (tmp_path / "data").mkdir()
    saved = {"username": "op@localhost.local", "password": "-Zq8dash-first", "token": "ab" * 20, "files_root": "/"}
    (tmp_path / "data" / "odctl-credentials.json").write_text(json.dumps(saved))
    env = {**os.environ, "ODCTL_LABEL_STUDIO_ENV": str(tmp_path / "env"), "ODCTL_PROGRESS": "0"}
    command = [sys.executable, "-m", "odctl.cli", "label-studio", "serve", "--port", str(port)]
    command += ["--data-dir", str(tmp_path / "data"), "--files-root", str(tmp_path)]
    process = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        token = None
        for line in process.stderr:
            if line.startswith("API token: "):
                token = line.split(": ", 1)[1].strip()
                break
        assert token == "ab" * 20, "serve printed another token"
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/projects", headers={"Authorization": f"Token {token}"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            assert json.loads(response.read())["count"] == 0
        assert (tmp_path / "env" / "bin" / "label-studio").exists()
        assert oct((tmp_path / "data" / "odctl-credentials.json").stat().st_mode & 0o777) == "0o600"
    finally:
        process.send_signal(signal.SIGTERM)
        out, _ = process.communicate(timeout=60)
    assert process.returncode == 0 and json.loads(out)["stopped"]
