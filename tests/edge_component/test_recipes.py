"""Recipes and packages: required keys, placeholders that resolve, and lifecycle steps that really run in a
Greengrass-like work folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

from odctl.greengrass_local import VARIABLE, LocalNucleus
from odctl.packaging import EDGE, package_components
from odshared.core.archives import edge_code_digest
from odshared.greengrass.recipes import RecipeError, check_prefix, render_recipe
from tests.recipe_schema import recipe_errors

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def packaged(scene, tmp_path_factory):
    out = tmp_path_factory.mktemp("gg")
    result = package_components(
        str(scene["package"]), str(out), "com.acme.cam", "1.2.3", "2.0.0", "s3://acme-artifacts/components", "acme-data"
    )
    return out, result


@pytest.fixture(scope="module")
def synthesized_recipe(tmp_path_factory) -> str:
    """The inference recipe the CDK app inlines, resolved as CloudFormation would."""
    from tests.infra.conftest import synth
    from tests.infra.template_values import Deployment

    _, template = synth(tmp_path_factory.mktemp("cdk"))
    deployment = Deployment(template)
    (component,) = deployment.resources("AWS::GreengrassV2::ComponentVersion").values()
    return deployment.resolve(component["Properties"]["InlineRecipe"])


def _recipes(out):
    return {path.name: yaml.safe_load(path.read_text()) for path in (out / "recipes").iterdir()}


def test_layout_matches_greengrass_cli(packaged):
    out, result = packaged
    assert sorted(p.name for p in (out / "recipes").iterdir()) == [
        "com.acme.cam.ObjectDetection-1.2.3.yaml",
        "com.acme.cam.ObjectDetection.Model-2.0.0.yaml",
    ]
    code = out / "artifacts/com.acme.cam.ObjectDetection/1.2.3/odedge.zip"
    model = out / "artifacts/com.acme.cam.ObjectDetection.Model/2.0.0/model.zip"
    names = set(zipfile.ZipFile(code).namelist())
    assert {"odedge/__main__.py", "odedge/loop.py", "requirements.txt", "requirements-mxnet.txt"} <= names
    assert {"model/model.onnx", "model/model.json", "model/SHA256SUMS"} <= set(zipfile.ZipFile(model).namelist())
    assert '--merge "com.acme.cam.ObjectDetection=1.2.3"' in result["deploy_command"]
    assert f"--recipeDir {out.resolve() / 'recipes'} " in result["deploy_command"]  # works from any folder


def test_recipes_have_the_required_keys(packaged):
    out, _ = packaged
    recipes = _recipes(out)
    code = recipes["com.acme.cam.ObjectDetection-1.2.3.yaml"]
    model = recipes["com.acme.cam.ObjectDetection.Model-2.0.0.yaml"]
    for recipe in (code, model):
        assert recipe["RecipeFormatVersion"] == "2020-01-25"
        assert {"ComponentName", "ComponentVersion", "ComponentPublisher", "Manifests"} <= set(recipe)
        assert "${" not in json.dumps(recipe)  # every release placeholder was filled
    assert code["ComponentDependencies"]["com.acme.cam.ObjectDetection.Model"]["DependencyType"] == "HARD"
    nucleus = code["ComponentDependencies"]["aws.greengrass.Nucleus"]
    assert nucleus["VersionRequirement"] == ">=2.6.0 <3.0.0" and nucleus["DependencyType"] == "SOFT"
    config = code["ComponentConfiguration"]["DefaultConfiguration"]
    assert all(isinstance(v, str) for k, v in config.items() if k not in ("accessControl", "SystemResourceLimits"))
    assert config["UploadBucket"] == "acme-data"
    assert set(config["SystemResourceLimits"]) == {"memory", "cpus"}
    policies = config["accessControl"]["aws.greengrass.ipc.mqttproxy"]
    published = policies["com.acme.cam.ObjectDetection:mqttproxy:1"]
    assert published["operations"] == ["aws.greengrass#PublishToIoTCore"]
    # MQTT wildcards: {iot:thingName} in configuration is not interpolated on a default nucleus; each device is
    # held to its own topics by the stack's AWS IoT policy
    assert published["resources"] == ["od/+/detections", "od/+/health", "od/+/results", "od/+/counts"]
    assert "{iot:thingName}" not in json.dumps(config["accessControl"])
    lifecycle = code["Manifests"][0]["Lifecycle"]
    assert lifecycle["Install"]["Timeout"] == 900 and "Run" in lifecycle
    assert code["Manifests"][0]["Artifacts"][0]["URI"] == (
        f"s3://acme-artifacts/components/com.acme.cam.ObjectDetection/1.2.3/{edge_code_digest(EDGE)}/odedge.zip"
    )
    assert model["Manifests"][0]["Artifacts"][0]["Permission"]["Read"] == "ALL"
    # every {configuration:/X} the Run step reads exists in the default configuration of the component it names
    # (its own, or the model's: {PREFIX.ObjectDetection.Model:configuration:/ComponentVersion})
    defaults = {
        "": config,
        "com.acme.cam.ObjectDetection.Model:": model["ComponentConfiguration"]["DefaultConfiguration"],
    }
    for match in VARIABLE.finditer(lifecycle["Run"]["Script"]):
        if match.group(3):
            assert match.group(3).strip("/") in defaults[match.group(1) or ""], match.group(0)


@pytest.mark.slow
def test_install_and_run_steps_work_in_a_greengrass_like_folder(packaged, scene, tmp_path):
    out, _ = packaged
    nucleus = LocalNucleus(tmp_path / "greengrass", thing_name="cam-7")
    nucleus.deploy(
        out / "recipes",
        out / "artifacts",
        {"com.acme.cam.ObjectDetection.Model": "2.0.0", "com.acme.cam.ObjectDetection": "1.2.3"},
        {
            "com.acme.cam.ObjectDetection": {
                "Source": str(scene["video"]),
                "Publisher": "jsonl",
                "Jsonl": str(tmp_path / "out.jsonl"),
                "HealthInterval": "3600",
                # a quote in a name: the JSON reaches odedge through Setenv, not through the shell's words
                "Lines": json.dumps([{"name": "Bob's door", "points": [[0.5, 0], [0.5, 1]], "in": "left-to-right"}]),
            }
        },
    )
    # the device image already has the packages: reuse them instead of downloading (see the recipe's Install)
    env = {
        "ODEDGE_VENV_ARGS": "--system-site-packages",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    installed = nucleus.install("com.acme.cam.ObjectDetection", env)
    assert installed.returncode == 0, installed.stderr[-2000:]
    stamp = (tmp_path / "greengrass/work/com.acme.cam.ObjectDetection/venv/requirements.sha256").read_text()
    assert stamp.rstrip().endswith("/odedge/requirements.txt")  # Backend onnx: not the MXNet stack
    again = nucleus.install("com.acme.cam.ObjectDetection", env)  # re-run at nucleus start: skipped
    assert again.returncode == 0 and "pip" not in again.stderr
    process = nucleus.start("com.acme.cam.ObjectDetection", env, stderr=subprocess.PIPE, text=True)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 0, err[-2000:]
    messages = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert messages and all(m["topic"].startswith("od/cam-7/") for m in messages)
    assert any(m["message"].get("detections") for m in messages)
    health = [m["message"] for m in messages if m["topic"] == "od/cam-7/health"]
    assert "Bob's door" in health[-1]["counts"]["lines"]


def test_recipes_pass_the_greengrass_recipe_schema(packaged, synthesized_recipe):
    """Both recipes as package-component renders them, and the inference recipe as the CDK app inlines it."""
    out, _ = packaged
    for path in sorted((out / "recipes").iterdir()):
        assert recipe_errors(path.read_text()) == [], path.name
    assert recipe_errors(synthesized_recipe) == []
    assert recipe_errors({"RecipeFormatVersion": "2020-01-25", "ComponentName": "x"})  # the schema does bite


def test_changed_device_code_needs_a_new_component_version(tmp_path):
    """A released version's artifact is never replaced: code whose digest differs from the one recorded for the
    configured version stops synthesis with the key and what to do."""
    from infra.config import ConfigError
    from infra.edge import RELEASES, check_release

    recorded = json.loads(RELEASES.read_text())
    digest = edge_code_digest(EDGE)
    assert digest in recorded.values(), "edge code changed: add a new componentVersion to edge_component/releases.json"
    releases = tmp_path / "releases.json"
    releases.write_text(json.dumps({"1.0.0": "0123456789abcdef"}))
    with pytest.raises(ConfigError, match="edge-od:componentVersion: the device code changed since 1.0.0"):
        check_release("1.0.0", digest, releases)
    check_release("1.0.1", digest, releases)  # a new version is free to carry the new code


def test_render_errors():
    with pytest.raises(RecipeError, match=r"placeholders without a value: \['VERSION'\]"):
        render_recipe("ComponentVersion: ${VERSION}", {})
    with pytest.raises(RecipeError, match="not aws.greengrass"):
        check_prefix("aws.greengrass.Mine")
    with pytest.raises(RecipeError, match="semver"):
        package_components("unused", "unused", "com.example", "1.0")
