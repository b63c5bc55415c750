"""A Greengrass v2 control-plane stand-in: a loopback HTTP server speaking the service's REST-JSON protocol
for the operations the pipeline uses (moto has no greengrassv2). boto3 talks to it with endpoint_url.

Like the real service it checks that a component's artifacts exist in S3 (here: moto's) when a version is
created, refuses to create a version twice, and keeps one latest deployment per target: a new deployment to a
group replaces that group's previous one. Like the real devices behind it (REFERENCE.md section 00) a deployment
is applied asynchronously: CreateDeployment returns at once, and ``apply_delay`` seconds later each core device of
the group (its things in moto's IoT, read then) resolves the components of the latest deployment of every group it
belongs to. Two groups pinning different versions of one component fail that deployment on that device, which
keeps what it ran (the nucleus's dependency resolver); a component version listed in ``broken`` fails to start and
the device rolls back (failureHandlingPolicy ROLLBACK); a device in ``offline`` applies nothing until it is back.
Each device's view is what ListEffectiveDeployments and ListInstalledComponents answer.
"""

from __future__ import annotations

import base64
import itertools
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlparse

import boto3
import yaml

from tests.recipe_schema import recipe_errors


class GreengrassService:
    def __init__(
        self, account: str = "123456789012", region: str = "us-east-1", strict: bool = False, apply_delay: float = 1.0
    ) -> None:
        """``strict``: like the service, refuse deployments to a thing group AWS IoT (moto) does not have, or of
        a component version nobody created (public aws.greengrass.* components aside). ``apply_delay``: seconds
        between CreateDeployment and the devices applying it."""
        self.account, self.region, self.strict, self.apply_delay = account, region, strict, apply_delay
        self.recipes: dict[tuple[str, str], str] = {}
        self.deployments: dict[str, dict] = {}
        self.ids = itertools.count(1)
        self.devices: dict[str, CoreDevice] = {}  # core device (thing) name -> what it runs and what it was told
        self.broken: set[tuple[str, str]] = set()  # (component, version) that fails to start on every device
        self.offline: set[str] = set()  # things that apply nothing while here
        self.state_lock = threading.RLock()
        service = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _reply(self, status: int, body: dict, error: str | None = None) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                if error:
                    self.send_header("x-amzn-ErrorType", error)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                service._get(self)

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length", 0))
                service._post(self, json.loads(self.rfile.read(length) or b"{}"))

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def arn(self, name: str, version: str | None = None) -> str:
        base = f"arn:aws:greengrass:{self.region}:{self.account}:components:{name}"
        return f"{base}:versions:{version}" if version else base

    def _get(self, handler) -> None:
        url = urlparse(handler.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        parts = [unquote(p) for p in url.path.split("/") if p]
        if parts[:3] == ["greengrass", "v2", "components"] and len(parts) == 5 and parts[4] == "versions":
            name = parts[3].split(":components:")[1]
            versions = [v for (n, v) in self.recipes if n == name]
            if not versions:
                return handler._reply(404, {"message": f"{parts[3]} not found"}, "ResourceNotFoundException")
            return handler._reply(
                200,
                {
                    "componentVersions": [
                        {"componentName": name, "componentVersion": v, "arn": self.arn(name, v)} for v in versions
                    ]
                },
            )
        if parts[:3] == ["greengrass", "v2", "components"] and len(parts) == 4:
            _, rest = parts[3].split(":components:")
            name, version = rest.split(":versions:")
            recipe = self.recipes.get((name, version))
            if recipe is None:
                return handler._reply(404, {"message": "not found"}, "ResourceNotFoundException")
            wanted = query.get("recipeOutputFormat", "YAML")  # the service converts to the format asked for
            text = json.dumps(yaml.safe_load(recipe)) if wanted == "JSON" else recipe
            return handler._reply(
                200, {"recipeOutputFormat": wanted, "recipe": base64.b64encode(text.encode()).decode()}
            )
        if parts == ["greengrass", "v2", "deployments"]:
            found = [
                d
                for d in self.deployments.values()
                if d["targetArn"] == query.get("targetArn") and d["isLatestForTarget"]
            ]
            return handler._reply(
                200,
                {
                    "deployments": [
                        {
                            k: d[k]
                            for k in (
                                "deploymentId",
                                "targetArn",
                                "revisionId",
                                "deploymentStatus",
                                "isLatestForTarget",
                            )
                        }
                        for d in found
                    ]
                },
            )
        if parts[:3] == ["greengrass", "v2", "deployments"] and len(parts) == 4:
            return handler._reply(200, self.deployments[parts[3]])
        if parts[:3] == ["greengrass", "v2", "coreDevices"] and len(parts) == 5:
            device = self.devices.get(parts[3])
            if device is None:  # a thing that was never sent a deployment is no core device of the service
                missing = {"message": f"core device {parts[3]} not found"}
                return handler._reply(404, missing, "ResourceNotFoundException")
            with self.state_lock:
                if parts[4] == "effectiveDeployments":
                    return handler._reply(200, {"effectiveDeployments": device.effective_deployments()})
                if parts[4] == "installedComponents":
                    return handler._reply(200, {"installedComponents": device.installed_components()})
        handler._reply(404, {"message": f"no route {handler.path}"}, "ResourceNotFoundException")

    def _post(self, handler, body: dict) -> None:
        path = urlparse(handler.path).path
        if path == "/greengrass/v2/createComponentVersion":
            text = base64.b64decode(body["inlineRecipe"]).decode()
            recipe = yaml.safe_load(text)
            errors = recipe_errors(recipe)
            if errors:  # the service refuses a recipe that does not parse as one
                return handler._reply(400, {"message": "; ".join(errors)}, "ValidationException")
            key = (recipe["ComponentName"], recipe["ComponentVersion"])
            if key in self.recipes:
                return handler._reply(409, {"message": f"{key} exists"}, "ConflictException")
            for manifest in recipe.get("Manifests", []):
                for artifact in manifest.get("Artifacts", []):
                    bucket, _, object_key = artifact["URI"][len("s3://") :].partition("/")
                    try:
                        boto3.client("s3").head_object(Bucket=bucket, Key=object_key)
                    except Exception:
                        return handler._reply(
                            400, {"message": f"artifact {artifact['URI']} not found"}, "ValidationException"
                        )
            self.recipes[key] = text
            return handler._reply(
                201,
                {
                    "arn": self.arn(*key),
                    "componentName": key[0],
                    "componentVersion": key[1],
                    "creationTimestamp": time.time(),
                    "status": {"componentState": "DEPLOYABLE"},
                },
            )
        if path == "/greengrass/v2/deployments":
            refused = self._refusal(body) if self.strict else None
            if refused:
                return handler._reply(404, {"message": refused}, "ResourceNotFoundException")
            return handler._reply(201, self.add_deployment(body["targetArn"], body.get("components", {}), body))
        handler._reply(404, {"message": f"no route {path}"}, "ResourceNotFoundException")

    def _refusal(self, body: dict) -> str | None:
        group = body["targetArn"].rsplit("thinggroup/", 1)[-1]
        iot = boto3.client("iot")
        try:
            iot.describe_thing_group(thingGroupName=group)
        except iot.exceptions.ResourceNotFoundException:
            return f"thing group {group} not found"
        for name, spec in body.get("components", {}).items():
            if not name.startswith("aws.greengrass.") and (name, spec["componentVersion"]) not in self.recipes:
                return f"component {name} {spec['componentVersion']} not found"
        return None

    def add_deployment(self, target: str, components: dict, extra: dict | None = None) -> dict:
        """The group's new latest deployment (its previous one is replaced: INACTIVE), applied by its devices
        ``apply_delay`` seconds later."""
        with self.state_lock:
            revision = 1
            for existing in self.deployments.values():
                if existing["targetArn"] == target:
                    if existing["isLatestForTarget"]:
                        existing["deploymentStatus"] = "INACTIVE"
                    existing["isLatestForTarget"] = False
                    revision += 1
            deployment_id = f"{next(self.ids):08d}-0000-4000-8000-000000000000"
            self.deployments[deployment_id] = {
                **(extra or {}),
                "deploymentId": deployment_id,
                "targetArn": target,
                "revisionId": str(revision),
                "deploymentStatus": "ACTIVE",
                "isLatestForTarget": True,
                "components": components,
                "creationTimestamp": time.time(),
                "iotJobId": f"job-{deployment_id}",
            }
            for thing in self._things_of(target):
                self._device(thing).receive(self.deployments[deployment_id])
        timer = threading.Timer(self.apply_delay, self.apply_pending)
        timer.daemon = True
        timer.start()
        return {"deploymentId": deployment_id, "iotJobId": f"job-{deployment_id}"}

    # -- the devices ---------------------------------------------------------------------------------------------
    def _device(self, thing: str) -> CoreDevice:
        return self.devices.setdefault(thing, CoreDevice(thing))

    @staticmethod
    def _things_of(target: str) -> list[str]:
        """The group's things in moto's IoT now (none where the group is not there: non-strict tests)."""
        if ":thinggroup/" not in target:
            return [target.rsplit(":thing/", 1)[-1]]
        iot, things = boto3.client("iot"), []
        try:
            for page in iot.get_paginator("list_things_in_thing_group").paginate(
                thingGroupName=target.rsplit("thinggroup/", 1)[-1], recursive=True
            ):
                things += page.get("things", [])
        except Exception:
            return []
        return things

    def _groups_of(self, thing: str) -> list[str]:
        iot = boto3.client("iot")
        groups = iot.list_thing_groups_for_thing(thingName=thing).get("thingGroups", [])
        prefix = f"arn:aws:iot:{self.region}:{self.account}:thinggroup/"
        return [prefix + g["groupName"] for g in groups]

    def latest_for(self, target: str) -> dict | None:
        return next((d for d in self.deployments.values() if d["targetArn"] == target and d["isLatestForTarget"]), None)

    def apply_pending(self) -> None:
        """Every online device applies the deployments it received, in order: the components of the latest
        deployment of each of its groups, resolved together."""
        with self.state_lock:
            for thing, device in self.devices.items():
                if thing in self.offline:
                    continue
                due = [d for d in device.queue if d["creationTimestamp"] + self.apply_delay <= time.time() + 0.01]
                for deployment in due:
                    device.queue.remove(deployment)
                    latest = [self.latest_for(group) for group in self._groups_of(thing)]
                    device.apply(deployment, [d for d in latest if d], self.broken)

    def set_offline(self, thing: str, offline: bool = True) -> None:
        """A device losing (or regaining) its connection; back online it applies what it was sent meanwhile."""
        with self.state_lock:
            (self.offline.add if offline else self.offline.discard)(thing)
        if not offline:
            self.apply_pending()

    def running(self, thing: str, component: str) -> str | None:
        """The version of ``component`` the device runs now (what its component process loads)."""
        with self.state_lock:
            device = self.devices.get(thing)
            return device.installed.get(component, {}).get("componentVersion") if device else None

    def configuration(self, thing: str, component: str) -> dict:
        """The component's configuration on the device: its recipe's defaults with the deployment's merge."""
        with self.state_lock:
            device = self.devices.get(thing)
            spec = device.installed.get(component) if device else None
            if not spec:
                return {}
            recipe = yaml.safe_load(self.recipes.get((component, spec["componentVersion"]), "{}")) or {}
            defaults = dict((recipe.get("ComponentConfiguration") or {}).get("DefaultConfiguration") or {})
            merge = (spec.get("configurationUpdate") or {}).get("merge")
            return {**defaults, **(json.loads(merge) if merge else {})}

    def client(self):
        return boto3.client("greengrassv2", endpoint_url=self.endpoint, region_name=self.region)

    def close(self) -> None:
        self.server.shutdown()


TERMINAL = ("SUCCEEDED", "FAILED", "COMPLETED", "TIMED_OUT", "CANCELED", "REJECTED")


class CoreDevice:
    """One Greengrass core device: the deployments sent to it (its effective deployments, one per target: a new
    one replaces the target's previous), and the components it runs."""

    def __init__(self, thing: str) -> None:
        self.thing = thing
        self.effective: dict[str, dict] = {}  # target -> the target's deployment as this device saw it
        self.installed: dict[str, dict] = {}  # component -> its spec (componentVersion, configurationUpdate)
        self.changed: dict[str, float] = {}  # component -> when it last changed state
        self.queue: list[dict] = []

    def receive(self, deployment: dict) -> None:
        now = time.time()
        self.effective[deployment["targetArn"]] = {
            "deploymentId": deployment["deploymentId"],
            "deploymentName": deployment.get("deploymentName") or deployment["deploymentId"],
            "iotJobId": deployment["iotJobId"],
            "iotJobArn": f"arn:aws:iot:us-east-1:123456789012:job/{deployment['iotJobId']}",
            "targetArn": deployment["targetArn"],
            "coreDeviceExecutionStatus": "QUEUED",
            "reason": "",
            "creationTimestamp": now,
            "modifiedTimestamp": now,
        }
        self.queue.append(deployment)

    def apply(self, deployment: dict, latest_of_groups: list[dict], broken: set[tuple[str, str]]) -> None:
        """Resolve the groups' components together; a conflict or a component that fails to start fails this
        deployment and leaves the device on what it ran."""
        status = self.effective[deployment["targetArn"]]
        if status["deploymentId"] != deployment["deploymentId"]:
            return  # replaced before it was applied: the newer one is applied instead
        wanted: dict[str, dict] = {}
        for other in latest_of_groups:
            for name, spec in other["components"].items():
                pinned = wanted.get(name)
                if pinned and pinned["componentVersion"] != spec["componentVersion"]:
                    return self._fail(
                        status,
                        "NO_AVAILABLE_COMPONENT_VERSION",
                        f"Conflicts in component version requirements: {name} requires "
                        f"{pinned['componentVersion']} ({pinned['_from']}) and {spec['componentVersion']} "
                        f"({other['targetArn']})",
                    )
                wanted[name] = {**spec, "_from": other["targetArn"]}
        failing = [f"{n} {s['componentVersion']}" for n, s in wanted.items() if (n, s["componentVersion"]) in broken]
        if failing:  # it starts, errors, is BROKEN; failureHandlingPolicy ROLLBACK puts the old ones back
            return self._fail(status, "COMPONENT_BROKEN", f"{', '.join(failing)} broke on start; rolled back")
        now = time.time()
        for name, spec in wanted.items():
            if self.installed.get(name, {}).get("componentVersion") != spec["componentVersion"]:
                self.changed[name] = now
        self.installed = {n: {k: v for k, v in s.items() if k != "_from"} for n, s in wanted.items()}
        status.update(coreDeviceExecutionStatus="SUCCEEDED", reason="SUCCESSFUL", modifiedTimestamp=now)

    @staticmethod
    def _fail(status: dict, error_type: str, reason: str) -> None:
        status.update(
            coreDeviceExecutionStatus="FAILED",
            reason=reason,
            modifiedTimestamp=time.time(),
            statusDetails={"errorStack": ["DEPLOYMENT_FAILURE", error_type], "errorTypes": ["DEPENDENCY_ERROR"]},
        )

    def effective_deployments(self) -> list[dict]:
        return [dict(d) for d in self.effective.values()]

    def installed_components(self) -> list[dict]:
        return [
            {
                "componentName": name,
                "componentVersion": spec["componentVersion"],
                "lifecycleState": "RUNNING",
                "isRoot": True,
                "lastStatusChangeTimestamp": self.changed.get(name, 0.0),
                "lastReportedTimestamp": time.time(),
            }
            for name, spec in self.installed.items()
        ]
