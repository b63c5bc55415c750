"""The offline main job: generated videos -> frames -> labeling manifest -> labels -> training data ->
trained SSD -> converted models -> Greengrass components -> the inference loop on a held-out video -> a report.

Each step checks its outputs and is skipped when they exist, so a re-run resumes; ``fresh`` starts over.
With ``s3`` every storage step runs against a local moto server standing in for S3.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from odshared.core import storage
from odshared.core.log import log_event
from odshared.greengrass.recipes import component_names
from odshared.model.package import INT8_ONNX_FILE, download_package

logger = logging.getLogger(__name__)

CLASSES = ("blue box", "yellow box")
TRAIN_VIDEOS = (
    ("blue_box_1", ("blue box",), 11),
    ("yellow_box_1", ("yellow box",), 12),
    ("mixed_boxes_1", CLASSES, 13),
)
HELD_OUT = ("mixed_boxes_2", CLASSES, 101)
# counting: a held-out video whose boxes cross the frame's vertical middle both ways, and that line
COUNTING_VIDEO = ("mixed_boxes_3", CLASSES, 303)
COUNTING_POINTS = ((0.5, 0.0), (0.5, 1.0))
COUNTING_LINE = {"name": "middle", "points": [list(p) for p in COUNTING_POINTS], "in": "left-to-right"}
PREFIX = "com.example.demo"
BUCKET = "odctl-demo"


@dataclass(frozen=True)
class Plan:
    frames_per_video: int
    every: int
    epochs: int
    lr_step: str
    max_batches: int | None


def plan_for(minutes: float) -> Plan:
    """The full run (14 epochs, whatever the machine's speed: a wall-clock budget made a slow or busy machine stop
    earlier and report other figures); under five minutes, a wiring check with a few iterations."""
    if minutes < 5:
        return Plan(frames_per_video=30, every=3, epochs=1, lr_step="", max_batches=2)
    return Plan(frames_per_video=160, every=2, epochs=14, lr_step="10", max_batches=None)


class Steps:
    """Runs named steps once: a step whose output exists is reused (and recorded as such)."""

    def __init__(self, summary: dict[str, Any]) -> None:
        self.summary = summary

    def __call__(self, name: str, done: str, action: Callable[[], Any]) -> Any:
        start = time.monotonic()
        if storage.exists(done):
            log_event(logger, "demo.step_reused", step=name, output=done)
            self.summary["steps"][name] = {"reused": True}
            return None
        log_event(logger, "demo.step_started", step=name)
        result = action()
        seconds = round(time.monotonic() - start, 2)
        self.summary["steps"][name] = {"seconds": seconds}
        log_event(logger, "demo.step_done", step=name, seconds=seconds)
        return result


def _broker_reachable(host: str = "127.0.0.1", port: int = 1883) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.3)
        return sock.connect_ex((host, port)) == 0


AWS_VARIABLES = ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")


def _start_moto() -> tuple[Any, dict[str, str | None]]:
    """A moto server on a free loopback port; boto3 is pointed at it until the previous settings are restored."""
    from moto.server import ThreadedMotoServer

    previous = {name: os.environ.get(name) for name in AWS_VARIABLES}
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    os.environ.update(
        AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}",
        AWS_ACCESS_KEY_ID="demo",
        AWS_SECRET_ACCESS_KEY="demo",
        AWS_DEFAULT_REGION="us-east-1",
    )
    import boto3

    boto3.client("s3").create_bucket(Bucket=BUCKET)
    return server, previous


def _stop_moto(server: Any, previous: dict[str, str | None]) -> None:
    server.stop()
    for name, value in previous.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def run_demo(
    workdir: str, fresh: bool = False, s3: bool = False, minutes: float = 20.0, seed: int = 0
) -> dict[str, Any]:
    """The whole chain; the same ``seed`` gives the same figures on every run (the videos are fixed, the seed
    draws the network's initial weights and the batches)."""
    started = time.monotonic()
    plan = plan_for(minutes)
    root = Path(workdir).resolve()
    if fresh and root.exists():
        shutil.rmtree(root)
    videos, report = root / "videos", root / "report"
    for folder in (videos, report):
        folder.mkdir(parents=True, exist_ok=True)
    moto = _start_moto() if s3 else None
    base = f"s3://{BUCKET}" if s3 else str(root / "data")
    summary: dict[str, Any] = {"workdir": str(root), "storage": base, "plan": plan.__dict__, "seed": seed, "steps": {}}
    demo = _Demo(root, videos, report, base, plan, Steps(summary), s3, seed)
    try:
        demo.videos_to_frames()
        labeled = demo.label()
        model, history = demo.train(labeled)
        package = demo.convert(model)
        evaluation = demo.evaluate(package)
        device = demo.run_device(package)
        counting = _counting_figures(report, videos, demo.count(package))
        jsonl = report / "detections.jsonl"
        summary.update(_write_report(report, videos, history, evaluation, device, jsonl, counting))
    finally:
        if moto is not None:
            _stop_moto(*moto)
    summary["seconds"] = round(time.monotonic() - started, 1)
    (report / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    figures = summary["figures"]
    log_event(
        logger,
        "demo.done",
        mAP_at_0_5=figures["heldout_mAP@0.5"],
        loop_fps=figures["loop_fps"],
        seconds=summary["seconds"],
        report=str(report / "report.html"),
    )
    return summary


@dataclass
class _Demo:
    """The demo's stages, each a few named steps over the same folders and storage."""

    root: Path
    videos: Path
    report: Path
    base: str
    plan: Plan
    step: Steps
    s3: bool
    seed: int = 0

    @property
    def job(self) -> str:
        """The training job's name: a model of another seed is never reused for this one."""
        return "demo-job" if self.seed == 0 else f"demo-job-seed-{self.seed}"

    def videos_to_frames(self) -> None:
        from odshared.data.frames import extract_frames

        from .synth_video import SynthSpec, write_video

        for name, classes, seed in (*TRAIN_VIDEOS, HELD_OUT):
            spec = SynthSpec(name, classes, frames=self.plan.frames_per_video, seed=seed)
            self.step(
                f"synth-video {name}", str(self.videos / f"{name}.boxes.jsonl"), partial(write_video, spec, self.videos)
            )
        for name, _, _ in (*TRAIN_VIDEOS, HELD_OUT):
            preview = str(self.report / f"frames_{name}.png")
            frames = storage.join(self.base, "frames", name)
            video = str(self.videos / f"{name}.mp4")
            self.step(
                f"extract-frames {name}",
                preview,
                partial(extract_frames, video, frames, every=self.plan.every, preview=preview),
            )

    def label(self) -> str:
        """The labeling manifest, labeled by the Ground Truth stand-in; returns the output manifest."""
        from odshared.data.input_manifest import build_input_manifest

        from .local_labeling import label_from_known_boxes
        from .previews import preview_manifest, show_labels

        base, report = self.base, self.report
        manifest = storage.join(base, "manifests", "labeling.manifest")
        frames = [storage.join(base, "frames", name) for name, _, _ in TRAIN_VIDEOS]
        self.step(
            "make-manifest",
            manifest,
            lambda: build_input_manifest(frames, manifest, pattern="{color}_{object}_{n}"),
        )
        self.step(
            "preview-manifest",
            str(report / "manifest.png"),
            lambda: preview_manifest(manifest, str(report / "manifest.png")),
        )
        labeled = storage.join(base, "labels", "demo-labeling", "manifests", "output", "output.manifest")
        self.step(
            "label (Ground Truth stand-in)",
            labeled,
            lambda: label_from_known_boxes(
                manifest, str(self.videos), labeled, list(CLASSES), job_name="demo-labeling"
            ),
        )
        self.step(
            "show-labels",
            str(report / "labels" / "grid.png"),
            lambda: show_labels(labeled, str(report / "labels"), limit=48),
        )
        return labeled

    def train(self, labeled: str) -> tuple[str, list[dict[str, float]]]:
        """prepare-training then train-local; returns the model.tar.gz and the training history."""
        from odshared.data.dataprep import PrepareOptions, prepare_training

        from .train_local import PRESETS, train_local

        plan, prepared = self.plan, storage.join(self.base, "prepared")
        options = PrepareOptions(classes=CLASSES, flip=True, validation_fraction=0.1)
        self.step(
            "prepare-training",
            storage.join(prepared, "classes.json"),
            lambda: prepare_training([labeled], prepared, options),
        )
        model = storage.join(self.base, "training", self.job, "output", "model.tar.gz")
        hyper = {**PRESETS["cpu"], "epochs": plan.epochs, "lr_scheduler_step": plan.lr_step}
        training = self.step(
            "train-local",
            model,
            lambda: train_local(
                storage.join(prepared, "train.manifest"),
                storage.join(prepared, "validation.manifest"),
                model,
                hyper,
                classes=list(CLASSES),
                seed=self.seed,
                max_batches=plan.max_batches,
            ),
        )
        if training is not None:
            (self.report / "training.json").write_text(json.dumps(training.to_dict(), indent=2))
        return model, json.loads((self.report / "training.json").read_text())["history"]

    def convert(self, model: str) -> Path:
        """The converted package, as a local folder (downloaded when the demo runs against S3)."""
        from odshared.model.calibration import build_calibration
        from odshared.model.convert import convert

        package_uri = storage.join(self.base, "models", self.job)
        prepared = storage.join(self.base, "prepared")
        manifests = [storage.join(prepared, "validation.manifest"), storage.join(prepared, "train.manifest")]
        converted = self.step(
            "convert",  # FP32 and INT8, calibrated on the validation frames as the workflow does
            storage.join(package_uri, INT8_ONNX_FILE),  # a package from before INT8 is converted again
            lambda: convert(
                model, package_uri, list(CLASSES), calibration=lambda size: build_calibration(manifests, size)
            ),
        )
        if converted is not None:  # a new package: what was measured on the earlier one is measured again
            (self.report / "evaluation.json").unlink(missing_ok=True)
        return download_package(package_uri, self.root / "package") if self.s3 else Path(package_uri)

    def evaluate(self, package: Path) -> dict[str, Any]:
        """mAP on the held-out video, labeled from its known boxes."""
        from odshared.data.input_manifest import build_input_manifest

        from .evaluate import evaluate
        from .local_labeling import label_from_known_boxes

        base, held_name = self.base, HELD_OUT[0]
        held_manifest = storage.join(base, "manifests", f"{held_name}.manifest")
        held_labels = storage.join(base, "labels", "held-out", "output.manifest")
        self.step(
            "label held-out video",
            held_labels,
            lambda: (
                build_input_manifest([storage.join(base, "frames", held_name)], held_manifest),
                label_from_known_boxes(
                    held_manifest, str(self.videos), held_labels, list(CLASSES), job_name="held-out"
                ),
            ),
        )
        evaluation_path = self.report / "evaluation.json"
        self.step(
            "evaluate on the held-out video",
            str(evaluation_path),
            lambda: evaluate(str(package), held_labels, str(self.report), classes=list(CLASSES)),
        )
        result: dict[str, Any] = json.loads(evaluation_path.read_text())
        return result

    def count(self, package: Path) -> dict[str, Any]:
        """Tracking and counting on a held-out crossings video, against its true tracks."""
        from .synth_video import SynthSpec, write_video
        from .tracking_eval import evaluate_tracking

        name, classes, seed = COUNTING_VIDEO
        spec = SynthSpec(name, classes, frames=max(120, self.plan.frames_per_video), seed=seed, scenario="crossings")
        self.step(
            f"synth-video {name} (crossings)",
            str(self.videos / f"{name}.boxes.jsonl"),
            partial(write_video, spec, self.videos),
        )
        path = self.report / "counting.json"
        messages = str(self.report / "counting.jsonl")
        self.step(
            "count on the crossings video",
            str(path),
            lambda: path.write_text(
                json.dumps(
                    evaluate_tracking(
                        str(self.videos / f"{name}.mp4"), str(package), [COUNTING_LINE], messages_out=messages
                    ),
                    indent=2,
                )
            ),
        )
        result: dict[str, Any] = json.loads(path.read_text())
        return result

    def run_device(self, package: Path) -> dict[str, Any]:
        """Both Greengrass components packaged, installed and run on the held-out video."""
        from .packaging import package_components

        gg = self.root / "greengrass-components"
        self.step(
            "package-component",
            str(gg / "components.json"),
            lambda: package_components(str(package), str(gg), PREFIX, "1.0.0", "1.0.0"),
        )
        jsonl = self.report / "detections.jsonl"
        device = self.step(
            "run the inference component", str(jsonl), lambda: _run_component(self.root, gg, self.videos, jsonl)
        )
        if device is not None:
            (self.report / "device.json").write_text(json.dumps(device, indent=2))
        result: dict[str, Any] = json.loads((self.report / "device.json").read_text())
        return result


def _run_component(root: Path, gg: Path, videos: Path, jsonl: Path) -> dict[str, Any]:
    """Deploy both components into a Greengrass-like folder and run the recipe's Install and Run steps."""
    from .greengrass_local import LocalNucleus

    code, model = component_names(PREFIX)
    mqtt = _broker_reachable()
    config = {
        "Source": str(videos / f"{HELD_OUT[0]}.mp4"),
        "Publisher": "mqtt" if mqtt else "jsonl",
        "Jsonl": str(jsonl.with_suffix(".part")),
        "HealthInterval": "3600",
        "ScoreThreshold": "0.5",
    }
    nucleus = LocalNucleus(root / "greengrass", thing_name="demo-thing")
    nucleus.deploy(gg / "recipes", gg / "artifacts", {model: "1.0.0", code: "1.0.0"}, {code: config})
    # the demo machine already has every package the device needs: let the Install step reuse them
    env = {"ODEDGE_VENV_ARGS": "--system-site-packages", "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    installed = nucleus.install(code, env)
    if installed.returncode != 0:
        raise RuntimeError(f"the component's Install step failed:\n{installed.stderr[-3000:]}")
    process = nucleus.start(code, env, stderr=subprocess.PIPE, text=True)
    _, err = process.communicate(timeout=600)
    if process.returncode != 0:
        raise RuntimeError(f"the component's Run step exited {process.returncode}:\n{err[-3000:]}")
    jsonl.with_suffix(".part").replace(jsonl)
    return {"published_over_mqtt": mqtt, "thing": "demo-thing", "log_tail": err.splitlines()[-3:]}


def _counting_figures(report: Path, videos: Path, counting: dict[str, Any]) -> dict[str, Any]:
    """The counts against the truth, the tracking metrics, and a strip of annotated frames with the line."""
    from .report import detection_strip

    messages = [json.loads(line) for line in (report / "counting.jsonl").read_text().splitlines() if line.strip()]
    detections = [m["message"] for m in messages if m["topic"].endswith("/detections") and m["message"]["detections"]]
    strip = detection_strip(str(videos / f"{COUNTING_VIDEO[0]}.mp4"), detections, lines=[COUNTING_POINTS])
    (report / "counting_strip.png").write_bytes(strip)
    kept = ("counts", "mota", "idf1", "id_switches", "count_pairs_exact", "count_max_error")
    figures = {k: counting[k] for k in kept}
    for row in _ledger(report / "counting.jsonl", "net_balance"):  # odctl counts' net balance beside the count
        for way, column in (("in", "crossed_in"), ("out", "crossed_out")):
            pair = figures["counts"].get(row["line"], {}).get(way, {}).get(row["class"])
            if pair is not None:
                pair["ledger"] = row[column]
    return figures


def _ledger(messages: Path, name: str) -> list[dict[str, Any]]:
    """The crossings the device published, through one of the ledger's named queries (odctl counts --from)."""
    from datetime import UTC, datetime, timedelta

    from odshared.fleet.ledger import period_parameters

    from .ledger_local import run_query_files

    parameters = period_parameters(datetime(2000, 1, 1, tzinfo=UTC), datetime.now(UTC) + timedelta(days=1))
    return run_query_files(name, parameters, [messages])


def _headlines(figures: dict[str, Any]) -> list[Any]:
    """The figures a person reads first, each with what it is and its unit."""
    from .report import Headline

    counting = figures["counting"]
    return [
        Headline("mAP@0.5 on the held-out video, FP32", figures["heldout_mAP@0.5"]),
        Headline("mAP@0.5 on the held-out video, INT8", figures["heldout_mAP@0.5_int8"]),
        Headline("INT8 against FP32", figures["int8_mAP_change_points"], "mAP points"),
        Headline("Epochs trained", figures["training_epochs"]),
        Headline("Best validation mAP@0.5 while training", figures["best_validation_mAP"]),
        Headline("Inference loop speed", figures["loop_fps"], "frames/s"),
        Headline("Frames the inference component processed", figures["loop_frames"], "frames"),
        Headline("Messages with detections", figures["messages_with_detections"], "messages"),
        Headline("Published over MQTT (else to a JSON Lines file)", figures["published_over_mqtt"]),
        Headline("Tracking accuracy on the crossings video (MOTA)", counting["mota"]),
        Headline("Identity F1 (IDF1)", counting["idf1"]),
        Headline("Identity switches", counting["id_switches"]),
        Headline("Line, direction and class counts that are exact", 100 * counting["count_pairs_exact"], "%"),
        Headline("Largest count error", counting["count_max_error"], "crossings"),
    ]


def _report_figures(report: Path, history: list, evaluation: dict, figures: dict[str, Any]) -> Any:
    """The demo's figures as the report takes them (odctl.report.ReportFigures)."""
    from .report import ClassAP, Epoch, PeriodCount, Picture, ReportFigures, StageLatency

    int8 = evaluation["precisions"].get("int8", {}).get("per_class", {})
    per_minute = _ledger(report / "counting.jsonl", "crossings_by_minute")
    pictures = [
        *(Picture(f"frames_{n}.png", f"frames of {n} (contact sheet with timestamps)") for n, _, _ in TRAIN_VIDEOS),
        Picture(f"frames_{HELD_OUT[0]}.png", f"frames of {HELD_OUT[0]}, the held-out video"),
        Picture("manifest.png", "the labeling manifest's images"),
        Picture("labels/grid.png", "labels drawn on the images (Ground Truth output format)"),
        Picture("precision_recall.png", "precision/recall on the held-out video"),
        Picture("heldout_strip.png", "the inference component's detections on the held-out video"),
        Picture(
            "counting_strip.png", "tracking and counting on the crossings video: track ids, the counting line (red)"
        ),
    ]
    return ReportFigures(
        title="Edge object detector: offline demo report",
        summary="Video → frames → labeling manifest → labels → training data → trained SSD → converted models → "
        "Greengrass components → the inference loop on a video it never saw.",
        headlines=_headlines(figures),
        counts=figures["counting"]["counts"],
        counts_on="the crossings video",
        per_class=[
            ClassAP(name, v["ap"], v["ground_truth"], int8[name]["ap"] if name in int8 else None)
            for name, v in evaluation["per_class"].items()
        ],
        per_class_on="the held-out video",
        latency=[
            StageLatency(stage, p50, figures["loop_latency_ms_p95"].get(stage))
            for stage, p50 in figures["loop_latency_ms_p50"].items()
        ],
        training=[Epoch(int(h["epoch"]) + 1, h["mAP"], h["cross_entropy"], h["smooth_l1"]) for h in history],
        crossings=[
            PeriodCount(r["period"], r["direction"], int(r["crossings"]), r["line"], r["class"]) for r in per_minute
        ],
        crossings_period="minute",
        crossings_command=f"odctl counts --from {report / 'counting.jsonl'} --since 2000-01-01 --by minute",
        pictures=pictures,
        raw=figures,
    )


def _write_report(
    report: Path, videos: Path, history: list, evaluation: dict, device: dict, jsonl: Path, counting: dict[str, Any]
) -> dict[str, Any]:
    from .report import detection_strip, write_report

    messages = [json.loads(line) for line in jsonl.read_text().splitlines() if line.strip()]
    detections = [m["message"] for m in messages if m["topic"].endswith("/detections")]
    health = [m["message"] for m in messages if m["topic"].endswith("/health")]
    final = health[-1] if health else {}
    (report / "heldout_strip.png").write_bytes(detection_strip(str(videos / f"{HELD_OUT[0]}.mp4"), detections))
    latency = final.get("latency_ms", {})
    figures = {
        "heldout_mAP@0.5": round(evaluation["mAP"], 4),
        "heldout_AP_per_class": {k: v["ap"] for k, v in evaluation["per_class"].items()},
        "heldout_mAP@0.5_int8": round(evaluation["precisions"].get("int8", {"mAP": float("nan")})["mAP"], 4),
        "int8_mAP_change_points": round(100 * evaluation.get("int8_mAP_change", float("nan")), 2),
        "training_epochs": len(history),
        "best_validation_mAP": max((h["mAP"] for h in history), default=0.0),
        "loop_fps": final.get("fps", 0.0),
        "loop_frames": final.get("frames_processed", 0),
        "loop_latency_ms_p50": {k: v["p50"] for k, v in latency.items()},
        "loop_latency_ms_p95": {k: v["p95"] for k, v in latency.items()},
        "messages_with_detections": len(detections),
        "published_over_mqtt": device.get("published_over_mqtt", False),
        "counting": counting,
    }
    write_report(report, _report_figures(report, history, evaluation, figures))
    return {"figures": figures, "evaluation": {k: evaluation[k] for k in ("per_class", "mAP", "precisions")}}
