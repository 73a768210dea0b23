"""The cursor connection over the API: stable cursors, totals on demand, errors, tenancy."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.api import Api
from tests.conftest import insert
from tests.connections import fetch_error, fetch_page, request
from tests.factories import make_step_result
from tests.oracle import expected_page
from tests.pages import graphql_variables

FLOW = "flow_c"
ROWS = [
    make_step_result(
        id=f"sr_c{i}",
        flowId=FLOW,
        createdAt=f"2024-06-15T10:00:0{i}Z",
        status=["completed", "failed"][i % 2],
        recordId=["rec_1", "rec_2", None][i % 3],
        durationMs=None if i % 3 == 0 else 100 * (i % 4),
    )
    for i in range(9)
]
OTHER_FLOW = [make_step_result(id=f"sr_o{i}", flowId="flow_o") for i in range(2)]
THEIRS = [make_step_result(id="sr_t0", flowId="flow_t", organizationId="org_t")]


@pytest.fixture
async def store(engine: AsyncEngine) -> None:
    await insert(engine, ROWS + OTHER_FLOW + THEIRS)


pytestmark = pytest.mark.usefixtures("store")


def oracle_ids(rows: list[dict[str, Any]], **params: Any) -> list[str]:
    return [row["id"] for row in expected_page(rows, FLOW, {**params, "limit": 100})[0]]


@contextmanager
def counts() -> Iterator[list[str]]:
    """The COUNT statements that reach any store while the block runs.

    The app opens its own engine in its lifespan, so this listens on every engine.
    """
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "count(" in statement.lower():
            seen.append(statement)

    event.listen(Engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(Engine, "before_cursor_execute", record)


async def test_rows_inserted_between_pages_are_neither_repeated_nor_skipped(
    api: Api, engine: AsyncEngine
) -> None:
    first = await fetch_page(api, FLOW, first=4)
    assert first.ids == oracle_ids(ROWS)[:4]
    # Newer rows sort before the cursor (newest first): an offset would now repeat rows.
    # Rows tied with the cursor's createdAt fall on either side of it by id.
    tied = ROWS[-4]["createdAt"]
    added = [
        make_step_result(id="sr_c9", flowId=FLOW, createdAt="2024-06-16T00:00:00Z"),
        make_step_result(id="sr_c90", flowId=FLOW, createdAt="2024-06-16T00:00:01Z"),
        make_step_result(id="sr_c5z", flowId=FLOW, createdAt=tied),  # before the cursor
        make_step_result(id="sr_c4z", flowId=FLOW, createdAt=tied),  # after it
    ]
    await insert(engine, added)
    rest = await fetch_page(api, FLOW, first=25, after=first.page_info["endCursor"])
    now = oracle_ids(ROWS + added)
    assert rest.ids == now[now.index(first.ids[-1]) + 1 :]
    assert "sr_c4z" in rest.ids
    assert not set(rest.ids) & {*first.ids, "sr_c9", "sr_c90", "sr_c5z"}


OFFSET_PAGE = """
query($flowId: ID!, $status: StepStatus, $recordId: String, $stepId: String, $withTotal: Boolean!) {
  stepResults(flowId: $flowId, status: $status, recordId: $recordId, stepId: $stepId, limit: 2) {
    data { id }
    totalCount @include(if: $withTotal)
  }
}
"""


@pytest.mark.parametrize(
    "filters",
    [{}, {"status": "failed"}, {"recordId": "rec_1", "status": "completed"}, {"stepId": "none"}],
)
async def test_total_count_follows_the_filters_on_both_connections(
    api: Api, filters: dict[str, str]
) -> None:
    expected = len(oracle_ids(ROWS, **filters))
    page = await fetch_page(api, FLOW, first=2, withTotal=True, **filters)
    assert page.total_count == expected
    body = await api.graphql(OFFSET_PAGE, **graphql_variables(FLOW, filters), withTotal=True)
    assert body["data"]["stepResults"]["totalCount"] == expected


CURSOR_PAGE_WITHOUT_TOTAL = """
query($flowId: ID!) {
  stepResultsConnection(flowId: $flowId, first: 2) { edges { node { id } } }
  flow(id: $flowId) { stepResultsConnection(last: 2) { pageInfo { hasNextPage } } }
}
"""


async def test_total_count_is_not_counted_unless_selected(api: Api) -> None:
    with counts() as seen:
        await fetch_page(api, FLOW, first=2)  # `totalCount @include(if: false)`
        await fetch_page(api, FLOW, first=2, via_flow=True)
        await api.graphql(CURSOR_PAGE_WITHOUT_TOTAL, flowId=FLOW)
        await api.graphql(OFFSET_PAGE, flowId=FLOW, withTotal=False)
    assert seen == []


async def test_total_count_is_counted_once_when_selected(api: Api) -> None:
    with counts() as seen:
        page = await fetch_page(api, FLOW, first=2, withTotal=True)
    assert len(seen) == 1
    assert page.total_count == len(ROWS)
    with counts() as seen:
        body = await api.graphql(OFFSET_PAGE, flowId=FLOW, withTotal=True)
    assert len(seen) == 1
    assert body["data"]["stepResults"]["totalCount"] == len(ROWS)


@pytest.mark.parametrize(
    "params",
    [
        {"first": 3},
        {"last": 4, "sortBy": "durationMs", "sortOrder": "asc"},
        {"first": 2, "status": "failed", "sortBy": "durationMs", "withTotal": True},
    ],
)
async def test_the_flow_field_equals_the_root_field(api: Api, params: dict[str, Any]) -> None:
    root = await fetch_page(api, FLOW, **params)
    via_flow = await fetch_page(api, FLOW, via_flow=True, **params)
    assert via_flow == root
    # Cursors of one serve the other: they describe the same list.
    cursor = root.page_info["endCursor"] if "first" in params else root.page_info["startCursor"]
    direction = "after" if "first" in params else "before"
    onward = await fetch_page(api, FLOW, via_flow=True, **{**params, direction: cursor})
    assert onward == await fetch_page(api, FLOW, **{**params, direction: cursor})


async def test_first_with_before_and_last_with_after_cut_the_window_first(api: Api) -> None:
    order = oracle_ids(ROWS)
    every = await fetch_page(api, FLOW, first=len(ROWS))
    bounds = {"after": every.cursors[1], "before": every.cursors[7]}
    head = await fetch_page(api, FLOW, first=2, **bounds)
    assert head.ids == order[2:4]
    assert (head.page_info["hasPreviousPage"], head.page_info["hasNextPage"]) == (True, True)
    tail = await fetch_page(api, FLOW, last=2, **bounds)
    assert tail.ids == order[5:7]
    assert (tail.page_info["hasPreviousPage"], tail.page_info["hasNextPage"]) == (True, True)
    tail = await fetch_page(api, FLOW, last=2, after=every.cursors[1])
    assert tail.ids == order[-2:]
    assert (tail.page_info["hasPreviousPage"], tail.page_info["hasNextPage"]) == (True, False)


async def test_a_page_past_the_end_is_empty(api: Api) -> None:
    every = await fetch_page(api, FLOW, first=len(ROWS))
    page = await fetch_page(api, FLOW, after=every.cursors[-1])
    assert page.ids == []
    assert page.page_info == {
        "hasNextPage": False,
        "hasPreviousPage": True,
        "startCursor": None,
        "endCursor": None,
    }


async def test_a_filter_matching_nothing_gives_an_empty_page(api: Api) -> None:
    page = await fetch_page(api, FLOW, stepId="none", withTotal=True)
    assert (page.ids, page.total_count) == ([], 0)
    assert not page.page_info["hasNextPage"]
    assert not page.page_info["hasPreviousPage"]


async def _cursor(api: Api, flow_id: str = FLOW, **params: Any) -> str:
    cursor: str = (await fetch_page(api, flow_id, first=1, **params)).cursors[0]
    return cursor


@pytest.mark.parametrize(
    ("params", "argument"),
    [
        ({"first": 2, "last": 2}, "last"),
        ({"first": 0}, "first"),
        ({"first": 101}, "first"),
        ({"last": -1}, "last"),
        ({"after": "bm90IGEgY3Vyc29y"}, "after"),
        ({"before": "%%%"}, "before"),
        ({"after": "made under createdAt", "sortBy": "order"}, "after"),
        ({"after": "made under createdAt", "sortOrder": "asc"}, "after"),
        ({"before": "made under createdAt", "status": "failed"}, "before"),
        ({"after": "made for another flow"}, "after"),
    ],
)
async def test_invalid_paging_arguments_are_bad_user_input(
    api: Api, params: dict[str, Any], argument: str
) -> None:
    for name in ("after", "before"):
        if params.get(name) == "made under createdAt":
            params = {**params, name: await _cursor(api)}
        elif params.get(name) == "made for another flow":
            params = {**params, name: await _cursor(api, "flow_o")}
    assert await fetch_error(api, FLOW, **params) == ("BAD_USER_INPUT", argument)


@pytest.mark.parametrize("flow_id", ["flow_t", "flow_unknown"])
async def test_a_flow_the_caller_cannot_see_is_not_found(api: Api, flow_id: str) -> None:
    assert await fetch_error(api, flow_id, first=2) == ("NOT_FOUND", None)
    body = await request(api, flow_id, via_flow=True, first=2)
    assert body["data"] == {"flow": None}


async def test_another_organization_cannot_use_a_cursor_for_its_own_flow(api: Api) -> None:
    cursor = await _cursor(api)
    await api.login("org_t")
    assert (await fetch_page(api, "flow_t")).ids == ["sr_t0"]
    assert await fetch_error(api, "flow_t", after=cursor) == ("BAD_USER_INPUT", "after")
    assert await fetch_error(api, FLOW, after=cursor) == ("NOT_FOUND", None)
