"""Step-result stats: ``stepResultStats`` and ``Flow.stats`` against a plain-Python oracle."""

from __future__ import annotations

import itertools
from dataclasses import replace
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from stepgraph.query import StepResultFilter
from stepgraph.settings import Settings
from stepgraph.store.stats import stats_statement
from stepgraph.timestamps import parse_instant
from tests.api import Api, running
from tests.conftest import insert
from tests.factories import make_step_result
from tests.stats_oracle import STATUSES, expected_stats, measures, percentile_cont

MEASURES = """
fragment Measures on StepResultMeasures {
  count byStatus { status count } promptTokens completionTokens totalTokens estimatedCost
  durationMs { count min max avg p50 p95 }
}
"""
FILTER_VARIABLES = (
    "$recordId: String, $batchId: String, $status: StepStatus, $stepId: String, "
    "$from: DateTime, $to: DateTime"
)
FILTER_ARGUMENTS = (
    "recordId: $recordId, batchId: $batchId, status: $status, stepId: $stepId, from: $from, to: $to"
)
STATS = f"""
query($flowId: ID!, {FILTER_VARIABLES}) {{
  stepResultStats(flowId: $flowId, {FILTER_ARGUMENTS}) {{
    ...Measures byStep {{ stepId stepName order ...Measures }}
  }}
}}
{MEASURES}"""
FLOW_STATS = f"""
query($flowId: ID!, {FILTER_VARIABLES}) {{
  flow(id: $flowId) {{
    stats({FILTER_ARGUMENTS}) {{ ...Measures byStep {{ stepId stepName order ...Measures }} }}
  }}
}}
{MEASURES}"""

# Few distinct values, so that filters hit, durations tie and createdAt ties (broken by
# id); step ids mix case and non-ASCII to pin byte-wise step order on every store.
INSTANTS = [
    "2024-06-15T10:00:00Z",
    "2024-06-15T12:00:00+02:00",  # the same instant as the previous one
    "2024-06-15T10:00:00.000001Z",
    "2024-06-16T00:00:00Z",
    "2024-06-17T23:00:00+05:45",
]
BOUNDS = [*INSTANTS, "2024-06-15", "2024-06-16", "2024-06-18"]
STEP_IDS = ["step_1", "step_2", "Step_1", "stép"]
MAX_INT = 2**31 - 1
MAX_COST = Decimal("99999999.9999999999")

rows_strategy = st.lists(
    st.fixed_dictionaries(
        {
            "id": st.text("aAzZ09_-é", min_size=1, max_size=4),
            "recordId": st.sampled_from([None, "rec_1", "rec_2"]),
            "batchExecutionId": st.sampled_from([None, "batch_1", "batch_2"]),
            "status": st.sampled_from(STATUSES),
            "stepId": st.sampled_from(STEP_IDS),
            # A step's name and order may change between runs: the latest row's count.
            "stepName": st.sampled_from(["Fetch", "Fetch (v2)", "Summarise"]),
            "order": st.integers(0, 3),
            "createdAt": st.sampled_from(INSTANTS),
            "durationMs": st.one_of(
                st.sampled_from([None, None, 0, 1, 250, 250, 1000, 86_400_000, MAX_INT]),
                st.integers(0, MAX_INT),
            ),
            "promptTokens": st.one_of(st.none(), st.integers(0, 5000)),
            "completionTokens": st.one_of(st.none(), st.integers(0, MAX_INT)),
            "totalTokens": st.one_of(st.none(), st.sampled_from([0, 17, MAX_INT])),
            "estimatedCost": st.one_of(
                st.none(),
                st.sampled_from(["0", "0.0045", "0.0000000001", "-0.5", str(MAX_COST)]),
                st.decimals(-MAX_COST, MAX_COST, places=10).map(str),
            ),
        }
    ),
    min_size=1,
    max_size=30,
    unique_by=lambda row: row["id"],
)

FILTER_VALUES = {
    "recordId": st.sampled_from(["rec_1", "rec_2", "rec_3"]),
    "batchId": st.sampled_from(["batch_1", "batch_2"]),
    "status": st.sampled_from(STATUSES),
    "stepId": st.sampled_from(STEP_IDS),
    "from": st.sampled_from(BOUNDS),
    "to": st.sampled_from(BOUNDS),
}


@st.composite
def filters_strategy(draw: st.DrawFn) -> dict[str, Any]:
    """Zero to two filters (more would leave most selections empty); ``from`` <= ``to``."""
    names = draw(st.lists(st.sampled_from(sorted(FILTER_VALUES)), max_size=2, unique=True))
    filters = {name: draw(FILTER_VALUES[name]) for name in names}
    if "from" in filters and "to" in filters:
        lower, upper = sorted([filters["from"], filters["to"]], key=_instant)
        filters.update({"from": lower, "to": upper})
    return filters


def _instant(value: str) -> Any:
    return parse_instant(value, allow_date=True)


def variables(flow_id: str, filters: dict[str, Any]) -> dict[str, Any]:
    """GraphQL variables for ``filters`` given as the contract spells them."""
    status = filters.get("status")
    return {**filters, "flowId": flow_id, "status": status.upper() if status else None}


_flows = itertools.count()


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(rows=rows_strategy, filters=filters_strategy())
async def test_stats_agree_with_the_oracle(
    api: Api, engine: AsyncEngine, rows: list[dict[str, Any]], filters: dict[str, Any]
) -> None:
    # Each example gets its own flow in the test's fresh store.
    flow_id = f"flow_{next(_flows)}"
    rows = [
        make_step_result(**{**row, "id": f"{flow_id}:{row['id']}", "flowId": flow_id})
        for row in rows
    ]
    await insert(engine, rows)

    expected = expected_stats(rows, flow_id, filters)
    event("empty selection" if expected["count"] == 0 else "rows selected")
    body = await api.graphql(STATS, **variables(flow_id, filters))
    assert body == {"data": {"stepResultStats": expected}}


# --- the oracle itself, on values PostgreSQL documents or computes ------------------------


@pytest.mark.parametrize(
    ("values", "percent", "expected"),
    [
        ([7], 95, Fraction(7)),
        ([1, 2, 3, 4], 50, Fraction(5, 2)),
        ([1, 2, 3, 4], 95, Fraction(385, 100)),  # 1 + 0.95 * 3 = rank 3.85 (from 1)
        ([10, 20], 95, Fraction(195, 10)),
        ([0, 0, 5, 5, 5], 50, Fraction(5)),
    ],
)
def test_the_oracle_percentile_is_percentile_cont(
    values: list[int], percent: int, expected: Fraction
) -> None:
    assert percentile_cont([Fraction(v) for v in values], percent) == expected


def test_the_oracle_leaves_nulls_out_and_rounds_to_three_places() -> None:
    rows = [make_step_result(durationMs=d) for d in (None, 1, 1, 2)]
    assert measures(rows)["durationMs"] == {
        "count": 3,
        "min": 1,
        "max": 2,
        "avg": 1.333,
        "p50": 1.0,
        "p95": 1.9,
    }


# --- edges ---------------------------------------------------------------------------------

ROWS = [
    make_step_result(
        id=f"s{n}",
        flowId="flow_1",
        stepId=f"step_{n % 2}",
        order=n % 2,
        status=status,
        durationMs=100 * n,
        totalTokens=10 * n,
        estimatedCost="0.0045",
    )
    for n, status in enumerate(["completed", "failed", "completed", "pending"])
]


@pytest.fixture
async def stored(api: Api, engine: AsyncEngine) -> Api:
    await insert(engine, ROWS)
    return api


async def test_filters_that_match_nothing_give_zero_counts_and_null_measures(
    stored: Api,
) -> None:
    body = await stored.graphql(STATS, flowId="flow_1", stepId="step_missing")
    assert body == {
        "data": {
            "stepResultStats": {
                "count": 0,
                "byStatus": [{"status": s.upper(), "count": 0} for s in STATUSES],
                "promptTokens": None,
                "completionTokens": None,
                "totalTokens": None,
                "estimatedCost": None,
                "durationMs": {
                    "count": 0,
                    "min": None,
                    "max": None,
                    "avg": None,
                    "p50": None,
                    "p95": None,
                },
                "byStep": [],
            }
        }
    }


@pytest.mark.parametrize("flow_id", ["flow_unknown", "flow_theirs"])
async def test_an_unknown_or_another_organizations_flow_is_not_found(
    stored: Api, engine: AsyncEngine, flow_id: str
) -> None:
    await insert(engine, [make_step_result(flowId="flow_theirs", organizationId="org_2")])
    body = await stored.graphql(STATS, flowId=flow_id)
    assert body["data"] == {"stepResultStats": None}
    assert [e["extensions"]["code"] for e in body["errors"]] == ["NOT_FOUND"]
    assert body["errors"][0]["message"] == f"flow {flow_id!r} not found"


async def test_stats_count_only_the_callers_organization(stored: Api, engine: AsyncEngine) -> None:
    await insert(engine, [make_step_result(flowId="flow_theirs", organizationId="org_2")])
    await stored.login("org_2")
    body = await stored.graphql(STATS, flowId="flow_theirs")
    assert body["data"]["stepResultStats"]["count"] == 1
    body = await stored.graphql(STATS, flowId="flow_1")
    assert [e["extensions"]["code"] for e in body["errors"]] == ["NOT_FOUND"]


@pytest.mark.parametrize(
    "filters", [{}, {"status": "completed"}, {"stepId": "step_1", "from": "2024-06-15"}]
)
async def test_flow_stats_equal_the_root_field(stored: Api, filters: dict[str, Any]) -> None:
    root = await stored.graphql(STATS, **variables("flow_1", filters))
    nested = await stored.graphql(FLOW_STATS, **variables("flow_1", filters))
    assert root["data"]["stepResultStats"]["count"] > 0
    assert nested == {"data": {"flow": {"stats": root["data"]["stepResultStats"]}}}


@pytest.mark.parametrize(
    ("arguments", "argument"),
    [
        ('stepId: ""', "stepId"),
        ('from: "2024-06-16", to: "2024-06-15"', "from"),
        ('status: "failed"', "status"),
    ],
)
async def test_invalid_arguments_are_bad_user_input(
    stored: Api, arguments: str, argument: str
) -> None:
    body = await stored.graphql(f'{{ stepResultStats(flowId: "flow_1", {arguments}) {{ count }} }}')
    assert [e["extensions"]["code"] for e in body["errors"]] == ["BAD_USER_INPUT"]
    assert body["errors"][0]["extensions"]["argument"] == argument


async def test_sums_past_32_bits_and_past_64_bit_cost_units_stay_exact(
    api: Api, engine: AsyncEngine
) -> None:
    # Ten maximal costs are 10^19 units of 10^-10 dollars: more than a 64-bit integer holds.
    await insert(
        engine,
        [
            make_step_result(totalTokens=MAX_INT, estimatedCost=str(MAX_COST), durationMs=MAX_INT)
            for _ in range(10)
        ],
    )
    body = await api.graphql(
        '{ stepResultStats(flowId: "flow_1") { totalTokens estimatedCost durationMs { avg } } }'
    )
    assert body == {
        "data": {
            "stepResultStats": {
                "totalTokens": 10 * MAX_INT,
                "estimatedCost": "999999999.999999999",
                "durationMs": {"avg": float(MAX_INT)},
            }
        }
    }


async def test_by_step_names_a_step_after_its_latest_row_and_orders_by_order(
    api: Api, engine: AsyncEngine
) -> None:
    await insert(
        engine,
        [
            make_step_result(stepId="b", stepName="Old", order=1, createdAt="2024-06-15T10:00:00Z"),
            make_step_result(stepId="b", stepName="New", order=0, createdAt="2024-06-16T10:00:00Z"),
            make_step_result(stepId="a", stepName="A", order=1, createdAt="2024-06-17T10:00:00Z"),
        ],
    )
    body = await api.graphql(
        '{ stepResultStats(flowId: "flow_1") { byStep { stepId stepName order count } } }'
    )
    assert body["data"]["stepResultStats"]["byStep"] == [
        {"stepId": "b", "stepName": "New", "order": 0, "count": 2},
        {"stepId": "a", "stepName": "A", "order": 1, "count": 1},
    ]


# --- the store's plan ----------------------------------------------------------------------

ON_SQLITE = pytest.mark.parametrize("store_kind", [pytest.param("sqlite", id="sqlite")])
ON_POSTGRES = pytest.mark.parametrize(
    "store_kind", [pytest.param("postgres", id="postgres", marks=pytest.mark.postgres)]
)


@ON_SQLITE
@pytest.mark.parametrize("by_step", [False, True])
async def test_sqlite_stats_read_one_flow_from_a_covering_index(
    engine: AsyncEngine, by_step: bool
) -> None:
    statement = stats_statement(
        StepResultFilter(flow_id="flow_1"), "org_1", dialect="sqlite", by_step=by_step
    )
    sql = str(statement.compile(engine.sync_engine, compile_kwargs={"literal_binds": True}))
    async with engine.connect() as connection:
        plan = [row[3] for row in await connection.execute(text(f"EXPLAIN QUERY PLAN {sql}"))]
    # Every matching row is read from a (flow_id, ...) index that holds the measured
    # columns, never from the table; by step, only each step's latest row is fetched
    # whole, by its primary key, for the step's name and order.
    reads = [
        step for step in plan if step.startswith(("SCAN", "SEARCH")) and "subquery" not in step
    ]
    rows = [step for step in reads if "step_results" in step and "latest" not in step]
    assert rows, plan
    assert all(
        step.startswith("SEARCH step_results USING COVERING INDEX ix_step_results_flow_")
        and "(flow_id=?" in step
        for step in rows
    ), plan
    latest = [step for step in reads if "latest" in step]
    expected = ["SEARCH latest USING INDEX sqlite_autoindex_step_results_1 (id=?)"]
    assert latest == (expected if by_step else []), plan


@ON_POSTGRES
async def test_stats_over_the_timeout_are_query_timeout(
    settings: Settings, engine: AsyncEngine
) -> None:
    await insert(engine, [make_step_result(flowId="flow_1")])
    async with running(replace(settings, statement_timeout_ms=200), engine) as api:
        await api.login()
        async with engine.connect() as writer:
            await writer.execute(text("LOCK TABLE step_results IN ACCESS EXCLUSIVE MODE"))
            body = await api.graphql(STATS, flowId="flow_1")

    assert body["data"] == {"stepResultStats": None}
    assert [e["extensions"]["code"] for e in body["errors"]] == ["QUERY_TIMEOUT"]
