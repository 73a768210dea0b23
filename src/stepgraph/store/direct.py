"""Hot reads in one trip to SQLite: compiled once, run on the driver's own connection.

aiosqlite runs every SQLite call on a thread of its own. Through SQLAlchemy's
execution layer one SELECT takes several hand-offs to that thread and back (execute,
then fetch) plus per-row result handling; for the reads every request makes (a list
page, an API key) that costs more than SQLite's own work. A :class:`DirectRead` is
compiled by SQLAlchemy once per dialect and, on SQLite, runs with one
``execute_fetchall`` on the aiosqlite connection under the pooled connection: one
hand-off. What the engine does for a statement still happens here: the column types'
bind and result processing, the refusal of NUL characters and the statement timeout;
SQLAlchemy's cursor events are not fired, :data:`statement_hooks` stands in for them.
Other stores run the same statement through SQLAlchemy as usual.

A statement's variable values are named bind parameters (``bindparam(name)``); each
call gives their values by name. Any other bound value is part of the statement.
"""

from __future__ import annotations

import sqlite3
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from time import perf_counter
from typing import Any

from sqlalchemy import Dialect, Select
from sqlalchemy.ext.asyncio import AsyncConnection

from stepgraph.store.engine import (
    SQLITE_BUSY_TIMEOUT_MS,
    inline_read_budget,
    interrupt_timer,
    on_thread,
    refuse_nul_characters,
    sqlite_driver,
    thread_busy,
    timeouts_reported,
)

Process = Callable[[Any], Any]

# Told of every statement a DirectRead runs on SQLite, with its parameters, before it
# runs. SQLAlchemy's cursor events do not see these statements: tracing and statement
# counting register here as well.
statement_hooks: list[Callable[[str, Sequence[Any]], None]] = []


@dataclass(frozen=True, slots=True)
class _Compiled:
    sql: str
    # Per placeholder, in order: the bind's name and its type's bind processor.
    placeholders: tuple[tuple[str, Process | None], ...]
    constants: Mapping[str, Any]
    # The selected columns whose type converts stored values: (position, processor).
    results: tuple[tuple[int, Process], ...]


async def _aiosqlite_connection(connection: AsyncConnection) -> Any:
    """The aiosqlite connection under ``connection``, without a hand-off when it is open."""
    driver = sqlite_driver(connection)
    if driver is None:  # not connected yet, or invalidated: let SQLAlchemy (re)connect
        driver = (await connection.get_raw_connection()).driver_connection
    return driver


def _start_inline(
    driver: Any, sql: str, parameters: Sequence[Any], budget: float
) -> tuple[list[Any], sqlite3.Cursor | None] | None:
    """Read on the event loop's own thread for at most about ``budget`` seconds.

    Gives the rows read and, when the statement has more rows than that time allowed, its
    cursor, for the caller to finish on aiosqlite's thread (the same statement, so the same
    snapshot). Gives None when the statement had to be stopped before that point: a
    progress handler interrupts it past ``budget`` (a long scan, a deep offset), and a lock
    held by another connection is not waited for; the caller then runs it on the thread
    from the start, where the statement timeout and the usual lock wait apply.

    The connection is checked out to the caller, so aiosqlite's thread is idle and the
    ``sqlite3`` connection (opened with ``check_same_thread=False``) is free to use here.
    """
    raw: sqlite3.Connection = driver._conn
    started = perf_counter()
    deadline = started + budget
    overran = False

    def progress() -> bool:
        nonlocal overran
        overran = perf_counter() > deadline
        return overran

    raw.execute(_NO_LOCK_WAIT)
    raw.set_progress_handler(progress, _PROGRESS_STEPS)
    try:
        cursor = raw.execute(sql, parameters)
        rows: list[Any] = []
        while True:
            chunk = cursor.fetchmany(_CHUNK)
            rows += chunk
            if len(chunk) < _CHUNK:
                return rows, None
            if perf_counter() - started > budget / 2:
                return rows, cursor
    except sqlite3.OperationalError as exc:
        if overran or exc.sqlite_errorcode in _RETRY_ON_THREAD:
            return None
        raise
    finally:
        raw.set_progress_handler(None, 0)
        raw.execute(_LOCK_WAIT)


# SQLite virtual machine steps between two looks at the clock: tens of microseconds.
_PROGRESS_STEPS = 500
# Rows read between two looks at the clock; past half the budget, the rest is read on the
# thread, so that a chunk rarely runs into the progress handler's hard stop.
_CHUNK = 16
# A lock held elsewhere: the thread waits for it, the event loop must not.
_NO_LOCK_WAIT = "PRAGMA busy_timeout = 0"
_LOCK_WAIT = f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}"
_RETRY_ON_THREAD = frozenset({sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED})


class DirectRead:
    """One SELECT whose named bind parameters are given at each call."""

    def __init__(self, statement: Select[Any], names: Sequence[str]) -> None:
        if any(bind.expanding for bind in statement.compile().binds.values()):
            # Their placeholders are rendered for each call's values: not one SQL string.
            raise ValueError("a DirectRead cannot take expanding (IN) parameters")
        self.statement = statement
        self.names = frozenset(names)
        self._compiled: weakref.WeakKeyDictionary[Dialect, _Compiled] = weakref.WeakKeyDictionary()

    async def all(
        self, connection: AsyncConnection, values: Mapping[str, Any]
    ) -> list[Sequence[Any]]:
        """Every row, as sequences of the columns' Python values (as SQLAlchemy gives them).

        Raises :class:`StatementTimeout` when the store cancels the statement for
        overrunning the timeout, and :class:`UnstorableText` for a NUL character.
        """
        if values.keys() != self.names:
            raise ValueError(f"expected values for {sorted(self.names)}, got {sorted(values)}")
        if connection.dialect.name != "sqlite":
            with timeouts_reported():
                return list((await connection.execute(self.statement, dict(values))).all())
        compiled = self._compile(connection.dialect)
        parameters = []
        for name, process in compiled.placeholders:
            value = values[name] if name in values else compiled.constants[name]
            parameters.append(value if process is None or value is None else process(value))
        refuse_nul_characters(parameters)
        for hook in statement_hooks:
            hook(compiled.sql, parameters)
        driver = await _aiosqlite_connection(connection)
        budget = inline_read_budget(connection)
        rows: list[Any]
        started = None
        if budget is not None and not thread_busy(driver):
            started = _start_inline(driver, compiled.sql, parameters, budget)
        if started is None:
            raw: sqlite3.Connection = driver._conn
            with interrupt_timer(connection), timeouts_reported():
                rows = await on_thread(
                    driver, lambda: raw.execute(compiled.sql, parameters).fetchall()
                )
        else:
            rows, rest = started
            if rest is not None:
                with interrupt_timer(connection), timeouts_reported():
                    rows += await on_thread(driver, rest.fetchall)
        if not compiled.results:
            return rows
        processed: list[Sequence[Any]] = []
        for row in rows:
            converted = list(row)
            for index, process in compiled.results:
                value = converted[index]
                if value is not None:
                    converted[index] = process(value)
            processed.append(converted)
        return processed

    def _compile(self, dialect: Dialect) -> _Compiled:
        compiled = self._compiled.get(dialect)
        if compiled is not None:
            return compiled
        sql = self.statement.compile(dialect=dialect)
        binds = sql.binds
        positions = sql.positiontup or []
        placeholders = tuple(
            (name, binds[name].type.dialect_impl(dialect).bind_processor(dialect))
            for name in positions
        )
        constants = {name: binds[name].effective_value for name in positions}
        processors = (
            column.type.dialect_impl(dialect).result_processor(dialect, None)
            for column in self.statement.selected_columns
        )
        results = tuple(
            (index, process) for index, process in enumerate(processors) if process is not None
        )
        compiled = _Compiled(
            sql=sql.string,
            placeholders=placeholders,
            constants={n: v for n, v in constants.items() if n not in self.names},
            results=results,
        )
        self._compiled[dialect] = compiled
        return compiled
