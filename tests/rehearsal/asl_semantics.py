"""Where moto's Step Functions interpreter (a port of LocalStack's) departs from AWS, brought back to AWS's rule.

- States.Runtime cannot be caught: "A retry or catch on States.ALL won't catch States.Runtime errors" (Step Functions
  developer guide, error handling). moto's ErrorEqualsDecl lets States.ALL match it.
- A Map's ToleratedFailurePercentage written as an integer (``10``, as CDK renders it) is refused by moto's ASL
  grammar, whose NUMBER token needs a fraction; AWS takes any number. :func:`moto_number_literals` writes the same
  value as ``10.0`` (the same JSON number) before the definition is created in moto.
"""

from __future__ import annotations

import re

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


def moto_number_literals(definition_text: str) -> str:
    return re.sub(r'("ToleratedFailurePercentage":\s*)(\d+)([,}])', r"\g<1>\g<2>.0\g<3>", definition_text)
