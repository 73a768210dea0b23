"""Rows read in their JSON form (``reads.fetch_json_page``) are exactly the typed rows rendered.

The REST twin and the compiled GraphQL path send what ``fetch_json_page`` returns; the
contract's renderer (``records.step_result_json``) of ``fetch_page``'s typed rows is the
oracle, on every store, for generated values and for values only a foreign writer leaves.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from stepgraph.domain import STEP_RESULT_FIELDS
from stepgraph.query import PageLimits, StepResultQuery
from stepgraph.records import step_result_json
from stepgraph.store import reads
from stepgraph.store.json_rows import render_instant
from stepgraph.timestamps import format_instant
from tests.conftest import insert
from tests.factories import make_step_result

_flows = itertools.count()

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=12,
)
instants = st.datetimes(
    min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)
)


def _contract_instant(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


async def _both(engine: AsyncEngine, flow_id: str) -> tuple[list[Any], list[Any] | Exception]:
    """(typed rows rendered by the contract, JSON rows) of a flow's first page, or the error.

    Each row is its list of (field, value) pairs: the order of the fields is what clients
    receive too."""
    query = StepResultQuery.build(flow_id=flow_id, limits=PageLimits(), limit=100)
    async with engine.connect() as connection:
        page = await reads.fetch_page(connection, query)
        expected = [list(step_result_json(row).items()) for row in page.rows]
        try:
            json_page = await reads.fetch_json_page(connection, query)
            actual: list[Any] | Exception = [list(row.items()) for row in json_page.rows]
        except Exception as error:
            actual = error
    return expected, actual


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    values=st.lists(
        st.tuples(
            st.dictionaries(st.text(max_size=5), json_values, max_size=3) | st.none(),
            instants,
            instants | st.none(),
            st.decimals(min_value=0, max_value=10**7, places=10, allow_nan=False) | st.none(),
        ),
        min_size=1,
        max_size=5,
    )
)
async def test_json_rows_are_the_typed_rows_rendered(
    engine: AsyncEngine, values: list[tuple[Any, datetime, datetime | None, Any]]
) -> None:
    flow_id = f"flow_{next(_flows)}"
    rows = [
        make_step_result(
            id=f"{flow_id}_{i}",
            flowId=flow_id,
            stepConfig=config,
            createdAt=_contract_instant(created),
            startedAt=None if started is None else _contract_instant(started),
            estimatedCost=None if cost is None else str(cost),
        )
        for i, (config, created, started, cost) in enumerate(values)
    ]
    # Integers beyond 64 bits are stored and read back, but orjson cannot send them.
    await insert(engine, rows)
    expected, actual = await _both(engine, flow_id)
    assert actual == expected
    assert [len(row) for row in actual] == [len(STEP_RESULT_FIELDS)] * len(rows)


FOREIGN_VALUES = [
    ("started_at", "'2024-06-15 12:00:00+02:00'"),
    ("started_at", "'2024-06-15T12:00:00.5'"),
    ("started_at", "'2024-06-15'"),
    ("completed_at", "'0999-01-01 00:00:00.000000'"),
    ("completed_at", "'not a time'"),
    # The form UTCDateTime writes, but not an instant; and one with an offset in its place.
    ("completed_at", "'2024-02-30 12:00:00.000000'"),
    ("completed_at", "'2024-06-15 12:00:00.5+0000'"),
    ("completed_at", "'2024-06-15 12:00:00.120000'"),
    ("completed_at", "12345"),
    ("step_config", "'[NaN, Infinity, -0.0, 1e400]'"),
    ("step_config", """'{"n": 123456789012345678901234567890, "s": "\\ud800"}'"""),
    ("step_config", "'{not json'"),
    # A long number after text that is not ASCII, and digits that are not ASCII.
    ("step_config", """'{"é": "ü", "n": 12345678901234567890123}'"""),
    ("step_config", """'{"n": 1, "s": "١٢٣٤٥٦٧٨٩٠١٢٣٤٥٦٧٨٩٠"}'"""),
    ("step_config", "42"),
    ("estimated_cost", "'abc'"),
]


@pytest.mark.parametrize(("column", "value"), FOREIGN_VALUES)
async def test_values_a_foreign_writer_left_render_or_fail_as_the_typed_row(
    engine: AsyncEngine, column: str, value: str
) -> None:
    if engine.dialect.name != "sqlite":
        pytest.skip("SQLite's dynamic typing is what lets such values in")
    flow_id = f"flow_{next(_flows)}"
    await insert(engine, [make_step_result(id=f"{flow_id}_0", flowId=flow_id)])
    async with engine.begin() as connection:
        await connection.execute(
            text(f"UPDATE step_results SET {column} = {value} WHERE flow_id = :flow"),
            {"flow": flow_id},
        )
    try:
        expected, actual = await _both(engine, flow_id)
    except Exception as typed_error:  # the typed read fails: the JSON read must fail alike
        query = StepResultQuery.build(flow_id=flow_id, limits=PageLimits())
        async with engine.connect() as connection:
            with pytest.raises(type(typed_error)):
                await reads.fetch_json_page(connection, query)
        return
    assert actual == expected


@pytest.mark.parametrize(
    "value",
    [
        datetime(2024, 6, 15, 10, 15, 30, tzinfo=UTC),
        datetime(2024, 6, 15, 10, 15, 30, 250000, tzinfo=UTC),
        datetime(999, 1, 1, tzinfo=UTC),
        datetime(1, 1, 1, 0, 0, 0, 1, tzinfo=UTC),
        datetime(2024, 6, 15, 12, tzinfo=timezone(timedelta(hours=2))),
        datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    ],
)
def test_render_instant_is_format_instant(value: datetime) -> None:
    assert render_instant(value) == format_instant(value)
