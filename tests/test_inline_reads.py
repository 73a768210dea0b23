"""SQLite reads on the event loop: short ones never leave it, long ones never hold it.

A DirectRead on SQLite first runs on the event loop's own thread, within a budget
(``STEPGRAPH_SQLITE_INLINE_READ_MS``); past it, or when a lock is held elsewhere, the
read goes to aiosqlite's thread. Which thread ran a statement is told by SQLite itself:
each connection gets a ``thread_id()`` SQL function that returns the caller's thread.
Returned connections are rolled back only when a transaction is open.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Integer, bindparam, event, func, literal, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from stepgraph.settings import Settings, SettingsError
from stepgraph.store import direct, migrate
from stepgraph.store import engine as engine_module
from stepgraph.store.direct import DirectRead
from stepgraph.store.engine import SQLITE_BUSY_TIMEOUT_MS, create_engine, reading

LOOP_THREAD = threading.get_ident()


def _counter(limit: str) -> Any:
    """``x`` from 1 to the bind ``limit``, with the thread that computed each row."""
    counter = select(literal(1).label("x")).cte("counter", recursive=True)
    counter = counter.union_all(
        select(counter.c.x + 1).where(counter.c.x < bindparam(limit, type_=Integer))
    )
    # No ORDER BY: the counter yields its rows in order, one per step, as they are read.
    return select(counter.c.x, func.thread_id(), func.pause(counter.c.x))


# Rows 1 to `rows`, each row paused for `pause_ms` by pause(), and the thread of each.
COUNTER = _counter("rows")
# Seconds of work before its one row: no budget of milliseconds covers it.
LONG_COUNT = select(func.count(), func.thread_id()).select_from(_counter("rows").subquery())


def _sqlite_functions(dbapi_connection: Any, _record: Any) -> None:
    raw = dbapi_connection.driver_connection._conn
    raw.create_function("thread_id", 0, threading.get_ident)
    raw.create_function("pause", 1, lambda x: _PAUSE.sleep())


class _Pause:
    seconds = 0.0

    def sleep(self) -> int:
        if self.seconds:
            time.sleep(self.seconds)
        return 0


_PAUSE = _Pause()


async def _engine(tmp_path: Path, **settings: Any) -> AsyncEngine:
    engine = create_engine(Settings(data_dir=tmp_path, **settings), statement_timeout_ms=60_000)
    event.listen(engine.sync_engine, "connect", _sqlite_functions)
    await migrate.upgrade(engine)
    return engine


@pytest.fixture
async def sqlite_engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """A SQLite gateway engine with the default budget (10 ms)."""
    engine = await _engine(tmp_path)
    yield engine
    await engine.dispose()


@pytest.fixture(autouse=True)
def _no_pause() -> None:
    _PAUSE.seconds = 0.0


async def _threads(engine: AsyncEngine, statement: Any, values: dict[str, Any]) -> list[Any]:
    async with reading(engine) as connection:
        rows = await DirectRead(statement, list(values)).all(connection, values)
        raw = connection.sync_connection.connection.driver_connection._conn  # type: ignore[union-attr]
        # The lock wait is the engine's again, whichever way the read went.
        assert raw.execute("PRAGMA busy_timeout").fetchone()[0] == SQLITE_BUSY_TIMEOUT_MS
    return rows


async def test_a_short_read_runs_on_the_event_loop(sqlite_engine: AsyncEngine) -> None:
    rows = await _threads(sqlite_engine, COUNTER, {"rows": 5})
    assert [row[0] for row in rows] == [1, 2, 3, 4, 5]
    assert {row[1] for row in rows} == {LOOP_THREAD}


async def test_a_read_past_half_the_budget_is_finished_on_the_thread(
    sqlite_engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Rows of 1 ms each: the first chunk takes longer than half the budget (5 ms), so
    # the rest of the same statement is read on aiosqlite's thread. The progress handler
    # is kept out of it (it counts SQLite's steps, which these pauses do not take).
    monkeypatch.setattr(direct, "_PROGRESS_STEPS", 10**9)
    _PAUSE.seconds = 0.001
    rows = await _threads(sqlite_engine, COUNTER, {"rows": 60})
    assert [row[0] for row in rows] == list(range(1, 61))
    threads = [row[1] for row in rows]
    chunk = direct._CHUNK
    assert set(threads[:chunk]) == {LOOP_THREAD}
    # sqlite3 steps one row ahead of what it hands out: row chunk + 1 was computed inline.
    assert LOOP_THREAD not in threads[chunk + 1 :]


async def test_a_long_read_is_stopped_and_run_on_the_thread(sqlite_engine: AsyncEngine) -> None:
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.001)

    ticker = asyncio.create_task(tick())
    await asyncio.sleep(0)
    started = ticks
    try:
        rows = await _threads(sqlite_engine, LONG_COUNT, {"rows": 3_000_000})
    finally:
        ticker.cancel()
    ((count, thread),) = rows
    assert count == 3_000_000
    assert thread != LOOP_THREAD
    # The event loop kept running while the store counted (a second or so).
    assert ticks - started > 20


def test_a_lock_held_elsewhere_is_not_waited_for_on_the_event_loop(tmp_path: Path) -> None:
    # WAL readers (the engine's journal) meet a lock only in rare moments (recovery, a
    # connection in exclusive mode); a rollback journal shows the same refusal at will.
    path = tmp_path / "locked.db"
    setup = sqlite3.connect(path)
    setup.execute("CREATE TABLE t (x INTEGER)")
    setup.execute("INSERT INTO t VALUES (1)")
    setup.commit()
    setup.close()
    holder = sqlite3.connect(path, check_same_thread=False)
    holder.execute("BEGIN EXCLUSIVE")
    reader = sqlite3.connect(path, timeout=SQLITE_BUSY_TIMEOUT_MS / 1000)
    # Released from another thread after 2 s: a read that waited would then succeed.
    release = threading.Timer(2.0, holder.rollback)
    release.start()
    try:

        class Driver:
            _conn = reader

        assert direct._start_inline(Driver, "SELECT x FROM t", (), 60.0) is None
        lock_wait = reader.execute("PRAGMA busy_timeout").fetchone()[0]
        assert lock_wait == SQLITE_BUSY_TIMEOUT_MS  # restored for the thread's attempt
    finally:
        release.cancel()
        holder.rollback()
        holder.close()
        reader.close()


async def test_errors_are_raised_as_on_the_thread(sqlite_engine: AsyncEngine) -> None:
    trips: list[str] = []
    _trips(sqlite_engine, trips)
    broken = select(func.no_such_function(literal(1)), bindparam("x", type_=Integer))
    async with reading(sqlite_engine) as connection:
        with pytest.raises(sqlite3.OperationalError, match="no such function"):
            await DirectRead(broken, ["x"]).all(connection, {"x": 1})
    # Raised by the inline attempt itself, not retried on the thread.
    assert trips == []


async def test_a_budget_of_zero_reads_on_the_thread(tmp_path: Path) -> None:
    engine = await _engine(tmp_path, sqlite_inline_read_ms=0)
    try:
        rows = await _threads(engine, COUNTER, {"rows": 3})
    finally:
        await engine.dispose()
    assert LOOP_THREAD not in {row[1] for row in rows}


def test_the_budget_is_read_from_the_environment() -> None:
    assert Settings.from_env({}).sqlite_inline_read_ms == 10
    env = {"STEPGRAPH_SQLITE_INLINE_READ_MS": "0"}
    assert Settings.from_env(env).sqlite_inline_read_ms == 0
    with pytest.raises(SettingsError, match="STEPGRAPH_SQLITE_INLINE_READ_MS"):
        Settings.from_env({"STEPGRAPH_SQLITE_INLINE_READ_MS": "-1"})


def _trips(engine: AsyncEngine, trips: list[str]) -> None:
    """Record what each connection hands to aiosqlite's thread from now on."""

    def record(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        driver = dbapi_connection.driver_connection
        if getattr(driver, "_recorded", False):
            return
        original = driver._execute

        async def execute(fn: Any, *args: Any, **kwargs: Any) -> Any:
            trips.append(getattr(fn, "__name__", repr(fn)))
            return await original(fn, *args, **kwargs)

        driver._execute = execute
        driver._recorded = True

    event.listen(engine.sync_engine, "checkout", record)


async def test_a_connection_that_only_read_goes_back_without_a_trip(
    sqlite_engine: AsyncEngine,
) -> None:
    trips: list[str] = []
    _trips(sqlite_engine, trips)
    for _ in range(3):
        async with reading(sqlite_engine) as connection:
            await DirectRead(COUNTER, ["rows"]).all(connection, {"rows": 2})
        async with sqlite_engine.connect() as connection:
            await DirectRead(COUNTER, ["rows"]).all(connection, {"rows": 2})
    assert trips == []


async def test_a_transaction_left_open_is_rolled_back_on_return(
    sqlite_engine: AsyncEngine,
) -> None:
    trips: list[str] = []
    _trips(sqlite_engine, trips)
    async with reading(sqlite_engine) as connection:
        # Behind SQLAlchemy's back: only SQLite knows of this transaction.
        driver = connection.sync_connection.connection.driver_connection  # type: ignore[union-attr]
        await driver.execute(
            "INSERT INTO flows (id, organization_id, created_at)"
            " VALUES ('f_open', 'org', '2024-01-01 00:00:00.000000')"
        )
        assert driver._conn.in_transaction
    assert "rollback" in trips
    async with reading(sqlite_engine) as connection:
        found = await connection.execute(text("SELECT count(*) FROM flows WHERE id = 'f_open'"))
        assert found.scalar() == 0


async def test_reading_rolls_back_what_it_did_not_commit(sqlite_engine: AsyncEngine) -> None:
    async with reading(sqlite_engine) as connection:
        await connection.execute(
            text(
                "INSERT INTO flows (id, organization_id, created_at)"
                " VALUES ('f_sa', 'org', '2024-01-01 00:00:00.000000')"
            )
        )
        assert connection.in_transaction()
    async with reading(sqlite_engine) as connection:
        found = await connection.execute(text("SELECT count(*) FROM flows WHERE id = 'f_sa'"))
        assert found.scalar() == 0
    pool: Any = sqlite_engine.pool
    assert pool.checkedout() == 0


async def test_reading_closes_a_read_only_connection_without_a_task(
    sqlite_engine: AsyncEngine,
) -> None:
    # engine.connect()'s own close runs in a task shielded from cancellation; a connection
    # whose close cannot be cut short (nothing in it awaits) is closed directly.
    loop = asyncio.get_running_loop()
    created: list[Any] = []
    factory = loop.get_task_factory()

    def counting(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> Any:
        created.append(coro)
        if factory is not None:
            return factory(loop, coro, **kwargs)
        return asyncio.Task(coro, loop=loop, **kwargs)

    loop.set_task_factory(counting)
    try:
        async with reading(sqlite_engine) as connection:
            await DirectRead(COUNTER, ["rows"]).all(connection, {"rows": 2})
        direct_close = len(created)
        async with sqlite_engine.connect() as connection:
            await DirectRead(COUNTER, ["rows"]).all(connection, {"rows": 2})
    finally:
        loop.set_task_factory(factory)
    assert direct_close == 0
    assert len(created) == 1  # the shielded close, for comparison


async def test_a_cancelled_read_is_stopped_and_its_connection_goes_back_idle(
    sqlite_engine: AsyncEngine,
) -> None:
    # Counting to 50 million takes SQLite many seconds; the client goes away after 0.2 s,
    # when the read has long moved to aiosqlite's thread.
    task = asyncio.create_task(_threads(sqlite_engine, LONG_COUNT, {"rows": 50_000_000}))
    await asyncio.sleep(0.2)
    cancelled_at = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # The statement was interrupted rather than left to run, and the connection went
    # back to the pool only once its thread had let go of it.
    assert time.monotonic() - cancelled_at < 5
    assert not engine_module._THREAD_BUSY
    pool: Any = sqlite_engine.pool
    assert pool.checkedout() == 0
    rows = await _threads(sqlite_engine, COUNTER, {"rows": 3})
    assert [row[0] for row in rows] == [1, 2, 3]
    assert {row[1] for row in rows} == {LOOP_THREAD}


async def test_reading_opens_again_a_connection_the_pool_invalidated(
    sqlite_engine: AsyncEngine,
) -> None:
    async with reading(sqlite_engine) as connection:
        await DirectRead(COUNTER, ["rows"]).all(connection, {"rows": 1})
        await connection.invalidate()  # as after an error that leaves it unusable
    pool: Any = sqlite_engine.pool
    assert pool.checkedin() == 1  # its record, to be opened again on checkout
    rows = await _threads(sqlite_engine, COUNTER, {"rows": 2})
    assert [row[0] for row in rows] == [1, 2]
    assert pool.checkedout() == 0
