"""Fuzzing /graphql: whatever a caller asks, no 5xx and every error carries an ``extensions.code``.

Schemathesis generates the documents: for each root field of ``Query`` (read from the schema,
federation's ``_entities`` and ``_service`` included) it builds queries whose selections reach
the nested fields, such as ``Flow.stepResults`` and ``StepResult.flow``, with their arguments,
in positive (schema-valid) and negative (schema-invalid) mode. Each one is sent in-process to
the app, lifespan running, with a valid API key and either JSON media type in ``Accept``, over
a store holding step results whose ids and filter values the generator puts in place of
generated arguments part of the time, so that queries reach rows and not only the not-found
paths.

Schemathesis' pytest entry for apps built in fixtures (``schemathesis.pytest.from_fixture``)
fails under pytest 9.2 (it reads ``Function._nodeid``), so the test draws from schemathesis'
case strategies inside its own Hypothesis test, sends each case with the suite's client and
judges the response with ``Case.validate_response`` and the checks below.

The run is bounded (``TOTAL_EXAMPLES`` per store) and derandomized: a given commit sends
the same queries on every run. (Hypothesis also draws literals found in ``src``, so a change
there may change the queries.)
"""

from __future__ import annotations

import json
from typing import Any

import graphql
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings, target
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import (
    CheckContext,
    negative_data_rejection,
    not_a_server_error,
    response_schema_conformance,
)
from schemathesis.graphql import nodes
from schemathesis.graphql.checks import GraphQLServerError

from stepgraph.graphql.schema import build_schema
from tests.api import Api
from tests.conftest import insert
from tests.factories import make_step_result

# Examples per store, shared by the fields (at least 20 each).
TOTAL_EXAMPLES = 300


def _root_fields() -> list[str]:
    document = graphql.parse(build_schema().as_str())
    (query,) = (
        definition
        for definition in document.definitions
        if isinstance(definition, graphql.ObjectTypeDefinitionNode)
        and definition.name.value == "Query"
    )
    return [field.name.value for field in query.fields or ()]


# Nested fields, each fuzzed with the cases of a root field that takes the same arguments or
# gives the same type, moved under a stored parent: the generator alone selects them seldom.
NESTED_FIELDS = {"Flow.stepResults": "stepResults", "StepResult.flow": "flow"}
FIELDS = [*_root_fields(), *NESTED_FIELDS]
MAX_EXAMPLES = max(20, TOTAL_EXAMPLES // len(FIELDS))

FLOW_ID = "flow_fuzz"
OTHER_ORGANIZATION = "org_other"
OTHER_FLOW_ID = "flow_other"
STATUSES = ("pending", "running", "completed", "failed", "skipped", "cancelled")

# Both answers to a request that fails before execution: the legacy 200 for JSON clients and
# the GraphQL-over-HTTP 400 for those that accept `application/graphql-response+json`.
ACCEPT_HEADERS = ("application/json", "application/graphql-response+json", "*/*")
JSON_MEDIA_TYPES = ("application/json", "application/graphql-response+json")
# Errors the request caused that come at a field's `path`, beside partial `data`. Schemathesis
# reads such an error as server-side unless it carries one of Apollo's client codes.
REQUEST_ERROR_CODES = frozenset({"NOT_FOUND"})


def _row(n: int) -> dict[str, Any]:
    prompt = n % 3 == 0
    # Few distinct filter values, and each status in both halves, so that filters combine.
    status = STATUSES[n // 2 % len(STATUSES)]
    day = 10 + n
    return make_step_result(
        id=f"sr_fuzz_{n:02d}",
        flowId=FLOW_ID,
        recordId=f"record_{n % 2}",
        batchExecutionId=f"batch_{n % 2}",
        stepId=f"step_{n % 2}",
        stepType="prompt" if prompt else "api-call",
        order=n % 5 + 1,
        status=status,
        startedAt=None if n % 7 == 0 else f"2024-06-{day}T08:00:00Z",
        completedAt=None if n % 4 == 0 else f"2024-06-{day}T08:00:01.250Z",
        durationMs=None if n % 4 == 0 else 1250 * n,
        createdAt=f"2024-06-{day}T08:00:0{n % 10}Z",
        modelUsed="gpt-4o" if prompt else None,
        promptTokens=100 + n if prompt else None,
        completionTokens=20 + n if prompt else None,
        totalTokens=120 + 2 * n if prompt else None,
        estimatedCost=f"0.00{n}5" if prompt else None,
        resolvedPrompt="Summarise {record}" if prompt else None,
        inputVariables={"record": f"record_{n % 2}", "n": n} if prompt else None,
        recordMetadata={"tier": "gold", "tags": ["a", "b"]} if n % 2 else None,
        stepConfig={"url": "https://example.invalid/api", "retries": 2},
        errorMessage="upstream refused" if status == "failed" else None,
        retryCount=n % 3,
    )


# 16 rows of the caller's organization (`org_1`) in one flow, 4 of another organization's:
# the caller sees none of those, whatever it asks.
ROWS = [_row(n) for n in range(16)] + [
    make_step_result(
        id=f"sr_other_{n}",
        flowId=OTHER_FLOW_ID,
        organizationId=OTHER_ORGANIZATION,
        createdAt=f"2024-07-01T00:00:0{n}Z",
    )
    for n in range(4)
]
STEP_RESULT_IDS = [row["id"] for row in ROWS]


# Strings that have broken stores and query builders elsewhere: LIKE wildcards, quotes,
# backslashes, NUL, astral characters, blanks and a long one.
TRICKY_STRINGS = ["%", "_", "' OR '1'='1", "\\", '"', "\x00", "a\x00b", "🙂", " ", "x" * 2000]


def _values(key: str) -> list[str]:
    return [*sorted({row[key] for row in ROWS}), *TRICKY_STRINGS]


# Stored values and sane page bounds that the generator puts in place of generated arguments
# part of the time. Keys are `Type.field.argument`, `*` for any type or field.
GENERATION_CONFIG: dict[str, Any] = {
    "dictionaries": {
        "flow-ids": {"values": [FLOW_ID, OTHER_FLOW_ID]},
        "flow-lookups": {"values": [FLOW_ID, OTHER_FLOW_ID, *TRICKY_STRINGS]},
        "step-result-ids": {"values": [*STEP_RESULT_IDS, *TRICKY_STRINGS]},
        "record-ids": {"values": _values("recordId")},
        "batch-ids": {"values": _values("batchExecutionId")},
        "step-ids": {"values": _values("stepId")},
        "limits": {"values": [1, 2, 5, 25, 100]},
        "offsets": {"values": [0, 1, 5, 15, 16, 1000]},
    },
    "parameters": {
        "Query.*.flowId": {"dictionary": "flow-ids", "probability": 0.7},
        "Query.flow.id": {"dictionary": "flow-lookups", "probability": 0.7},
        "Query.stepResult.id": {"dictionary": "step-result-ids", "probability": 0.7},
        "*.*.recordId": {"dictionary": "record-ids", "probability": 0.3},
        "*.*.batchId": {"dictionary": "batch-ids", "probability": 0.3},
        "*.*.stepId": {"dictionary": "step-ids", "probability": 0.3},
        "*.*.limit": {"dictionary": "limits", "probability": 0.7},
        "*.*.offset": {"dictionary": "offsets", "probability": 0.7},
    },
}

# Custom scalars that arguments take need strategies: `DateTime` (`from`, `to`) and `_Any`
# (the representations of `_entities`). Schemathesis knows `Long`; the others are output only.
_text = st.text(max_size=30)
_offsets = st.sampled_from(["Z", "+00:00", "+02:00", "-05:30", "z", "-00:00", "+14:00", ""])
# Hypothesis starts from the first branch and element: make them valid, near the rows.
_instants = st.one_of(
    st.builds(
        "2024-06-{:02d}T{:02d}:00:0{}{}".format,
        st.integers(9, 27),
        st.integers(0, 23),
        st.integers(0, 9),
        _offsets,
    ),
    st.builds(lambda value, offset: value.isoformat() + offset, st.datetimes(), _offsets),
    st.dates().map(str),
    st.sampled_from(
        [
            "2024-06-15T10:15:30.250+02:00",
            "2024-06-15t10:15:30Z",
            "2024-02-30",
            "2024-06-15T24:00:00Z",
            "2024-06-15T10:15:60Z",
            "9999-12-31T23:59:59.999999-23:59",
            "0001-01-01T00:00:00+14:00",
            "2024-06-15 10:15:30Z",
            "20240615T101530Z",
            "2024-06-15T10:15:30+0200",
            "",
        ]
    ),
    _text,
)


def _object_field(name: str, value: graphql.ValueNode) -> graphql.ObjectFieldNode:
    return graphql.ObjectFieldNode(name=graphql.NameNode(value=name), value=value)


_scalar_values: st.SearchStrategy[graphql.ValueNode] = st.one_of(
    _text.map(nodes.String),
    st.integers().map(nodes.Int),
    st.booleans().map(nodes.Boolean),
    st.just(nodes.Null),
)
_ids = st.one_of(st.sampled_from([*STEP_RESULT_IDS, FLOW_ID, OTHER_FLOW_ID]), _text)
# Mostly what a router sends (`{__typename, id}` of an entity type), also anything else.
_representations = st.builds(
    lambda typename, fields: nodes.Object([_object_field("__typename", typename), *fields]),
    st.one_of(st.sampled_from(["StepResult", "Flow"]), _text).map(nodes.String),
    st.lists(
        st.one_of(
            st.builds(_object_field, st.just("id"), _ids.map(nodes.String)),
            st.builds(_object_field, st.just("id"), _scalar_values),
            st.builds(
                _object_field,
                st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,7}", fullmatch=True),
                _scalar_values,
            ),
        ),
        max_size=3,
        unique_by=lambda field: field.name.value,
    ),
)
CUSTOM_SCALARS: dict[str, st.SearchStrategy[graphql.ValueNode]] = {
    # Null first: the simplest queries then set no time bounds (equal ones select nothing).
    "DateTime": st.one_of(st.just(nodes.Null), _instants.map(nodes.String)),
    "_Any": st.one_of(_representations, _scalar_values),
}
for _name, _strategy in CUSTOM_SCALARS.items():
    schemathesis.graphql.scalar(_name, _strategy)


def every_error_has_a_code(
    ctx: CheckContext, response: schemathesis.Response, case: schemathesis.Case
) -> None:
    """The body is a JSON object sent as JSON, and each of its `errors` has an `extensions.code`."""
    content_type = (response.headers.get("content-type") or [""])[0]
    assert content_type.startswith(JSON_MEDIA_TYPES), f"not JSON: Content-Type {content_type!r}"
    body = json.loads(response.content)
    assert isinstance(body, dict), f"not a JSON object: {body!r}"
    assert "data" in body or "errors" in body, f"neither data nor errors: {body!r}"
    for error in body.get("errors") or []:
        code = _code(error)
        assert isinstance(code, str), f"an error without extensions.code: {error!r}"
        assert code, f"an error with an empty extensions.code: {error!r}"


def no_server_error(
    ctx: CheckContext, response: schemathesis.Response, case: schemathesis.Case
) -> None:
    """Schemathesis' ``not_a_server_error``, except that a documented NOT_FOUND is no server error.

    ``not_a_server_error`` fails on any 5xx, and on a body whose errors it reads as server
    side: an ``INTERNAL_SERVER_ERROR`` code, or an error at a ``path`` without one of Apollo's
    client codes. The contract answers a flow that does not exist with a NOT_FOUND error at
    the field's path: a response whose errors are all such passes, any other one fails.
    """
    try:
        not_a_server_error(ctx, response, case)
    except GraphQLServerError as failure:
        if not all(_code(error) in REQUEST_ERROR_CODES for error in failure.errors):
            raise


def _code(error: object) -> object:
    extensions = error.get("extensions") if isinstance(error, dict) else None
    return extensions.get("code") if isinstance(extensions, dict) else None


# Built-in checks besides `not_a_server_error`:
# - `negative_data_rejection`: a schema-invalid document comes back with errors;
# - `response_schema_conformance`: for GraphQL, the body is a JSON object and no error says
#   that a non-null field resolved to null.
# Left out: `positive_data_acceptance`, which fails every schema-valid document answered with
# a client error, while the contract refuses some on purpose (BAD_USER_INPUT for `limit: 0`,
# a negative `offset` or `to` before `from`; the depth, alias and token limits). The other
# built-in checks are for OpenAPI operations or stateful runs and do nothing here.
CHECKS = [
    no_server_error,
    every_error_has_a_code,
    negative_data_rejection,
    response_schema_conformance,
]


@pytest.fixture
async def fuzzed(api: Api) -> schemathesis.BaseSchema:
    """The store holding ``ROWS``, and the schema as the running app introspects it."""
    await insert(api.engine, ROWS)
    response = await api.client.post("/graphql", json={"query": graphql.get_introspection_query()})
    assert response.status_code == 200, response.text
    config = schemathesis.Config.from_dict(GENERATION_CONFIG)
    return schemathesis.graphql.from_dict(response.json(), config=config)


@pytest.mark.parametrize("field", FIELDS)
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
async def test_graphql_fuzz(
    api: Api, fuzzed: schemathesis.BaseSchema, field: str, data: st.DataObject
) -> None:
    operation = fuzzed["Query"][NESTED_FIELDS.get(field, field)]
    case = data.draw(
        st.one_of(
            operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
            operation.as_strategy(generation_mode=GenerationMode.NEGATIVE),
        ),
        label="case",
    )
    if field == "Flow.stepResults":
        case.body = _under_flow(case.body)
    elif field == "StepResult.flow":
        # A negative case may be invalid by its `id` alone: it keeps it.
        stored = data.draw(st.sampled_from(STEP_RESULT_IDS), label="step result")
        negative = case.meta is not None and case.meta.generation.mode.is_negative
        case.body = _under_step_result(case.body, None if negative else stored)
    accept = data.draw(st.sampled_from(ACCEPT_HEADERS), label="accept")
    response = await api.client.post(
        "/graphql", json={"query": case.body}, headers={"Accept": accept}
    )
    case.validate_response(response, checks=CHECKS)
    # Steer part of the run towards queries that bring back more of the stored rows.
    target(float(_objects(response.json().get("data"))), label="objects in data")


def _root_field(document: str) -> graphql.FieldNode:
    (operation,) = graphql.parse(document).definitions
    assert isinstance(operation, graphql.OperationDefinitionNode), document
    (field,) = operation.selection_set.selections
    assert isinstance(field, graphql.FieldNode), document
    return field


def _argument(field: graphql.FieldNode, name: str) -> graphql.ValueNode:
    """The value of an argument; a missing one becomes a null, as invalid for a non-null ID."""
    values = [argument.value for argument in field.arguments or () if argument.name.value == name]
    return values[0] if values else graphql.NullValueNode()


def _nest(parent: str, id_: graphql.ValueNode, child: graphql.FieldNode) -> str:
    """``{ parent(id: id_) { id child } }``"""
    name = graphql.NameNode
    selections = (graphql.FieldNode(name=name(value="id")), child)
    field = graphql.FieldNode(
        name=name(value=parent),
        arguments=(graphql.ArgumentNode(name=name(value="id"), value=id_),),
        selection_set=graphql.SelectionSetNode(selections=selections),
    )
    operation = graphql.OperationDefinitionNode(
        operation=graphql.OperationType.QUERY,
        selection_set=graphql.SelectionSetNode(selections=(field,)),
    )
    return graphql.print_ast(graphql.DocumentNode(definitions=(operation,)))


def _under_flow(document: str) -> str:
    """``{ stepResults(flowId: F, A) {...} }`` as ``{ flow(id: F) { id stepResults(A) {...} } }``"""
    field = _root_field(document)
    arguments = tuple(a for a in field.arguments or () if a.name.value != "flowId")
    child = graphql.FieldNode(
        name=field.name, arguments=arguments, selection_set=field.selection_set
    )
    return _nest("flow", _argument(field, "flowId"), child)


def _under_step_result(document: str, step_result_id: str | None) -> str:
    """``{ flow(id: F) {...} }`` as ``{ stepResult(id: S) { id flow {...} } }``, F if no S."""
    field = _root_field(document)
    id_ = (
        _argument(field, "id")
        if step_result_id is None
        else graphql.StringValueNode(value=step_result_id)
    )
    return _nest(
        "stepResult", id_, graphql.FieldNode(name=field.name, selection_set=field.selection_set)
    )


def _objects(value: object) -> int:
    if isinstance(value, dict):
        return 1 + sum(_objects(item) for item in value.values())
    if isinstance(value, list):
        return sum(_objects(item) for item in value)
    return 0


async def test_a_nul_character_in_a_string_argument_is_no_server_error(api: Api) -> None:
    await insert(api.engine, ROWS)
    for query in (
        '{ stepResults(flowId: "flow\\u0000") { data { id } } }',
        '{ stepResults(flowId: "flow_fuzz", recordId: "record\\u0000") { data { id } } }',
        '{ stepResult(id: "sr\\u0000") { id } }',
        '{ flow(id: "flow\\u0000") { id } }',
    ):
        response = await api.client.post("/graphql", json={"query": query})
        assert response.status_code < 500, (query, response.text)
        codes = [_code(error) for error in response.json().get("errors", [])]
        assert "INTERNAL_SERVER_ERROR" not in codes, (query, response.text)
