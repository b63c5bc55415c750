"""Conversion of SageMaker-layout artifacts, checked against real MXNet and ONNX Runtime."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from odctl.synth_video import SynthSpec, render
from odshared.model import mxnet_params
from odshared.model.anchors import VARIANCES
from odshared.model.convert import ConversionError, convert, convert_artifact, read_artifact
from odshared.model.mxnet_symbol import Symbol, UnsupportedOperatorError
from tests.reference_models import (
    build_resnet50_from_seed,
    build_vgg16,
    match_detections,
    mxnet_deploy_graph,
    mxnet_forward,
    mxnet_multibox_detection,
    preprocess,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
def resnet(seed_dir, tmp_path_factory):
    ref = build_resnet50_from_seed(seed_dir, tmp_path_factory.mktemp("resnet") / "model.tar.gz")
    return ref, convert_artifact(read_artifact(ref.tarball), ["blue box", "yellow box"])


@pytest.fixture(scope="session")
def vgg(tmp_path_factory):
    ref = build_vgg16(tmp_path_factory.mktemp("vgg") / "model.tar.gz")
    return ref, convert_artifact(read_artifact(ref.tarball), ["blue box", "yellow box"])


def _frames(seed_dir, size):
    images = [
        preprocess(seed_dir / "blue_box_1_000133.jpg", size),
        preprocess(seed_dir / "yellow_box_1_000086.jpg", size),
    ]
    frame, _ = list(render(SynthSpec("g", ("blue box", "yellow box"), frames=40, seed=9)))[30]
    images.append(preprocess(frame, size))
    return images


def test_params_round_trip_is_byte_identical(resnet):
    ref, converted = resnet
    parsed = mxnet_params.loads(ref.params_bytes)
    assert mxnet_params.dumps(parsed) == ref.params_bytes
    # nothing is pruned from a ResNet checkpoint: the deploy params are MXNet's bytes, unchanged
    assert converted.files["deploy_model_algo_1-0000.params"] == ref.params_bytes


def test_deploy_graph_loads_in_mxnet_without_training_nodes(resnet, seed_dir):
    _, converted = resnet
    deploy_json = converted.files["deploy_model_algo_1-symbol.json"].decode()
    # MXNet binds the graph with data and the params alone (a leftover label argument would fail the bind), and
    # its one output is the detections
    [outputs] = mxnet_forward(
        deploy_json, converted.files["deploy_model_algo_1-0000.params"], _frames(seed_dir, 512)[:1]
    )
    assert [o.shape for o in outputs] == [(1, 6132, 6)]
    nodes = json.loads(deploy_json)["nodes"]
    assert not {n["name"] for n in nodes} & {"multibox_target", "loc_loss", "cls_label", "det_out", "label"}
    detection = next(n for n in nodes if n["name"] == "detection")
    assert detection["attrs"]["nms_threshold"] == "0.45" and detection["attrs"]["force_suppress"] == "False"
    assert detection["attrs"]["nms_topk"] == "400"


@pytest.mark.parametrize("which", ["resnet", "vgg"])
def test_converted_deploy_graph_equals_mxnets_own(which, request, seed_dir):
    ref, converted = request.getfixturevalue(which)
    ours = converted.files["deploy_model_algo_1-symbol.json"].decode()
    params = converted.files["deploy_model_algo_1-0000.params"]
    images = _frames(seed_dir, ref.image_size)[:2]
    got = mxnet_forward(ours, params, images)
    want = mxnet_forward(mxnet_deploy_graph(ref), ref.params_bytes, images)
    for ours_out, want_out in zip(got, want, strict=True):
        assert np.array_equal(ours_out[0], want_out[0])


@pytest.mark.parametrize("which", ["resnet", "vgg"])
def test_onnx_runtime_matches_mxnet(which, request, seed_dir):
    """CNN outputs agree closely; the detection block, fed the same inputs, agrees row for row; end to end the
    valid detections match after NMS (boxes and scores within 1e-4).

    The class head is compared before its softmax: random weights give logits ~1e4, where the softmax is a step
    and float32 rounding alone moves probabilities by ~2e-3 (ONNX Runtime 1.20 and 1.31 both do), while the
    logits agree to ~3e-6 of their scale."""
    from odshared.model.onnx import export_onnx

    ref, converted = request.getfixturevalue(which)
    deploy_json = converted.files["deploy_model_algo_1-symbol.json"].decode()
    params_bytes = converted.files["deploy_model_algo_1-0000.params"]
    args, aux = mxnet_params.split_checkpoint(mxnet_params.loads(params_bytes))
    debug = export_onnx(
        Symbol.loads(deploy_json),
        {**args, **aux},
        ref.image_size,
        ["a", "b"],
        extra_outputs=("cls_prob", "multibox_loc_pred", "multibox_cls_pred"),
    )
    session = ort.InferenceSession(debug, providers=["CPUExecutionProvider"])
    final = ort.InferenceSession(converted.files["model.onnx"], providers=["CPUExecutionProvider"])
    images = _frames(seed_dir, ref.image_size)
    ours = [session.run(None, {"data": image}) for image in images]
    theirs = mxnet_forward(
        deploy_json,
        params_bytes,
        images,
        ("detection", "cls_prob", "multibox_loc_pred", "multibox_anchors", "multibox_cls_pred"),
    )
    # the detection block alone: MXNet's operator on ONNX Runtime's own inputs gives the same rows
    same_inputs = mxnet_multibox_detection(
        [(cls_prob, loc, mx_out[3]) for (_, cls_prob, loc, _), mx_out in zip(ours, theirs, strict=True)],
        nms_threshold=ref.nms_threshold,
        force_suppress=False,
        nms_topk=ref.nms_topk,
        variances=list(VARIANCES),
    )
    for image, (det, _, loc, logits), (mx_det, _, mx_loc, _, mx_logits), alone in zip(
        images, ours, theirs, same_inputs, strict=True
    ):
        assert np.abs(logits - mx_logits).max() < 1e-4 * max(1.0, np.abs(mx_logits).max())
        assert np.abs(loc - mx_loc).max() < 1e-3 * max(1.0, np.abs(mx_loc).max())
        valid = alone[0][:, 0] >= 0
        assert np.abs(det[0][valid] - alone[0][valid]).max() < 1e-5
        assert np.array_equal(det[0][:, 0] >= 0, valid)
        # end to end: near-tied scores (random weights) may swap order, so rows are matched, not zipped
        matched, expected, actual = match_detections(mx_det[0], det[0])
        assert expected > 0 and matched >= 0.97 * expected and abs(actual - expected) <= 0.03 * expected
        assert np.array_equal(final.run(None, {"data": image})[0], det)


def test_force_suppress_and_threshold_overrides(resnet, seed_dir):
    ref, _ = resnet
    converted = convert_artifact(
        read_artifact(ref.tarball), ["a", "b"], force_suppress=True, threshold=0.3, nms_threshold=0.3
    )
    image = _frames(seed_dir, 512)[0]
    ours = ort.InferenceSession(converted.files["model.onnx"], providers=["CPUExecutionProvider"]).run(
        None, {"data": image}
    )[0][0]
    deploy_json = converted.files["deploy_model_algo_1-symbol.json"].decode()
    [heads] = mxnet_forward(
        deploy_json, ref.params_bytes, [image], ("cls_prob", "multibox_loc_pred", "multibox_anchors")
    )
    [want] = mxnet_multibox_detection(
        [tuple(heads)], nms_threshold=0.3, force_suppress=True, threshold=0.3, nms_topk=400
    )
    want = want[0]
    matched, expected, actual = match_detections(want, ours)
    assert expected == actual == matched
    assert ours[ours[:, 0] >= 0][:, 1].min() >= 0.3


def test_package_metadata(resnet):
    _, converted = resnet
    model = onnx.load_from_string(converted.files["model.onnx"])
    assert model.opset_import[0].version >= 17
    assert [i.name for i in model.graph.input] == ["data"]
    assert model.graph.output[0].name == "detections"
    meta = {p.key: p.value for p in model.metadata_props}
    assert json.loads(meta["classes"]) == ["blue box", "yellow box"] and meta["input_size"] == "512"
    manifest = json.loads(converted.files["model.json"])
    assert manifest["classes"] == ["blue box", "yellow box"] and manifest["output"]["shape"] == [1, 6132, 6]
    assert manifest["detection"]["nms_threshold"] == 0.45 and manifest["detection"]["nms_topk"] == 400
    sums = dict(reversed(line.split("  ")) for line in converted.files["SHA256SUMS"].decode().splitlines())
    for name in ("model.onnx", "deploy_model_algo_1-symbol.json", "deploy_model_algo_1-0000.params", "model.json"):
        assert sums[name] == hashlib.sha256(converted.files[name]).hexdigest()


def test_convert_writes_package_and_is_idempotent(resnet, tmp_path):
    ref, _ = resnet
    first = convert(str(ref.tarball), str(tmp_path / "pkg"), ["blue box", "yellow box"])
    assert not first["unchanged"]
    assert sorted(p.name for p in (tmp_path / "pkg").iterdir()) == sorted(first["files"])
    mtimes = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "pkg").iterdir()}
    again = convert(str(ref.tarball), str(tmp_path / "pkg"), ["blue box", "yellow box"])
    assert again["unchanged"]
    assert {p.name: p.stat().st_mtime_ns for p in (tmp_path / "pkg").iterdir()} == mtimes


# --- bad input: each a clear error -------------------------------------------------------------------------


def _retar(ref, tmp_path, drop=None, replace=None):
    import tarfile

    from odshared.model.convert import make_tarball

    members = {}
    with tarfile.open(ref.tarball) as archive:
        for member in archive.getmembers():
            members[member.name] = archive.extractfile(member).read()
    for name in drop or ():
        members.pop(name)
    members.update(replace or {})
    path = tmp_path / "bad.tar.gz"
    path.write_bytes(make_tarball(members))
    return path


@pytest.mark.parametrize("missing", ["model_algo_1-symbol.json", "model_algo_1-0000.params", "hyperparams.json"])
def test_tarball_without_a_file(resnet, tmp_path, missing):
    ref, _ = resnet
    pattern = {
        "model_algo_1-symbol.json": r"\*-symbol.json",
        "model_algo_1-0000.params": r"\*.params",
        "hyperparams.json": "hyperparams.json",
    }[missing]
    with pytest.raises(ConversionError, match=f"bad.tar.gz: the archive lacks {pattern}"):
        read_artifact(_retar(ref, tmp_path, drop=[missing]))


def test_truncated_archive(resnet, tmp_path):
    ref, _ = resnet
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(ref.tarball.read_bytes()[:4_000_000])
    with pytest.raises(ConversionError, match="cut.tar.gz"):
        convert_artifact(read_artifact(cut))


def test_truncated_and_corrupt_params(resnet, tmp_path):
    ref, _ = resnet
    truncated = _retar(ref, tmp_path, replace={"model_algo_1-0000.params": ref.params_bytes[:-1000]})
    with pytest.raises(mxnet_params.ParamsError, match=r"model_algo_1-0000.params: truncated while reading"):
        convert_artifact(read_artifact(truncated))
    corrupt = _retar(ref, tmp_path, replace={"model_algo_1-0000.params": b"\x00" * 64})
    with pytest.raises(mxnet_params.ParamsError, match="not an MXNet params file"):
        convert_artifact(read_artifact(corrupt))


def test_unknown_operator_names_operator_and_node(resnet, tmp_path):
    ref, _ = resnet
    doc = json.loads(ref.train_json)
    node = next(n for n in doc["nodes"] if n["name"] == "relu0")
    node["op"] = "FancyActivation"
    bad = _retar(ref, tmp_path, replace={"model_algo_1-symbol.json": json.dumps(doc).encode()})
    with pytest.raises(
        UnsupportedOperatorError, match="operator 'FancyActivation' \\(node 'relu0'\\) is not supported"
    ):
        convert_artifact(read_artifact(bad))


def test_hyperparams_that_contradict_the_graph(seed_dir, resnet, tmp_path):
    """The seed's own hyperparams.json says num_classes=4, but its graph has a 2-class head."""
    ref, _ = resnet
    bad = _retar(ref, tmp_path, replace={"hyperparams.json": (seed_dir / "hyperparams.json").read_bytes()})
    with pytest.raises(ConversionError, match="num_classes=4 but the class head .* predicts 2 classes"):
        convert_artifact(read_artifact(bad))


def test_class_names_must_match_the_class_count(resnet):
    ref, _ = resnet
    with pytest.raises(ConversionError, match=r"3 class names given .* but the model has 2 classes"):
        convert_artifact(read_artifact(ref.tarball), ["a", "b", "c"])


def test_graph_without_ssd_heads(resnet, tmp_path):
    ref, _ = resnet
    doc = json.loads(ref.train_json)
    for n in doc["nodes"]:
        if n["name"] == "multibox_anchors":
            n["name"] = "anchors_renamed"
    bad = _retar(ref, tmp_path, replace={"model_algo_1-symbol.json": json.dumps(doc).encode()})
    with pytest.raises(Exception, match="no node multibox_anchors"):
        convert_artifact(read_artifact(bad))


def test_the_device_reads_the_manifest_the_converter_writes():
    from odedge.model import MODEL_JSON as DEVICE_MODEL_JSON
    from odshared.model.package import MODEL_JSON

    assert DEVICE_MODEL_JSON == MODEL_JSON
