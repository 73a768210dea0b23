"""Cursor paging over the API: every row once, in the contract's order, both ways, every store."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.api import Api
from tests.conftest import insert
from tests.connections import CursorPage, fetch_page
from tests.factories import make_step_result
from tests.oracle import expected_page

SORTS = [
    "createdAt",
    "startedAt",
    "completedAt",
    "durationMs",
    "order",
    "totalTokens",
    "estimatedCost",
]
# Few values and many NULLs, so sort keys tie and the NULL stretch is rarely empty; ids mix
# case and non-ASCII to pin byte-wise id order on every store.
INSTANTS = [
    "2024-06-15T10:00:00Z",
    "2024-06-15T12:00:00+02:00",  # the same instant as the previous one
    "2024-06-15T10:00:00.000001Z",
    "2024-06-16T00:00:00Z",
]
rows_strategy = st.lists(
    st.fixed_dictionaries(
        {
            "id": st.text("aAzZ09_-é", min_size=1, max_size=3),
            "recordId": st.sampled_from([None, "rec_1", "rec_2"]),
            "order": st.integers(0, 2),
            "createdAt": st.sampled_from(INSTANTS),
            "startedAt": st.sampled_from([None, *INSTANTS]),
            "completedAt": st.sampled_from([None, None, *INSTANTS]),
            "durationMs": st.sampled_from([None, 0, 1000]),
            "totalTokens": st.sampled_from([None, None, 0, 12_000]),
            "estimatedCost": st.sampled_from([None, "0", "0.0045", "0.00450", "-0.5", "12.5"]),
        }
    ),
    max_size=12,
    unique_by=lambda row: row["id"],
)
_flows = itertools.count()


async def walk(api: Api, flow_id: str, size: int, *, backward: bool, **params: Any) -> CursorPage:
    """Every page from one end to the other; returns all edges in the list's order."""
    ids: list[str] = []
    cursors: list[str] = []
    cursor: str | None = None
    for number in itertools.count():
        assert number <= 20, "paging does not end"
        if backward:
            page = await fetch_page(api, flow_id, last=size, before=cursor, **params)
            ids[:0], cursors[:0] = page.ids, page.cursors
            more, started = page.page_info["hasPreviousPage"], page.page_info["hasNextPage"]
            cursor = page.page_info["startCursor"]
        else:
            page = await fetch_page(api, flow_id, first=size, after=cursor, **params)
            ids += page.ids
            cursors += page.cursors
            more, started = page.page_info["hasNextPage"], page.page_info["hasPreviousPage"]
            cursor = page.page_info["endCursor"]
        # Exact, not merely allowed: only the first page has nothing behind it.
        assert started is (number > 0)
        assert page.page_info["startCursor"] == (page.cursors[0] if page.cursors else None)
        assert page.page_info["endCursor"] == (page.cursors[-1] if page.cursors else None)
        if not more:
            return CursorPage(ids=ids, cursors=cursors, page_info={}, total_count=None)
    raise AssertionError("unreachable")


@pytest.mark.parametrize(("sort_by", "sort_order"), list(itertools.product(SORTS, ["asc", "desc"])))
@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    rows=rows_strategy,
    size=st.integers(1, 4),
    filters=st.sampled_from([{}, {"recordId": "rec_1"}]),
    data=st.data(),
)
async def test_paging_both_ways_sees_every_row_once_in_the_oracles_order(
    api: Api,
    engine: AsyncEngine,
    sort_by: str,
    sort_order: str,
    rows: list[dict[str, Any]],
    size: int,
    filters: dict[str, str],
    data: st.DataObject,
) -> None:
    flow_id = f"flow_{next(_flows)}"
    # The anchor makes the flow exist; it matches no filter.
    stored = [make_step_result(id=f"{flow_id}:anchor", flowId=flow_id, recordId="rec_0")]
    stored += [
        make_step_result(**{**row, "id": f"{flow_id}:{row['id']}", "flowId": flow_id})
        for row in rows
    ]
    await insert(engine, stored)
    params = {**filters, "sortBy": sort_by, "sortOrder": sort_order}
    expected = [row["id"] for row in expected_page(stored, flow_id, {**params, "limit": 100})[0]]

    forward = await walk(api, flow_id, size, backward=False, **params)
    assert forward.ids == expected
    backward = await walk(api, flow_id, size, backward=True, **params)
    assert backward.ids == expected
    assert backward.cursors == forward.cursors

    # A window between two cursors (or an open end), read from either end.
    start = data.draw(st.integers(-1, len(expected) - 1), label="after index")
    end = data.draw(st.integers(start + 1, len(expected)), label="before index")
    bounds = {
        "after": forward.cursors[start] if start >= 0 else None,
        "before": forward.cursors[end] if end < len(expected) else None,
    }
    window = expected[start + 1 : end]

    head = await fetch_page(api, flow_id, first=size, **bounds, **params)
    assert head.ids == window[:size]
    assert head.page_info["hasPreviousPage"] is (start >= 0)
    assert head.page_info["hasNextPage"] is (start + 1 + len(head.ids) < len(expected))

    tail = await fetch_page(api, flow_id, last=size, **bounds, **params)
    assert tail.ids == window[-size:] if window else tail.ids == []
    assert tail.page_info["hasPreviousPage"] is (end - len(tail.ids) > 0)
    assert tail.page_info["hasNextPage"] is (end < len(expected))
