"""Differential test: generated operations get byte-identical responses with and without the
compiled path.

Hypothesis writes page queries the way clients do and the way they should not: selections
of any of the 30 fields under aliases, named and inline fragments, ``@skip``/``@include``
on literals and variables, ``__typename`` at every level, one or two pages in a document,
arguments as literals or variables (valid or not), other root fields and resolver fields,
callers without a key or the scope, GET and POST, either JSON media type, several
operations with or without ``operationName``. Each case goes twice to the served app (the
first request fills the document cache, the second may take the compiled path) and once
to an executor-only reference; all three responses must be the same bytes, errors
included. Cases built only from what the compiled path claims to handle must also have
been answered by it, so the comparison cannot pass by never compiling.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from stepgraph.domain import STEP_RESULT_FIELDS
from stepgraph.graphql.protocol import GRAPHQL_RESPONSE
from stepgraph.settings import Settings
from tests.test_fastpath import MAIN_FLOW, ODD_FLOWS, OTHER_ORGANIZATION_FLOW, Apps, apps

__all__ = ["apps"]  # the fixture, shared with test_fastpath

EXAMPLES = 250

# GraphQL type of each page argument, and values that are valid / refused for it.
ARGUMENTS: dict[str, tuple[str, list[Any], list[Any]]] = {
    "status": ("StepStatus", ["COMPLETED", "FAILED", "RUNNING"], ["DONE", 3]),
    "limit": ("Int", [1, 2, 5, 25, 100], [0, 101, -1, "ten"]),
    "offset": ("Int", [0, 1, 4, 17, 1000, 2**31 - 1], [-1, 2**31]),
    "sortBy": ("StepResultSort", ["CREATED_AT", "ORDER", "ESTIMATED_COST", "COMPLETED_AT"], ["X"]),
    "sortOrder": ("SortOrder", ["ASC", "DESC"], ["SIDEWAYS"]),
    "recordId": ("String", ["rec_1", "rec_2", "nope"], [""]),
    "batchId": ("String", ["batch_1"], [""]),
    "stepId": ("String", ["step_1"], [""]),
    "from": ("DateTime", ["2024-06-12", "2024-06-11T07:00:00Z"], ["noon", "2024-13-01"]),
    "to": ("DateTime", ["2024-06-14T00:00:00+02:00", "2030-01-01"], ["2024-06-31"]),
}
ENUMS = {"StepStatus", "StepResultSort", "SortOrder"}
ALIAS = re.compile(r"\b[kp][0-9]+: ")
MAX_ALIASES = Settings().max_query_aliases
# `flow` has a resolver: one choice in a hundred, so most row selections stay compilable.
ROW_FIELDS = [*STEP_RESULT_FIELDS, "__typename"] * 3 + ["flow { id }"]
PAGINATION = ["limit", "offset", "returned", "hasMore", "__typename"]


@dataclass
class Draft:
    """A document being written, and whether only handled constructs went into it."""

    variables: dict[str, tuple[str, Any]] = field(default_factory=dict)
    omitted: set[str] = field(default_factory=set)
    fragments: dict[str, str] = field(default_factory=dict)
    compilable: bool = True
    names: itertools.count[int] = field(default_factory=itertools.count)

    def name(self, prefix: str) -> str:
        return f"{prefix}{next(self.names)}"


def _literal(value: Any, type_name: str) -> str:
    if isinstance(value, str) and type_name in ENUMS:
        return value
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return str(value).lower() if isinstance(value, bool) else str(value)


@st.composite
def directive(draw: st.DrawFn, draft: Draft) -> str:
    kind = draw(st.sampled_from(["", "", "", "skip", "include"]))
    if not kind:
        return ""
    if draw(st.booleans()):
        return f" @{kind}(if: {str(draw(st.booleans())).lower()})"
    name = draft.name("c")
    draft.variables[name] = ("Boolean!", draw(st.booleans()))
    return f" @{kind}(if: ${name})"


@st.composite
def selection_set(
    draw: st.DrawFn, draft: Draft, fields: list[str], type_name: str, depth: int = 0
) -> str:
    """Fields of ``type_name`` with aliases, directives and fragments of both kinds."""
    items = []
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["field"] * 5 + ["inline", "spread"] * (depth < 2)))
        if kind == "field":
            name = draw(st.sampled_from(fields))
            if name not in STEP_RESULT_FIELDS and name not in PAGINATION:
                draft.compilable = False
            # Aliases are unique names, so fields never conflict.
            alias = f"{draft.name('k')}: " if draw(st.booleans()) else ""
            items.append(f"{alias}{name}{draw(directive(draft))}")
        else:
            inner = draw(selection_set(draft, fields, type_name, depth + 1))
            condition = draw(st.sampled_from([f"on {type_name} ", ""]))
            if kind == "inline":
                items.append(f"... {condition}{draw(directive(draft))}{{ {inner} }}")
            else:
                name = draft.name("F")
                draft.fragments[name] = f"fragment {name} on {type_name} {{ {inner} }}"
                items.append(f"...{name}{draw(directive(draft))}")
    return " ".join(items)


@st.composite
def argument(draw: st.DrawFn, draft: Draft, name: str) -> str | None:
    type_name, valid, invalid = ARGUMENTS[name]
    if draw(st.integers(0, 2)) == 0:
        return None
    refused = draw(st.integers(0, 19)) == 0
    value = draw(st.sampled_from(invalid if refused else valid))
    if refused:
        draft.compilable = False
    if draw(st.booleans()):
        if refused and type_name == "Int" and isinstance(value, str):
            draft.compilable = False
        return f"{name}: {_literal(value, type_name)}"
    variable = draft.name("v")
    draft.variables[variable] = (type_name, value)
    if draw(st.integers(0, 9)) == 0:
        draft.omitted.add(variable)  # declared, not sent: the argument counts as absent
    return f"{name}: ${variable}"


@st.composite
def page_field(draw: st.DrawFn, draft: Draft, *, aliased: bool = False) -> str:
    flows = [MAIN_FLOW] * 30 + ["flow_missing", OTHER_ORGANIZATION_FLOW, "", *ODD_FLOWS]
    flow_id = draw(st.sampled_from(flows))
    if flow_id != MAIN_FLOW:
        draft.compilable = False
    if draw(st.booleans()):
        variable = draft.name("v")
        draft.variables[variable] = ("ID!", flow_id)
        arguments = [f"flowId: ${variable}"]
    else:
        arguments = [f"flowId: {_literal(flow_id, 'ID')}"]
    for name in ARGUMENTS:
        if (text := draw(argument(draft, name))) is not None:
            arguments.append(text)
    parts = []
    if draw(st.integers(0, 5)) > 0:
        rows = draw(selection_set(draft, ROW_FIELDS, "StepResult"))
        parts.append(f"data {{ {rows} }}")
    if draw(st.booleans()) or not parts:
        parts.append(f"pagination {{ {draw(selection_set(draft, PAGINATION, 'Pagination'))} }}")
    if draw(st.integers(0, 9)) == 0:
        parts.append("__typename")
    if draw(st.integers(0, 19)) == 0:
        parts.append("totalCount")
        draft.compilable = False
    # Two pages need two response keys: the same key with other arguments does not validate.
    alias = f"{draft.name('p')}: " if aliased or draw(st.booleans()) else ""
    selections = " ".join(parts)
    return f"{alias}stepResults({', '.join(arguments)}){draw(directive(draft))} {{ {selections} }}"


@dataclass
class Case:
    """One request, and whether the compiled path must be the one to answer it."""

    query: str
    variables: dict[str, Any] | None
    operation_name: str | None
    method: str
    accept: str | None
    key: str | None
    compilable: bool


@st.composite
def cases(draw: st.DrawFn) -> Case:
    draft = Draft()
    roots = [draw(page_field(draft))]
    if draw(st.integers(0, 3)) == 0:
        roots.append(draw(page_field(draft, aliased=True)))
    if draw(st.integers(0, 4)) == 0:
        roots.insert(0, "__typename")
    if draw(st.integers(0, 9)) == 0:
        roots.append(f'flow(id: "{MAIN_FLOW}") {{ id }}')
        draft.compilable = False
    declarations = ", ".join(f"${n}: {t}" for n, (t, _) in draft.variables.items())
    signature = f"({declarations})" if declarations else ""
    operation_name = None
    shape = draw(st.sampled_from(["anonymous", "named", "named", "several", "several"]))
    if shape == "anonymous" and not declarations:
        document = f"{{ {' '.join(roots)} }}"
    else:
        document = f"query Page{signature} {{ {' '.join(roots)} }}"
    if shape == "several":
        document += " query Other { __typename }"
        if draw(st.integers(0, 3)) == 0:
            draft.compilable = False  # several operations, no name: refused
        else:
            operation_name = "Page"
    elif shape == "named" and draw(st.booleans()):
        operation_name = "Page"
    document = " ".join([document, *draft.fragments.values()])
    variables = {n: v for n, (_, v) in draft.variables.items() if n not in draft.omitted}
    key = draw(st.sampled_from(["reader"] * 16 + [None, "writer", "stranger", "unknown"]))
    if key != "reader" or len(ALIAS.findall(document)) > MAX_ALIASES:
        draft.compilable = False
    return Case(
        query=document,
        variables=variables or draw(st.sampled_from([None, {}])),
        operation_name=operation_name,
        method=draw(st.sampled_from(["POST", "POST", "GET"])),
        accept=draw(st.sampled_from([None, "application/json", GRAPHQL_RESPONSE])),
        key=key,
        compilable=draft.compilable,
    )


_requests = itertools.count()


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=cases())
async def test_the_compiled_path_answers_byte_for_byte_as_the_executor(
    apps: Apps, case: Case
) -> None:
    stats = apps.view.fast_path.stats  # type: ignore[union-attr]
    compiled = stats.compiled
    reply = await apps.compare(
        case.query,
        case.variables,
        operation_name=case.operation_name,
        key=case.key,
        method=case.method,
        accept=case.accept,
        request_id=f"req-{next(_requests)}",
    )
    answered = stats.compiled > compiled
    event("compiled path" if answered else "executor")
    event("compilable by construction" if case.compilable else "may need the executor")
    event(f"status {reply.status}")
    if case.compilable:
        assert answered, case
