"""What an AWS IoT rule's SQL makes of a message, evaluated from the SQL text the stack deploys (issue 33).

The metrics rules' SELECT uses a small part of AWS IoT SQL (version 2016-03-23): ``*``, field references (dotted
into nested objects), number, string and boolean literals, ``CASE expr WHEN v THEN r ELSE d END``, the functions
``isUndefined`` and ``timestamp``, and object and array literals. sqlglot parses that text (DuckDB's dialect reads
the object literals); this walks the tree with IoT SQL's rules where they decide the outcome (AWS IoT Developer
Guide, "Data types" and "Case statements"): a field the message lacks is Undefined; a CASE whose operand is
Undefined is Undefined; an Undefined result is left out of the output object. Anything else in the text fails the
evaluation loudly, so a rule that grows a construct this does not know cannot be tested as if it were simpler.
"""

from __future__ import annotations

from typing import Any

import sqlglot
from sqlglot import exp


class _Undefined:
    def __repr__(self) -> str:
        return "Undefined"


UNDEFINED = _Undefined()


def select(sql: str, message: dict[str, Any], timestamp_ms: int) -> dict[str, Any]:
    """The object the rule's SELECT makes of ``message`` arriving at ``timestamp_ms``."""
    tree = sqlglot.parse_one(sql, read="duckdb")
    assert isinstance(tree, exp.Select), sql
    out: dict[str, Any] = {}
    for item in tree.expressions:
        if isinstance(item, exp.Star):
            out.update(message)
            continue
        assert isinstance(item, exp.Alias), f"unnamed SELECT item: {item.sql()}"
        value = _value(item.this, message, timestamp_ms)
        if value is not UNDEFINED:
            out[item.alias] = value
    return out


def _value(node: exp.Expression, message: dict[str, Any], now: int) -> Any:
    if isinstance(node, exp.Literal):
        return node.this if node.is_string else _number(node.this)
    if isinstance(node, exp.Boolean):
        return bool(node.this)
    if isinstance(node, exp.Column):
        return _field(message, [part.name for part in node.parts])
    if isinstance(node, exp.Case):
        return _case(node, message, now)
    if isinstance(node, exp.Timestamp) and not node.args.get("this"):
        return now
    if isinstance(node, exp.Anonymous) and node.name.lower() == "isundefined":
        (argument,) = node.expressions
        return _value(argument, message, now) is UNDEFINED
    if isinstance(node, exp.Struct):
        return {item.this.name: _value(item.expression, message, now) for item in node.expressions}
    if isinstance(node, exp.Array):
        return [_value(item, message, now) for item in node.expressions]
    raise AssertionError(f"IoT SQL construct not evaluated here: {node.sql()} ({type(node).__name__})")


def _case(node: exp.Case, message: dict[str, Any], now: int) -> Any:
    assert node.this is not None, f"only CASE expr WHEN ... (IoT SQL's form): {node.sql()}"
    operand = _value(node.this, message, now)
    if operand is UNDEFINED:
        return UNDEFINED
    for branch in node.args["ifs"]:
        candidate = _value(branch.this, message, now)
        if candidate == operand and type(candidate) is type(operand):  # true is not 1 in IoT SQL
            return _value(branch.args["true"], message, now)
    default = node.args.get("default")
    return _value(default, message, now) if default is not None else UNDEFINED


def _field(message: dict[str, Any], path: list[str]) -> Any:
    value: Any = message
    for part in path:
        if not isinstance(value, dict) or part not in value:
            return UNDEFINED
        value = value[part]
    return value


def _number(text: str) -> int | float:
    return float(text) if any(c in text for c in ".eE") else int(text)
