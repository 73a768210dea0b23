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

import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Dialect, Select
from sqlalchemy.ext.asyncio import AsyncConnection

from stepgraph.store.engine import (
    interrupt_timer,
    refuse_nul_characters,
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
        driver = (await connection.get_raw_connection()).driver_connection
        assert driver is not None
        with interrupt_timer(connection), timeouts_reported():
            rows = await driver.execute_fetchall(compiled.sql, parameters)
        if not compiled.results:
            return list(rows)
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
