"""Lambda's Python runtime for one function, as the rehearsal runs it: a process of the runtime's Python whose path
holds only the function's bundle (cwd and PYTHONPATH, Lambda's /var/task) and the runtime's own boto3.

Init imports the handler once (a warm function keeps its module state between invocations); an import that fails
is reported on every invocation as ``Runtime.ImportModuleError``, as Lambda reports it. Requests arrive as JSON lines
on stdin; answers leave on the process's original stdout, while the handler's own output goes to stderr.

Standalone on purpose: it imports nothing of the project or the tests.
"""

import importlib
import json
import os
import sys
import time
import traceback

ANSWERS = os.fdopen(os.dup(1), "w", buffering=1)
os.dup2(2, 1)  # print() and logging in the handler reach stderr, never the answers


class Context:
    """The parts of Lambda's context object the project's handlers read."""

    def __init__(self, request: dict) -> None:
        self.function_name = request["function_name"]
        self.invoked_function_arn = request["invoked_function_arn"]
        self.memory_limit_in_mb = request.get("memory_mb", 1024)
        self.aws_request_id = request.get("request_id", "rehearsal")
        self._deadline = time.monotonic() + float(request["timeout_s"])

    def get_remaining_time_in_millis(self) -> int:
        return int((self._deadline - time.monotonic()) * 1000)


def _init() -> tuple[object | None, dict | None]:
    module_name, _, function_name = os.environ["_HANDLER"].rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # what Lambda's bootstrap catches at init
        return None, {
            "errorType": "Runtime.ImportModuleError",
            "errorMessage": f"Unable to import module '{module_name}': {exc}",
            "stackTrace": traceback.format_exc().splitlines(),
        }
    handler = getattr(module, function_name, None)
    if handler is None:
        return None, {
            "errorType": "Runtime.HandlerNotFound",
            "errorMessage": f"Handler '{function_name}' missing on module '{module_name}'",
            "stackTrace": [],
        }
    return handler, None


def _answer(handler, request: dict) -> dict:
    try:
        result = handler(request["event"], Context(request["context"]))
    except Exception as exc:
        return {
            "errorType": type(exc).__name__,
            "errorMessage": str(exc),
            "stackTrace": traceback.format_exc().splitlines(),
        }
    try:
        json.dumps(result)
    except (TypeError, ValueError) as exc:
        return {
            "errorType": "Runtime.MarshalError",
            "errorMessage": f"Unable to marshal response: {exc}",
            "stackTrace": [],
        }
    return {"result": result}


def main() -> None:
    handler, init_error = _init()
    ANSWERS.write(json.dumps({"init": init_error or "ok", "path": sys.path}) + "\n")
    for line in sys.stdin:
        answer = init_error or _answer(handler, json.loads(line))
        ANSWERS.write(json.dumps(answer) + "\n")


main()
