"""DirectRead: one trip to SQLite, and the same answers, errors and timeouts as the engine's.

These run on each store: on SQLite the statement goes to aiosqlite directly, elsewhere
through SQLAlchemy; either way the rows must be what ``connection.execute`` gives.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Integer, bindparam, func, literal, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from stepgraph.settings import Settings
from stepgraph.store import direct, reads
from stepgraph.store.direct import DirectRead
from stepgraph.store.engine import StatementTimeout, UnstorableText, create_engine
from stepgraph.store.tables import step_results
from tests.conftest import insert
from tests.factories import make_step_result

c = step_results.c

# Typed binds (an instant, compared as the store keeps it) and typed results (an
# instant, an exact cost, JSON): what the column types' processors convert.
BY_FLOW_SINCE = (
    select(c.id, c.created_at, c.estimated_cost, c.record_metadata, c.duration_ms)
    .where(
        c.flow_id == bindparam("flow_id", type_=c.flow_id.type),
        c.created_at >= bindparam("since", type_=c.created_at.type),
    )
    .order_by(c.id)
)


async def test_rows_are_what_sqlalchemy_gives(engine: AsyncEngine) -> None:
    await insert(
        engine,
        [
            make_step_result(
                id="sr_1",
                flowId="flow_1",
                createdAt="2024-06-01T10:00:00.250Z",
                estimatedCost="0.0000012345",
                recordMetadata={"tier": "gold", "n": [1, 2]},
            ),
            make_step_result(id="sr_2", flowId="flow_1", createdAt="2024-06-02T00:00:00Z"),
            make_step_result(id="sr_3", flowId="flow_1", createdAt="2024-05-01T00:00:00Z"),
            make_step_result(id="sr_4", flowId="flow_2", createdAt="2024-06-03T00:00:00Z"),
        ],
    )
    values = {"flow_id": "flow_1", "since": datetime(2024, 6, 1, 10, tzinfo=UTC)}
    read = DirectRead(BY_FLOW_SINCE, values)
    async with engine.connect() as connection:
        expected = [tuple(row) for row in await connection.execute(BY_FLOW_SINCE, values)]
        rows = await read.all(connection, values)
        again = await read.all(connection, {**values, "flow_id": "flow_2"})

    assert [row[0] for row in rows] == ["sr_1", "sr_2"]
    assert [tuple(row) for row in rows] == expected
    first = rows[0]
    assert first[1] == datetime(2024, 6, 1, 10, 0, 0, 250000, tzinfo=UTC)
    assert first[2] == Decimal("0.0000012345")
    assert first[3] == {"tier": "gold", "n": [1, 2]}
    assert [row[0] for row in again] == ["sr_4"]


async def test_every_named_value_is_required(engine: AsyncEngine) -> None:
    read = DirectRead(BY_FLOW_SINCE, ["flow_id", "since"])
    async with engine.connect() as connection:
        with pytest.raises(ValueError, match="since"):
            await read.all(connection, {"flow_id": "flow_1"})
        with pytest.raises(ValueError, match="extra"):
            await read.all(connection, {"flow_id": "f", "since": None, "extra": 1})


def test_expanding_parameters_are_refused() -> None:
    statement = select(c.id).where(c.id.in_(bindparam("ids", expanding=True)))
    with pytest.raises(ValueError, match="expanding"):
        DirectRead(statement, ["ids"])


async def test_values_fixed_in_the_statement_are_kept(engine: AsyncEngine) -> None:
    await insert(engine, [make_step_result(id="sr_1", flowId="flow_1", durationMs=7)])
    statement = select(c.id, (c.duration_ms * 3).label("tripled")).where(
        c.flow_id == bindparam("flow_id", type_=c.flow_id.type), c.duration_ms < 100
    )
    read = DirectRead(statement, ["flow_id"])
    async with engine.connect() as connection:
        assert [tuple(row) for row in await read.all(connection, {"flow_id": "flow_1"})] == [
            ("sr_1", 21)
        ]


async def test_nul_characters_are_refused_before_the_store(engine: AsyncEngine) -> None:
    read = DirectRead(BY_FLOW_SINCE, ["flow_id", "since"])
    async with engine.connect() as connection:
        with pytest.raises(UnstorableText):
            await read.all(connection, {"flow_id": "flow\x00", "since": datetime.now(UTC)})


async def test_a_direct_read_over_the_timeout_is_cancelled(settings: Settings) -> None:
    # Seconds of work, finite: without a timeout the test fails rather than hangs.
    if settings.is_sqlite:
        counter = select(literal(1).label("x")).cte("counter", recursive=True)
        counter = counter.union_all(select(counter.c.x + 1).where(counter.c.x < 50_000_000))
        statement = select(func.count()).where(counter.c.x > bindparam("floor", type_=Integer))
    else:
        statement = select(func.pg_sleep(5), bindparam("floor", type_=Integer))
    engine = create_engine(settings, statement_timeout_ms=50)
    try:
        read = DirectRead(statement, ["floor"])
        async with engine.connect() as connection:
            with pytest.raises(StatementTimeout):
                await read.all(connection, {"floor": 0})
            # The connection answers again (after the failed transaction), with no timer
            # left to interrupt it.
            await connection.rollback()
            assert (await reads._execute(connection, text("SELECT 1"))).scalar() == 1
    finally:
        await engine.dispose()


async def test_statement_hooks_see_sqlite_reads(settings: Settings, engine: AsyncEngine) -> None:
    seen: list[tuple[str, Any]] = []
    direct.statement_hooks.append(hook := lambda sql, parameters: seen.append((sql, parameters)))
    try:
        async with engine.connect() as connection:
            await DirectRead(BY_FLOW_SINCE, ["flow_id", "since"]).all(
                connection, {"flow_id": "flow_1", "since": datetime(2024, 1, 1, tzinfo=UTC)}
            )
    finally:
        direct.statement_hooks.remove(hook)
    if settings.is_sqlite:
        assert [(sql.split()[0], params[0]) for sql, params in seen] == [("SELECT", "flow_1")]
    else:
        assert seen == []  # SQLAlchemy runs it, and its own events see it
