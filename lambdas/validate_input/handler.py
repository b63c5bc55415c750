"""First step of the workflow: check the execution input and write what a labeling job needs."""

from __future__ import annotations

import json
from typing import Any

from odshared.core import storage
from odshared.core.lambda_env import json_setting
from odshared.core.log import configure
from odshared.data.pipeline import LABEL_TEMPLATE, label_category_config, normalise

configure()


def handler(event: dict[str, Any], _context: Any = None) -> dict[str, Any]:
    defaults = json_setting("PIPELINE_DEFAULTS")
    config = normalise(event.get("input", event), defaults)
    if config["labelingRequested"]:
        storage.write_text(
            config["labelCategoryConfig"], json.dumps(label_category_config(config["classes"])), "application/json"
        )
        storage.write_text(config["uiTemplate"], LABEL_TEMPLATE, "text/html")
    return config
