"""(MXNet environment) The SSD graphs have SageMaker's layout: resnet-50 equals the seed SageMaker graph."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.integration


def _describe(doc):
    nodes = doc["nodes"]
    return [
        (
            n["op"],
            n["name"],
            tuple(nodes[i[0]]["name"] for i in n["inputs"]),
            tuple(sorted((n.get("attrs") or {}).items())) if n["op"] != "null" else (),
        )
        for n in nodes
    ]


def test_resnet50_deploy_graph_equals_the_seed_sagemaker_graph(seed_dir):
    from odmxnet.ssd_model import build_training_symbol, deploy_heads, heads_of

    train = build_training_symbol("resnet-50", 2)
    deploy = json.loads(deploy_heads(*heads_of(train), force_suppress=True).tojson())
    seed = json.loads((seed_dir / "deploy_model_algo_1-symbol.json").read_text())
    assert _describe(deploy) == _describe(seed)


@pytest.mark.parametrize("network", ["tiny", "vgg-16", "resnet-50"])
def test_training_graph_layout(network):
    from odmxnet.ssd_model import build_training_symbol

    train = build_training_symbol(network, 3)
    assert train.list_outputs() == ["cls_prob_output", "loc_loss_output", "cls_label_output", "det_out_output"]
    ops = {n["name"]: n["op"] for n in json.loads(train.tojson())["nodes"]}
    assert ops["multibox_target"] == "_contrib_MultiBoxTarget" and ops["cls_prob"] == "SoftmaxOutput"
    assert ops["detection"] == "_contrib_MultiBoxDetection" and ops["det_out"] == "MakeLoss"
    assert ops["multibox_loc_pred"] == "Concat" and ops["multibox_cls_pred"] == "transpose"
    assert ops["multibox_anchors"] == "Reshape"
    assert set(train.list_arguments()) >= {"data", "label"}
    _, shapes, _ = train.get_internals()["multibox_cls_pred_output"].infer_shape(data=(1, 3, 300, 300))
    assert shapes[0][1] == 4
