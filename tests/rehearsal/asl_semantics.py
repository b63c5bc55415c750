"""Where moto's Step Functions interpreter (a port of LocalStack's) departs from AWS, brought back to AWS's rule.

- States.Runtime cannot be caught: "A retry or catch on States.ALL won't catch States.Runtime errors" (Step Functions
  developer guide, error handling). moto's ErrorEqualsDecl lets States.ALL match it.
"""

from __future__ import annotations

from moto.stepfunctions.parser.asl.component.common.error_name import error_equals_decl
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import StatesErrorNameType


def install(monkeypatch) -> None:
    declaration = error_equals_decl.ErrorEqualsDecl
    original = declaration._eval_body

    def eval_body(self, env) -> None:
        error_name = env.stack[-1]
        runtime = isinstance(error_name, StatesErrorName) and error_name.typ == StatesErrorNameType.StatesRuntime
        if runtime and declaration._STATE_ALL_ERROR in self.error_names:
            env.stack.pop()
            env.stack.append(False)
            return
        original(self, env)

    monkeypatch.setattr(declaration, "_eval_body", eval_body)
