"""A Greengrass v2 control-plane stand-in: a loopback HTTP server speaking the service's REST-JSON protocol
for the six operations the pipeline uses (moto has no greengrassv2). boto3 talks to it with endpoint_url.

Like the real service it checks that a component's artifacts exist in S3 (here: moto's) when a version is
created, refuses to create a version twice, and keeps one latest deployment per target.
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
    def __init__(self, account: str = "123456789012", region: str = "us-east-1", strict: bool = False) -> None:
        """``strict``: like the service, refuse deployments to a thing group AWS IoT (moto) does not have, or of
        a component version nobody created (public aws.greengrass.* components aside)."""
        self.account, self.region, self.strict = account, region, strict
        self.recipes: dict[tuple[str, str], str] = {}
        self.deployments: dict[str, dict] = {}
        self.ids = itertools.count(1)
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
            return handler._reply(
                200,
                {
                    "recipeOutputFormat": query.get("recipeOutputFormat", "JSON"),
                    "recipe": base64.b64encode(recipe.encode()).decode(),
                },
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
        for existing in self.deployments.values():
            if existing["targetArn"] == target:
                existing["isLatestForTarget"] = False
        deployment_id = f"dep-{next(self.ids)}"
        self.deployments[deployment_id] = {
            **(extra or {}),
            "deploymentId": deployment_id,
            "targetArn": target,
            "revisionId": "1",
            "deploymentStatus": "ACTIVE",
            "isLatestForTarget": True,
            "components": components,
        }
        return {"deploymentId": deployment_id, "iotJobId": f"job-{deployment_id}"}

    def client(self):
        return boto3.client("greengrassv2", endpoint_url=self.endpoint, region_name=self.region)

    def close(self) -> None:
        self.server.shutdown()
