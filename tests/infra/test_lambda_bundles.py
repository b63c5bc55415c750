"""Every function starts on Lambda: its bundle, built as the CDK app builds it, imports its handler on the runtime's
Python with nothing but the bundle and the runtime's boto3 (red before for MergeManifest: odshared.data.ingest pulled
in numpy, which its bundle does not carry). The rehearsal then invokes each bundle on the events the workflow builds
(tests/infra/test_rehearsal.py, ``REHEARSED``)."""

from __future__ import annotations

import pytest

from infra.functions import python_functions
from infra.lambda_bundle import REPO
from tests.infra.test_rehearsal import REHEARSED
from tests.rehearsal.lambda_runtime import SDK_PYTHON, RuntimeFunction

pytestmark = pytest.mark.integration


def test_the_runtime_environment_holds_only_the_sdk():
    import subprocess

    listed = subprocess.run(
        [str(SDK_PYTHON), "-m", "pip", "--version"], capture_output=True, text=True, check=False
    )  # no pip either: the interpreter is the runtime's, not a workstation's
    assert listed.returncode != 0
    site = SDK_PYTHON.parent.parent / "lib"
    found = {p.name.split("-")[0].lower() for p in site.glob("python3.13/site-packages/*.dist-info")}
    assert found == {"boto3", "botocore", "jmespath", "python_dateutil", "s3transfer", "six", "urllib3"}


def test_every_function_is_rehearsed_from_its_bundle(synthesized):
    stack, _ = synthesized
    assert {f.node.id for f in python_functions(stack)} == {name for names in REHEARSED.values() for name in names}


def test_every_bundle_imports_its_handler_on_the_lambda_runtime(lambda_bundles, tmp_path):
    """Each bundle started alone; the failures of all of them reported at once."""
    failures = {}
    for function_id, bundle in lambda_bundles.items():
        runtime = RuntimeFunction(function_id, bundle, {"LOG_LEVEL": "INFO"}, tmp_path / f"{function_id}.log")
        try:
            init = runtime.start()
        finally:
            runtime.close()
        leaked = [p for p in init.path if p.startswith(str(REPO)) and ".venv-lambda-sdk" not in p]
        if init.error is not None:
            failures[function_id] = init.error["errorMessage"] + "\n" + "\n".join(init.error["stackTrace"][-6:])
        elif str(bundle) not in init.path or leaked:  # nothing of the operator's environment
            failures[function_id] = f"path: {init.path}"
    assert failures == {}
