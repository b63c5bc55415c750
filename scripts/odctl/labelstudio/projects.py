"""``odctl label-studio push`` and ``pull``: a manifest into a project's tasks, its annotations back out as a
Ground Truth bounding-box output manifest."""

from __future__ import annotations

import logging
import os
import re
import shlex
import urllib.parse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from odshared.core import storage
from odshared.core.errors import InvalidLine, OdError
from odshared.core.jsonl import check_invalid, iter_records, write_lines
from odshared.core.log import log_event
from odshared.data.contact_sheet import decode
from odshared.data.groundtruth import DEFAULT_LABEL_ATTRIBUTE, LabeledImage, to_output_line

from .client import LabelStudio, LabelStudioRefused
from .formats import SOURCE_KEY, Rejected, config_classes, label_config, labeled_image, latest_annotation, task
from .server import LabelStudioError

logger = logging.getLogger(__name__)
IMPORT_BATCH = 500
SERVE = "odctl label-studio serve"


def read_manifest(manifest: str) -> list[dict[str, Any]]:
    """The manifest's lines, each with a source-ref (a line without one stops the push, naming it)."""
    records, invalid, seen = [], [], set()
    for number, raw, obj in iter_records(manifest):
        if isinstance(obj, InvalidLine):
            invalid.append(obj)
        elif not isinstance(obj.get(SOURCE_KEY), str) or not obj[SOURCE_KEY]:
            invalid.append(InvalidLine(manifest, number, f"no {SOURCE_KEY!r}: each line names its image", raw))
        elif obj[SOURCE_KEY] not in seen:
            seen.add(obj[SOURCE_KEY])
            records.append(obj)
    check_invalid(invalid, skip_invalid=False)
    return records


def open_project(
    client: LabelStudio, title: str, classes: Sequence[str] | None
) -> tuple[dict[str, Any], list[str], bool]:
    """The project titled ``title``, created when missing (the flag says so, for undoing a failed push); its
    classes must be the ones asked for."""
    project = client.project(title)
    if project is None:
        if not classes:
            raise LabelStudioError(f"no project {title!r} in Label Studio at {client.url}: push it with --classes")
        return client.create_project(title, label_config(classes)), list(classes), True
    existing = config_classes(project.get("label_config", ""))
    if classes and list(classes) != existing:
        raise LabelStudioError(
            f"project {title!r} labels {existing}, not {list(classes)}: pass the same --classes in the same order, "
            "or push to a new --project"
        )
    return project, existing, False


def check_frames_under_root(manifest: str, refs: Sequence[str], files_root: str, serve: str = SERVE) -> None:
    """Every local frame's folder must lie strictly below Label Studio's local files root: it refuses any other
    folder, the root itself included, when push connects it. All frames are checked before anything is created,
    and the one line says which folder, which root, and the ``serve`` command that serves them."""
    root = Path(files_root).resolve()
    folders = sorted({Path(ref).resolve().parent for ref in refs if not storage.is_s3(ref)})
    outside = [folder for folder in folders if root not in folder.parents]
    if not outside:
        return
    above = shlex.quote(os.path.commonpath([folder.parent for folder in folders]))
    first, more = outside[0], f" (and {len(outside) - 1} more)" if len(outside) > 1 else ""
    if first == root:
        where = "is Label Studio's local files root itself, which it does not serve (only folders below it)"
    else:
        where = f"is outside Label Studio's local files root {root}"
    raise LabelStudioError(
        f"{manifest}: frames folder {first}{more} {where}: restart Label Studio with "
        f"`{serve} --files-root {above}`, or push frames from s3://"
    )


def _refused_root(reasons: str) -> str | None:
    """The files root Label Studio names when it refuses a local-files storage (its setting, in its message)."""
    found = re.search(r'LOCAL_FILES_DOCUMENT_ROOT="([^"]*)"', reasons)
    return found.group(1) if found else None


def push(
    client: LabelStudio,
    manifest: str,
    title: str,
    classes: Sequence[str],
    files_root: str,
    pre_label: str | None = None,
    min_score: float = 0.5,
    serve: str = SERVE,
) -> dict[str, Any]:
    """Import the manifest's images not yet in the project; with ``pre_label``, the model's boxes as predictions.
    ``files_root`` is the server's local files root as odctl knows it; ``serve``, the command that restarts it."""
    records = read_manifest(manifest)
    refs = [record[SOURCE_KEY] for record in records]
    check_frames_under_root(manifest, refs, files_root, serve)
    project, _, created = open_project(client, title, classes)
    present = {t["data"].get(SOURCE_KEY) for t in client.tasks(project["id"])}
    new = [record for record in records if record[SOURCE_KEY] not in present]
    try:
        _connect_storages(client, project["id"], [r[SOURCE_KEY] for r in new])
    except LabelStudioRefused as exc:  # no task sent yet: a root other than odctl was told shows in its reasons
        if created:
            client.delete_project(project["id"])
        server_root = _refused_root(exc.reasons)
        if server_root is not None:
            check_frames_under_root(manifest, refs, server_root, serve)
        raise
    tasks = [task(record, image_url(record[SOURCE_KEY], files_root)) for record in new]
    if pre_label and tasks:
        from .prelabel import add_predictions

        version = add_predictions(tasks, pre_label, min_score)
    for start in range(0, len(tasks), IMPORT_BATCH):
        client.import_tasks(project["id"], tasks[start : start + IMPORT_BATCH])
    if pre_label and tasks:  # the labeling page starts from this model's boxes: labelers correct, not draw
        client.update_project(project["id"], {"model_version": version, "show_collab_predictions": True})
    result = {
        "project": project["id"],
        "url": f"{client.url}/projects/{project['id']}/data",
        "imported": len(tasks),
        "already_in_project": len(records) - len(new),
        "predictions": sum(1 for t in tasks if t.get("predictions")),
    }
    log_event(logger, "label_studio.pushed", manifest=manifest, **result)
    return result


def image_url(source_ref: str, files_root: str) -> str:
    """What the labeling page loads: s3:// as it is (Label Studio presigns it), local files through local-files."""
    if storage.is_s3(source_ref):
        return source_ref
    relative = _under_root(source_ref, files_root)
    return "/data/local-files/?d=" + urllib.parse.quote(relative)


def _under_root(path: str, files_root: str) -> str:
    absolute, root = Path(path).resolve(), Path(files_root).resolve()
    try:
        return str(absolute.relative_to(root))
    except ValueError:
        raise LabelStudioError(
            f"{path} is not under Label Studio's local files root {root}: serve with --files-root at or above "
            "the frames (or push frames from s3://)"
        ) from None


def _connect_storages(client: LabelStudio, project_id: int, refs: Sequence[str]) -> None:
    """A local-files storage per frames folder and an S3 storage per bucket, so Label Studio serves the images."""
    local = {str(Path(ref).resolve().parent) for ref in refs if not storage.is_s3(ref)}
    have_local = {s.get("path") for s in client.storages(project_id, "localfiles")}
    for folder in sorted(local - have_local):
        client.add_storage(
            "localfiles", {"project": project_id, "path": folder, "title": folder, "use_blob_urls": False}
        )
    buckets = {storage.split_s3(ref)[0] for ref in refs if storage.is_s3(ref)}
    have_buckets = {s.get("bucket") for s in client.storages(project_id, "s3")}
    for bucket in sorted(buckets - have_buckets):
        settings: dict[str, Any] = {"project": project_id, "bucket": bucket, "title": bucket, "presign": True}
        settings["presign_ttl"] = 60  # minutes
        if os.environ.get("AWS_ENDPOINT_URL"):  # an S3-compatible endpoint (the tests' moto server)
            settings["s3_endpoint"] = os.environ["AWS_ENDPOINT_URL"]
        region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
        if region:
            settings["region_name"] = region
        client.add_storage("s3", settings)


def pull(
    client: LabelStudio,
    title: str,
    out: str,
    label_attribute: str = DEFAULT_LABEL_ATTRIBUTE,
    job_name: str | None = None,
    skip_invalid: bool = False,
    allow_empty: bool = False,
) -> dict[str, Any]:
    """Write the labeled tasks as a Ground Truth output manifest; unlabeled tasks are counted, not written. A project
    with nothing labeled writes nothing unless ``allow_empty`` (an empty manifest would train on nothing)."""
    project, classes, _ = open_project(client, title, None)
    images: list[LabeledImage] = []
    rejected: list[Rejected] = []
    unlabeled = 0
    for task_json in sorted(client.export(project["id"]), key=lambda t: int(t["id"])):
        annotation = latest_annotation(task_json)
        if annotation is None:
            unlabeled += 1
            continue
        has_boxes = any(r.get("type") == "rectanglelabels" for r in annotation.get("result", []))
        size = None if has_boxes else _image_size(task_json["data"].get(SOURCE_KEY))
        converted = labeled_image(task_json, annotation, classes, size)
        (rejected if isinstance(converted, Rejected) else images).append(converted)  # type: ignore[arg-type]
    if not images and not rejected and not allow_empty:
        raise OdError(
            f"project {title!r}: nothing labeled yet ({unlabeled} task(s) unlabeled), {out} not written: label "
            "some tasks in Label Studio and pull again, or pass --allow-empty"
        )
    job = f"labeling-job/{job_name or _slug(title)}"
    written = write_lines(out, (to_output_line(image, label_attribute, job) for image in images))
    rejected_path = storage.join(storage.parent(out), "rejected.jsonl")
    if rejected:
        write_lines(rejected_path, ({"task": r.task, "reason": r.reason} for r in rejected))
    result: dict[str, Any] = {"manifest": out, "written": written, "unlabeled": unlabeled, "rejected": len(rejected)}
    log_event(logger, "label_studio.pulled", project=title, **result)
    if rejected and not skip_invalid:
        first = rejected[0]
        raise OdError(
            f"{len(rejected)} labeled task(s) cannot become Ground Truth boxes (task {first.task}: {first.reason}); "
            f"they are listed in {rejected_path}, the other {written} written to {out}: fix them in Label Studio "
            "and pull again, or pass --skip-invalid"
        )
    return {**result, **({"rejected_list": rejected_path} if rejected else {})}


def _image_size(source_ref: str | None) -> tuple[int, int] | None:
    """An image's width and height, read from the image itself (an annotation with no boxes carries none)."""
    if not source_ref:
        return None
    try:
        image = decode(storage.read_bytes(source_ref))
    except OdError:
        return None
    return None if image is None else (int(image.shape[1]), int(image.shape[0]))


def _slug(title: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in title.lower()).strip("-") or "label-studio"
