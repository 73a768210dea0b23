"""Every argument of the contract, alone and combined, through REST and GraphQL alike."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from stepgraph.domain import StepStatus
from stepgraph.query import InvalidArgument, PageLimits
from stepgraph.rest import page_query
from tests.api import Api
from tests.conftest import insert
from tests.factories import make_step_result
from tests.oracle import expected_page
from tests.pages import TRANSPORTS, fetch

FLOW = "flow_a"

ROWS: list[dict[str, Any]] = [
    make_step_result(
        id=f"sr_{i:02d}",
        flowId=FLOW,
        recordId=["rec_1", "rec_2", None][i % 3],
        batchExecutionId=["batch_1", "batch_2", None, "batch_1"][i % 4],
        status=["completed", "failed", "running", "pending", "skipped", "cancelled"][i % 6],
        stepId=f"step_{i % 2 + 1}",
        order=i % 3,
        # Pairs of rows share createdAt so the id tie-breaker matters.
        createdAt=f"2024-06-{10 + i // 2:02d}T09:00:00+02:00",
        startedAt=None if i % 5 == 0 else f"2024-06-{10 + i // 2:02d}T07:00:0{i % 3}Z",
        completedAt=None if i % 4 == 0 else f"2024-06-{10 + i // 2:02d}T07:00:5{i % 2}Z",
        durationMs=None if i % 4 == 0 else (i % 3) * 1000,
        totalTokens=None if i % 3 == 0 else 100 * (i % 4),
        estimatedCost=None if i % 5 == 1 else ["0.0045", "0.0100", "0.01", "1.5"][i % 4],
    )
    for i in range(14)
]
OTHER_FLOW_ROWS = [make_step_result(id=f"other_{i}", flowId="flow_b") for i in range(3)]


@pytest.fixture
async def store(engine: AsyncEngine) -> None:
    await insert(engine, ROWS + OTHER_FLOW_ROWS)


pytestmark = pytest.mark.usefixtures("store")


async def assert_page(api: Api, transport: str, **params: Any) -> list[str]:
    outcome = await fetch(api, transport, FLOW, **params)
    rows, has_more = expected_page(ROWS, FLOW, params)
    assert outcome.code is None, outcome
    assert outcome.rows == rows
    assert outcome.pagination == {
        "limit": int(params.get("limit", 25)),
        "offset": int(params.get("offset", 0)),
        "returned": len(rows),
        "hasMore": has_more,
    }
    return outcome.ids


FILTERS = [
    {"recordId": "rec_1"},
    {"batchId": "batch_1"},
    {"status": "failed"},
    {"stepId": "step_2"},
    {"from": "2024-06-13T07:00:00Z"},
    {"to": "2024-06-13T07:00:00Z"},
    {"from": "2024-06-12", "to": "2024-06-14"},
    {"from": "2024-06-12T09:00:00+02:00"},
]


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("params", FILTERS, ids=lambda p: ",".join(p))
async def test_each_filter_selects_its_rows(
    api: Api, transport: str, params: dict[str, str]
) -> None:
    ids = await assert_page(api, transport, **params)
    assert 0 < len(ids) < len(ROWS)


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_filters_combine(api: Api, transport: str) -> None:
    ids = await assert_page(
        api, transport, recordId="rec_1", stepId="step_1", **{"from": "2024-06-11"}
    )
    assert ids


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_the_flow_itself_is_a_filter(api: Api, transport: str) -> None:
    outcome = await fetch(api, transport, "flow_b")
    assert sorted(outcome.ids) == ["other_0", "other_1", "other_2"]


SORTS = [
    "createdAt",
    "startedAt",
    "completedAt",
    "durationMs",
    "order",
    "totalTokens",
    "estimatedCost",
]


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("sort_order", ["asc", "desc"])
@pytest.mark.parametrize("sort_by", SORTS)
async def test_every_sort_matches_the_contract(
    api: Api, transport: str, sort_by: str, sort_order: str
) -> None:
    await assert_page(api, transport, sortBy=sort_by, sortOrder=sort_order)


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("sort_order", ["asc", "desc"])
async def test_nulls_come_last_in_both_directions(
    api: Api, transport: str, sort_order: str
) -> None:
    outcome = await fetch(api, transport, FLOW, sortBy="durationMs", sortOrder=sort_order)
    nulls = [row["durationMs"] is None for row in outcome.rows]
    assert nulls == sorted(nulls)
    assert any(nulls)


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_ties_are_broken_by_id_in_the_sort_direction(api: Api, transport: str) -> None:
    ascending = await fetch(api, transport, FLOW, sortBy="createdAt", sortOrder="asc", limit=2)
    descending = await fetch(api, transport, FLOW, sortBy="createdAt", sortOrder="desc", limit=2)
    assert ascending.ids == ["sr_00", "sr_01"]
    assert descending.ids == ["sr_13", "sr_12"]


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_default_order_is_newest_first(api: Api, transport: str) -> None:
    outcome = await fetch(api, transport, FLOW)
    assert outcome.ids[:3] == ["sr_13", "sr_12", "sr_11"]


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize(
    ("limit", "offset", "returned", "has_more"),
    [(14, 0, 14, False), (13, 0, 13, True), (1, 13, 1, False), (1, 12, 1, True), (5, 10, 4, False)],
)
async def test_has_more_is_exact_at_the_boundary(
    api: Api, transport: str, limit: int, offset: int, returned: int, has_more: bool
) -> None:
    outcome = await fetch(api, transport, FLOW, limit=limit, offset=offset)
    assert outcome.pagination == {
        "limit": limit,
        "offset": offset,
        "returned": returned,
        "hasMore": has_more,
    }


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_offset_past_the_end_is_an_empty_page(api: Api, transport: str) -> None:
    outcome = await fetch(api, transport, FLOW, offset=1000)
    assert outcome.code is None
    assert outcome.pagination == {"limit": 25, "offset": 1000, "returned": 0, "hasMore": False}


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_paging_visits_every_row_once(api: Api, transport: str) -> None:
    seen: list[str] = []
    for offset in range(0, 14, 4):
        seen += (await fetch(api, transport, FLOW, sortBy="durationMs", limit=4, offset=offset)).ids
    assert sorted(seen) == sorted(r["id"] for r in ROWS)


INVALID = [
    ({"limit": 0}, "limit"),
    ({"limit": 101}, "limit"),
    ({"limit": -1}, "limit"),
    ({"offset": -5}, "offset"),
    ({"from": "not a date"}, "from"),
    ({"to": "2024-06-31"}, "to"),
    ({"from": "2024-06-15", "to": "2024-06-14"}, "from"),
    ({"status": "finished"}, "status"),
    ({"sortBy": "name"}, "sortBy"),
    ({"sortOrder": "sideways"}, "sortOrder"),
    ({"recordId": ""}, "recordId"),
]


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize(("params", "argument"), INVALID, ids=lambda v: str(v))
async def test_invalid_arguments_are_bad_user_input_naming_the_argument(
    api: Api, transport: str, params: dict[str, Any], argument: str
) -> None:
    outcome = await fetch(api, transport, FLOW, **params)
    assert (outcome.code, outcome.argument) == ("BAD_USER_INPUT", argument)
    assert outcome.status_code == (400 if transport == "rest" else 200)


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_an_unknown_flow_is_not_found(api: Api, transport: str) -> None:
    outcome = await fetch(api, transport, "no_such_flow")
    assert outcome.code == "NOT_FOUND"
    assert outcome.status_code == (404 if transport == "rest" else 200)


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_flow_ids_are_case_sensitive(api: Api, transport: str) -> None:
    assert (await fetch(api, transport, FLOW.upper())).code == "NOT_FOUND"


def test_a_page_url_is_parsed_once_and_refused_every_time() -> None:
    page_query.cache_clear()
    limits = PageLimits(maximum=50)
    first = page_query("flow_1", b"limit=5&status=failed&from=2024-01-01T00%3A00%3A00Z", limits)
    again = page_query("flow_1", b"limit=5&status=failed&from=2024-01-01T00%3A00%3A00Z", limits)
    assert again is first
    assert (first.limit, first.status, first.created_from) == (
        5,
        StepStatus.FAILED,
        datetime(2024, 1, 1, tzinfo=UTC),
    )
    # The same URL under other limits is another question.
    with pytest.raises(InvalidArgument):
        page_query("flow_1", b"limit=5&status=failed", PageLimits(maximum=4))
    for _ in range(2):
        with pytest.raises(InvalidArgument, match="limit"):
            page_query("flow_1", b"limit=0", limits)
    assert page_query.cache_info().currsize == 1
