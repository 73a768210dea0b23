"""Property: for generated rows and arguments, REST and GraphQL return what the oracle does."""

from __future__ import annotations

import itertools
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.api import Api
from tests.conftest import insert
from tests.factories import make_step_result
from tests.oracle import expected_page
from tests.pages import fetch

# Few distinct values, so that filters hit and sorts tie; ids mix case and non-ASCII
# to pin byte-wise id order on every store.
INSTANTS = [
    "2024-06-15T10:00:00Z",
    "2024-06-15T12:00:00+02:00",  # the same instant as the previous one
    "2024-06-15T10:00:00.000001Z",
    "2024-06-15T09:59:59.999999-00:30",
    "2024-06-16T00:00:00Z",
    "2024-06-17T23:00:00+05:45",
]
BOUNDS = [*INSTANTS, "2024-06-15", "2024-06-16", "2024-06-18"]
STATUSES = ["pending", "running", "completed", "failed", "skipped", "cancelled"]
SORTS = [
    "createdAt",
    "startedAt",
    "completedAt",
    "durationMs",
    "order",
    "totalTokens",
    "estimatedCost",
]

rows_strategy = st.lists(
    st.fixed_dictionaries(
        {
            "id": st.text("aAbBzZ09_-é", min_size=1, max_size=4),
            "recordId": st.sampled_from([None, "rec_1", "rec_2"]),
            "batchExecutionId": st.sampled_from([None, "batch_1", "batch_2"]),
            "status": st.sampled_from(STATUSES),
            "stepId": st.sampled_from(["step_1", "step_2"]),
            "order": st.integers(0, 3),
            "createdAt": st.sampled_from(INSTANTS),
            "startedAt": st.sampled_from([None, *INSTANTS]),
            "completedAt": st.sampled_from([None, *INSTANTS]),
            "durationMs": st.sampled_from([None, 0, 1, 1000, 86_400_000]),
            "totalTokens": st.sampled_from([None, 0, 10, 12_000]),
            "estimatedCost": st.sampled_from(
                [None, "0", "0.0045", "0.00450", 0.1, "12.5", "0.0000000001", "-0.5"]
            ),
        }
    ),
    min_size=4,
    max_size=30,
    unique_by=lambda row: row["id"],
)

FILTER_VALUES = {
    "recordId": st.sampled_from(["rec_1", "rec_2", "rec_3"]),
    "batchId": st.sampled_from(["batch_1", "batch_2"]),
    "status": st.sampled_from(STATUSES),
    "stepId": st.sampled_from(["step_1", "step_2"]),
    "from": st.sampled_from(BOUNDS),
    "to": st.sampled_from(BOUNDS),
}


@st.composite
def params_strategy(draw: st.DrawFn) -> dict[str, Any]:
    """Zero to two filters (more would leave most pages empty), any sort and window."""
    names = draw(st.lists(st.sampled_from(sorted(FILTER_VALUES)), max_size=2, unique=True))
    params = {name: draw(FILTER_VALUES[name]) for name in names}
    extra = st.fixed_dictionaries(
        {},
        optional={
            "sortBy": st.sampled_from(SORTS),
            "sortOrder": st.sampled_from(["asc", "desc"]),
            "limit": st.integers(1, 10),
            "offset": st.integers(0, 12),
        },
    )
    return {**params, **draw(extra)}


_flows = itertools.count()


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(rows=rows_strategy, params=params_strategy())
async def test_rest_and_graphql_agree_with_the_oracle(
    api: Api, engine: AsyncEngine, rows: list[dict[str, Any]], params: dict[str, Any]
) -> None:
    # Each example gets its own flow in the test's fresh store, so examples never see
    # each other's rows.
    flow_id = f"flow_{next(_flows)}"
    # An anchor row makes the flow exist even when no generated row does.
    anchor = make_step_result(id=f"{flow_id}:anchor", flowId=flow_id)
    rows = [
        anchor,
        *(
            make_step_result(**{**row, "id": f"{flow_id}:{row['id']}", "flowId": flow_id})
            for row in rows
        ),
    ]
    await insert(engine, rows)
    if "from" in params and "to" in params:
        lower, upper = sorted([params["from"], params["to"]], key=_instant)
        params = {**params, "from": lower, "to": upper}

    expected_rows, has_more = expected_page(rows, flow_id, params)
    event("non-empty page" if expected_rows else "empty page")
    for transport in ("rest", "graphql"):
        outcome = await fetch(api, transport, flow_id, **params)
        assert outcome.code is None, (transport, outcome)
        assert outcome.rows == expected_rows, transport
        assert outcome.pagination is not None
        assert outcome.pagination["hasMore"] is has_more, transport


def _instant(text: str) -> Any:
    from stepgraph.timestamps import parse_instant

    return parse_instant(text, allow_date=True)
