"""Tenant isolation: another organization's rows are, to the caller, rows that do not exist."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.api import Api
from tests.conftest import insert
from tests.factories import make_step_result

MINE = [make_step_result(id=f"A:{i}", flowId="flow_a", organizationId="org_a") for i in range(3)]
THEIRS = [make_step_result(id=f"B:{i}", flowId="flow_b", organizationId="org_b") for i in range(3)]

ENTITIES = """
query($reps: [_Any!]!) { _entities(representations: $reps) {
  ... on StepResult { id organizationId } ... on Flow { id } } }
"""


@pytest.fixture
async def caller(api: Api, engine: AsyncEngine) -> Api:
    await insert(engine, MINE + THEIRS)
    await api.login("org_a")
    return api


async def test_the_list_of_another_organizations_flow_is_not_found(caller: Api) -> None:
    body = await caller.graphql('{ stepResults(flowId: "flow_b") { data { id } } }')
    assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    assert body["data"] == {"stepResults": None}
    assert (await caller.rest("flow_b")).status_code == 404


async def test_not_found_reads_the_same_as_for_a_flow_that_never_existed(caller: Api) -> None:
    theirs = await caller.rest("flow_b")
    nobody = await caller.rest("flow_nobody")
    assert theirs.json()["error"]["message"].replace("flow_b", "X") == nobody.json()["error"][
        "message"
    ].replace("flow_nobody", "X")


async def test_lookups_of_another_organizations_rows_are_null(caller: Api) -> None:
    body = await caller.graphql(
        '{ stepResult(id: "B:0") { id } flow(id: "flow_b") { id } '
        'mine: stepResult(id: "A:0") { id } }'
    )
    assert body == {"data": {"stepResult": None, "flow": None, "mine": {"id": "A:0"}}}


async def test_entities_of_another_organization_resolve_to_null(caller: Api) -> None:
    representations = [
        {"__typename": "StepResult", "id": "B:0"},
        {"__typename": "StepResult", "id": "A:0"},
        {"__typename": "Flow", "id": "flow_b"},
        {"__typename": "Flow", "id": "flow_a"},
    ]
    body = await caller.graphql(ENTITIES, reps=representations)
    assert body["data"]["_entities"] == [
        None,
        {"id": "A:0", "organizationId": "org_a"},
        None,
        {"id": "flow_a"},
    ]


# --- property: no response to one organization ever names another's ids ---

ORGANIZATIONS = ("org_a", "org_b", "org_c")
_runs = itertools.count()

rows_strategy = st.lists(
    st.tuples(st.sampled_from(ORGANIZATIONS), st.integers(0, 2), st.sampled_from(["x", "y"])),
    min_size=1,
    max_size=15,
)


def _queries(flow_ids: list[str], row_ids: list[str]) -> list[tuple[str, dict[str, Any]]]:
    queries: list[tuple[str, dict[str, Any]]] = []
    for flow_id in flow_ids:
        queries.append(
            (
                "query($f: ID!) { stepResults(flowId: $f, limit: 100) { data { id flow { id } } } "
                "flow(id: $f) { id stepResults(limit: 100) { data { id } } } }",
                {"f": flow_id},
            )
        )
    for row_id in row_ids:
        queries.append(("query($i: ID!) { stepResult(id: $i) { id flowId } }", {"i": row_id}))
    representations = [{"__typename": "StepResult", "id": i} for i in row_ids] + [
        {"__typename": "Flow", "id": f} for f in flow_ids
    ]
    queries.append((ENTITIES, {"reps": representations}))
    return queries


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(rows=rows_strategy)
async def test_no_response_to_one_organization_names_another_organizations_ids(
    api: Api, engine: AsyncEngine, rows: list[tuple[str, int, str]]
) -> None:
    run = next(_runs)
    # Ids carry their organization, so a leak is a substring of the response body.
    made = [
        make_step_result(
            id=f"{org}:r{run}:{n}",
            organizationId=org,
            flowId=f"{org}:f{run}:{flow}",
            recordId=record,
        )
        for n, (org, flow, record) in enumerate(rows)
    ]
    await insert(engine, made)
    flow_ids = sorted({r["flowId"] for r in made} | {f"org_a:f{run}:missing"})
    row_ids = [r["id"] for r in made]
    for organization in ORGANIZATIONS:
        await api.login(organization)
        others = tuple(f"{other}:" for other in ORGANIZATIONS if other != organization)
        for query, variables in _queries(flow_ids, row_ids):
            body = await api.graphql(query, **variables)
            leaked = [v for v in _strings(body.get("data")) if v.startswith(others)]
            assert leaked == [], (organization, query)
            # Errors may only echo what the caller sent, as for ids that never existed.
            assert all(e["extensions"]["code"] == "NOT_FOUND" for e in body.get("errors", []))
        for flow_id in flow_ids:
            response = await api.rest(flow_id, limit=100)
            if response.status_code == 200:
                assert [v for v in _strings(response.json()) if v.startswith(others)] == []
            else:
                assert response.status_code == 404


def _strings(value: Any) -> list[str]:
    """Every string inside a JSON value."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []
