"""Rows to ``data``: a function generated once per selection of ``StepResult`` fields.

The executor resolves, checks and serialises each of the 30 fields of each row
separately. For a page of plain fields the same outcome is one dict literal per row,
built by a function written once for the selection. It checks every value the way
the executor would serialise it: where the executor would report an error (a null
for a non-null field, an ``Int`` beyond 32 bits, a string field holding bytes, a
status outside the enum), the function raises :class:`Unrenderable` instead and the
executor answers the request.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from graphql import (
    GraphQLEnumType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLSchema,
    get_named_type,
)

from stepgraph.domain import STEP_RESULT_FIELDS

ROW_TYPE = "StepResult"
_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1
_NAME = re.compile(r"^[_A-Za-z][_0-9A-Za-z]*$")

RowRenderer = Callable[[list[dict[str, Any]]], list[dict[str, Any]]]


class Unrenderable(Exception):
    """A value the compiled renderer cannot answer exactly as the executor would."""


@dataclass(frozen=True, slots=True)
class RowField:
    """How a selectable field of ``StepResult`` is checked and read from a JSON row."""

    # Its position among the contract's fields (names the generated code's variable).
    index: int
    # "string" (str), "int" (32-bit int), "rendered" (str the store rendered: DateTime,
    # Decimal), "json" (any JSON value) or "status" (the StepStatus enum).
    kind: str
    non_null: bool


@dataclass(frozen=True, slots=True)
class RowSchema:
    """What the compiled path knows about ``StepResult``: its plain fields and statuses."""

    fields: Mapping[str, RowField]
    # Stored status -> enum name, exactly as the executor serialises StepStatus.
    statuses: Mapping[str, str]


_SCALAR_KINDS = {
    "ID": "string",
    "String": "string",
    "Int": "int",
    "DateTime": "rendered",
    "Decimal": "rendered",
    "JSON": "json",
}


def row_schema(schema: GraphQLSchema, plain_fields: frozenset[str]) -> RowSchema:
    """The compilable fields of ``StepResult``: contract fields without resolvers.

    ``plain_fields`` names the fields read straight from the row (no resolver, no
    extension); a field is compiled only if it is also a contract field of a known
    scalar or the status enum.
    """
    row_type = schema.type_map[ROW_TYPE]
    assert isinstance(row_type, GraphQLObjectType)
    fields: dict[str, RowField] = {}
    statuses: dict[str, str] = {}
    for name, definition in row_type.fields.items():
        if name not in STEP_RESULT_FIELDS or name not in plain_fields:
            continue
        named = get_named_type(definition.type)
        if isinstance(named, GraphQLEnumType) and named.name == "StepStatus":
            kind = "status"
            statuses = {str(value.value): key for key, value in named.values.items()}
        elif isinstance(named, GraphQLScalarType) and named.name in _SCALAR_KINDS:
            kind = _SCALAR_KINDS[named.name]
        else:
            continue
        fields[name] = RowField(
            STEP_RESULT_FIELDS.index(name), kind, isinstance(definition.type, GraphQLNonNull)
        )
    return RowSchema(fields, statuses)


def _check(kind: str, non_null: bool, value: str) -> list[str]:
    """Source lines that raise Unrenderable where the executor would not return ``value``."""
    if kind == "json":
        return []
    if kind == "int":
        bad = f"{value}.__class__ is not int or not {_INT_MIN} <= {value} <= {_INT_MAX}"
    else:
        bad = f"{value}.__class__ is not str"
    if not non_null:
        bad = f"{value} is not None and ({bad})"
    return [f"        if {bad}:", "            raise Unrenderable"]


def compile_rows(selections: list[tuple[str, str]], rows: RowSchema) -> RowRenderer:
    """A function from JSON rows to the ``data`` list for ``(response key, field)`` pairs.

    The executor builds every ``StepResult`` from its whole row, so a row whose status
    is not in the enum fails the page even when ``status`` is not selected: the status
    is checked on every row.
    """
    lines = [
        "def render_rows(rows):",
        "    result = []",
        "    append = result.append",
        "    for row in rows:",
        "        status = STATUSES.get(row['status'])",
        "        if status is None:",
        "            raise Unrenderable",
    ]
    items: list[str] = []
    for key, name in selections:
        if not _NAME.match(key):  # keys are GraphQL names; never embed anything else
            raise ValueError(f"not a GraphQL name: {key!r}")
        if name == "__typename":
            items.append(f"{key!r}: {ROW_TYPE!r}")
            continue
        field = rows.fields[name]
        if field.kind == "status":
            items.append(f"{key!r}: status")
            continue
        value = f"v{field.index}"
        # A contract field name (rows.fields holds no other), read from the row's object.
        line = f"        {value} = row[{name!r}]"
        if line not in lines:
            lines.append(line)
            lines.extend(_check(field.kind, field.non_null, value))
        items.append(f"{key!r}: {value}")
    lines.append("        append({" + ", ".join(items) + "})")
    lines.append("    return result")
    namespace: dict[str, Any] = {"STATUSES": dict(rows.statuses), "Unrenderable": Unrenderable}
    # Generated once per shape from schema names and GraphQL names only (checked above):
    # a dict literal per row is the cheapest way CPython has to build it.
    exec(compile("\n".join(lines), f"<rows of {len(selections)} fields>", "exec"), namespace)
    render: RowRenderer = namespace["render_rows"]
    return render
