"""A real Label Studio server for the labeling tests: started once on a free loopback port from its own
environment (.venv-labelstudio, built by `make setup` or on first use), its S3 pointed at the moto server,
stopped afterwards."""

from __future__ import annotations

import pytest

from tests.conftest import free_port


@pytest.fixture(scope="session")
def label_studio(tmp_path_factory, moto_endpoint):
    from odctl.labelstudio.server import start

    root = tmp_path_factory.mktemp("label-studio")
    aws = {
        "AWS_ENDPOINT_URL": moto_endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        # Label Studio refuses storage endpoints on loopback (SSRF protection); the moto server is one. Real S3
        # endpoints are public, so odctl's own serve leaves the protection on.
        "SSRF_PROTECTION_ENABLED": "false",
    }
    # local frames live under the temporary folders of this session: the server serves files below it
    server = start(root / "data", free_port(), root.parent, extra_env=aws)
    yield server
    server.stop()


@pytest.fixture
def client(label_studio):
    from odctl.labelstudio.client import LabelStudio

    return LabelStudio(label_studio.url, label_studio.credentials.token)
