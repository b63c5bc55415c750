"""Label Studio's REST API, the calls odctl makes: one line of error for a server that is down or a refused token."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from .server import LabelStudioError

URL_SETTING, TOKEN_SETTING = "LABEL_STUDIO_URL", "LABEL_STUDIO_API_KEY"  # Label Studio's own names


class LabelStudioRefused(LabelStudioError):
    """Label Studio answered a request with an error status; ``reasons`` is its explanation as plain text (the
    strings of its JSON body), for callers that turn a refusal they understand into what to do."""

    def __init__(self, message: str, status: int, reasons: str) -> None:
        super().__init__(message)
        self.status, self.reasons = status, reasons


def _reasons(body: str) -> str:
    """The strings of an error body ({"path": ["..."]} and the like), or the body itself when it is not JSON."""
    try:
        parsed = json.loads(body)
    except ValueError:
        return body
    found: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)
        elif isinstance(value, str):
            found.append(value)

    walk(parsed)
    return " ".join(found) or body


class LabelStudio:
    def __init__(self, url: str | None, token: str | None) -> None:
        self.url = (url or os.environ.get(URL_SETTING) or "").rstrip("/")
        self.token = token or os.environ.get(TOKEN_SETTING) or ""
        if not self.url or not self.token:
            raise LabelStudioError(
                f"no Label Studio to talk to: give the --data-dir that `odctl label-studio serve` ran with (it "
                f"records its URL and token there), or pass --url and --token (or set {URL_SETTING} and "
                f"{TOKEN_SETTING}); serve prints both"
            )

    def call(self, method: str, path: str, body: Any = None, query: dict[str, Any] | None = None) -> Any:
        url = f"{self.url}{path}" + (f"?{urllib.parse.urlencode(query)}" if query else "")
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(url, data=data, method=method)
        request.add_header("Authorization", f"Token {self.token}")
        request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                payload = response.read()
        except urllib.error.HTTPError as exc:
            body = exc.read().decode(errors="replace")
            if exc.code == 401:
                raise LabelStudioError(
                    f"Label Studio at {self.url} refused the token: pass the token "
                    f"`odctl label-studio serve` printed (--token or {TOKEN_SETTING})"
                ) from None
            message = f"Label Studio {method} {path}: {exc.code} {body[:400]}"
            raise LabelStudioRefused(message, exc.code, _reasons(body)) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise LabelStudioError(
                f"cannot reach Label Studio at {self.url} ({reason}): is it running? (`odctl label-studio serve`)"
            ) from None
        return json.loads(payload) if payload else None

    def project(self, title: str) -> dict[str, Any] | None:
        found = self.call("GET", "/api/projects", query={"title": title, "page_size": 1000})
        matches = [p for p in found.get("results", found) if p.get("title") == title]
        return matches[0] if matches else None

    def create_project(self, title: str, label_config: str) -> dict[str, Any]:
        result: dict[str, Any] = self.call("POST", "/api/projects", {"title": title, "label_config": label_config})
        return result

    def delete_project(self, project_id: int) -> None:
        self.call("DELETE", f"/api/projects/{project_id}/")

    def update_project(self, project_id: int, settings: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self.call("PATCH", f"/api/projects/{project_id}", settings)
        return result

    def tasks(self, project_id: int) -> list[dict[str, Any]]:
        tasks: list[dict[str, Any]] = []
        page = 1
        while True:
            found = self.call(
                "GET",
                "/api/tasks",
                query={"project": project_id, "page": page, "page_size": 500, "fields": "all", "resolve_uri": "false"},
            )
            batch = found.get("tasks", []) if isinstance(found, dict) else found
            tasks.extend(batch)
            if len(batch) < 500:
                return tasks
            page += 1

    def import_tasks(self, project_id: int, tasks: list[dict[str, Any]]) -> None:
        if tasks:
            self.call("POST", f"/api/projects/{project_id}/import", tasks)

    def storages(self, project_id: int, kind: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.call("GET", f"/api/storages/{kind}", query={"project": project_id})
        return result

    def add_storage(self, kind: str, settings: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self.call("POST", f"/api/storages/{kind}", settings)
        return result

    def annotate(self, task_id: int, result: list[dict[str, Any]]) -> dict[str, Any]:
        """What the labeling UI posts when a labeler submits a task."""
        body = {"result": result, "was_cancelled": False, "ground_truth": False, "lead_time": 1.0, "task": task_id}
        created: dict[str, Any] = self.call("POST", f"/api/tasks/{task_id}/annotations", body)
        return created

    def export(self, project_id: int) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.call(
            "GET", f"/api/projects/{project_id}/export", query={"exportType": "JSON", "download_all_tasks": "true"}
        )
        return result
