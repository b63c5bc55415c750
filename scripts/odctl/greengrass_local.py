"""A Greengrass-like runner for packaged components: unpacks artifacts, resolves recipe variables and runs the
Install and Run lifecycle steps as the nucleus would (the demo and the recipe tests use it; no nucleus here).

Layout under the root mirrors /greengrass/v2: packages/artifacts/<name>/<version>,
packages/artifacts-unarchived/<name>/<version>/<zip stem>, work/<name>.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

VARIABLE = re.compile(
    r"\{([A-Za-z0-9._-]+:)?(artifacts:path|artifacts:decompressedPath|work:path|kernel:rootPath|"
    r"iot:thingName|configuration:(/[^}]*))\}"
)


class LocalGreengrassError(RuntimeError):
    pass


@dataclass
class LocalComponent:
    name: str
    version: str
    recipe: dict[str, Any]
    artifacts: Path
    unarchived: Path
    work: Path
    configuration: dict[str, Any] = field(default_factory=dict)


def _pointer(config: dict[str, Any], pointer: str) -> str:
    value: Any = config
    for part in pointer.strip("/").split("/"):
        if not isinstance(value, dict) or part not in value:
            raise LocalGreengrassError(f"configuration pointer {pointer} does not resolve")
        value = value[part]
    return value if isinstance(value, str) else json.dumps(value)


class LocalNucleus:
    def __init__(self, root: str | Path, thing_name: str = "local-thing") -> None:
        self.root = Path(root)
        self.thing_name = thing_name
        self.components: dict[str, LocalComponent] = {}

    def deploy(
        self,
        recipe_dir: str | Path,
        artifact_dir: str | Path,
        merge: dict[str, str],
        configuration: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        """Like ``greengrass-cli deployment create --merge name=version``: place artifacts, merge config."""
        for name, version in merge.items():
            recipe_path = Path(recipe_dir) / f"{name}-{version}.yaml"
            recipe = yaml.safe_load(recipe_path.read_text())
            manifest = self._manifest(recipe)
            source = Path(artifact_dir) / name / version
            component = LocalComponent(
                name,
                version,
                recipe,
                self.root / "packages/artifacts" / name / version,
                self.root / "packages/artifacts-unarchived" / name / version,
                self.root / "work" / name,
            )
            for artifact in manifest.get("Artifacts", []):
                file_name = artifact["URI"].rsplit("/", 1)[-1]
                local = source / file_name
                if not local.exists():
                    raise LocalGreengrassError(f"{name}: artifact {file_name} is missing under {source}")
                component.artifacts.mkdir(parents=True, exist_ok=True)
                shutil.copy2(local, component.artifacts / file_name)
                if artifact.get("Unarchive", "NONE").upper() == "ZIP":
                    target = component.unarchived / Path(file_name).stem
                    shutil.rmtree(target, ignore_errors=True)
                    with zipfile.ZipFile(local) as archive:
                        archive.extractall(target)
            component.work.mkdir(parents=True, exist_ok=True)
            defaults = recipe.get("ComponentConfiguration", {}).get("DefaultConfiguration", {})
            component.configuration = {**defaults, **((configuration or {}).get(name, {}))}
            self.components[name] = component

    @staticmethod
    def _manifest(recipe: dict[str, Any]) -> dict[str, Any]:
        for manifest in recipe.get("Manifests", []):
            platform = manifest.get("Platform", {})
            if platform.get("os", "*") in ("*", "linux", "all") or re.fullmatch(
                platform.get("os", "").strip("/"), sys.platform
            ):
                return manifest
        raise LocalGreengrassError(f"{recipe.get('ComponentName')}: no manifest matches this platform")

    def resolve(self, component: LocalComponent, text: str) -> str:
        def replace(match: re.Match[str]) -> str:
            owner = (match.group(1) or "").rstrip(":")
            target = self.components.get(owner) if owner else component
            if target is None:
                raise LocalGreengrassError(
                    f"{component.name}: recipe variable {match.group(0)} names a component that is not deployed"
                )
            key = match.group(2)
            if key == "artifacts:path":
                return str(target.artifacts)
            if key == "artifacts:decompressedPath":
                return str(target.unarchived)
            if key == "work:path":
                return str(target.work)
            if key == "kernel:rootPath":
                return str(self.root)
            if key == "iot:thingName":
                return self.thing_name
            return _pointer(target.configuration, match.group(3))

        return VARIABLE.sub(replace, text)

    def _step(self, component: LocalComponent, name: str) -> tuple[str, dict[str, str], float | None]:
        lifecycle = self._manifest(component.recipe).get("Lifecycle", {})
        step = lifecycle.get(name)
        if step is None:
            return "", {}, None
        script = step if isinstance(step, str) else step.get("Script", "")
        timeout = None if isinstance(step, str) else step.get("Timeout")
        env = {k: self.resolve(component, str(v)) for k, v in (lifecycle.get("Setenv") or {}).items()}
        return self.resolve(component, script), env, timeout

    def environment(self, extra: dict[str, str]) -> dict[str, str]:
        return {**os.environ, "AWS_IOT_THING_NAME": self.thing_name, "GGC_VERSION": "2.14.0", **extra}

    def install(self, name: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        component = self.components[name]
        script, step_env, timeout = self._step(component, "Install")
        if not script:
            return subprocess.CompletedProcess([], 0, "", "")
        return subprocess.run(
            ["bash", "-c", script],
            cwd=component.work,
            capture_output=True,
            text=True,
            env=self.environment({**step_env, **(env or {})}),
            timeout=timeout or 120,
            check=False,
        )

    def start(self, name: str, env: dict[str, str] | None = None, **popen: Any) -> subprocess.Popen:
        """Start the Run step (Greengrass runs it with sh/bash in the work folder) and return the process."""
        component = self.components[name]
        script, step_env, _ = self._step(component, "Run")
        if not script:
            raise LocalGreengrassError(f"{name}: the recipe has no Run step")
        return subprocess.Popen(
            ["bash", "-c", script], cwd=component.work, env=self.environment({**step_env, **(env or {})}), **popen
        )
