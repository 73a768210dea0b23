"""Creating the async engine from settings (called from the app's lifespan or the CLI)."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from stepgraph.settings import Settings


def _sqlite_file(url: str) -> Path | None:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def create_engine(
    settings: Settings, *, statement_timeout_ms: int | None = None, replica: bool = False
) -> AsyncEngine:
    """An engine for ``settings.database_url``; a SQLite file's folder is created if missing.

    With ``statement_timeout_ms`` (the gateway's engine), a statement running
    longer is cancelled by the store and surfaces as :class:`StatementTimeout`.
    Imports and migrations run without it. With ``replica``, the engine reads
    from ``settings.replica_database_url`` when one is set.
    """
    url = (
        settings.replica_database_url
        if replica and settings.replica_database_url
        else (settings.database_url)
    )
    sqlite_file = _sqlite_file(url)
    if sqlite_file is not None:
        sqlite_file.parent.mkdir(parents=True, exist_ok=True)
        # Opening a SQLite connection costs a thread (aiosqlite's) and its PRAGMAs, while
        # keeping one costs little: every connection opened is kept, up to the same bound.
        engine = create_async_engine(
            url,
            connect_args={"timeout": 30},
            pool_size=settings.pool_size + settings.pool_max_overflow,
            max_overflow=0,
        )
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        if statement_timeout_ms is not None:
            _interrupt_after(engine, statement_timeout_ms / 1000)
    else:
        connect_args: dict[str, Any] = {}
        if statement_timeout_ms is not None and make_url(url).get_backend_name() == "postgresql":
            connect_args["server_settings"] = {"statement_timeout": str(statement_timeout_ms)}
        engine = create_async_engine(
            url,
            pool_pre_ping=True,
            pool_size=settings.pool_size,
            max_overflow=settings.pool_max_overflow,
            connect_args=connect_args,
        )
    event.listen(engine.sync_engine, "before_cursor_execute", _refuse_nul_characters)
    return engine


class UnstorableText(ValueError):
    """Text holding the NUL character (U+0000), which no store keeps.

    PostgreSQL text cannot contain it at all; SQLite could, but then a store
    could not move to PostgreSQL, so every store refuses it alike. (JSON values
    are unaffected: their NULs are escaped as ``\\u0000``.)
    """

    def __init__(self) -> None:
        super().__init__("text containing the NUL character (U+0000) cannot be stored or matched")


def refuse_nul_characters(values: Iterable[Any]) -> None:
    """Raise :class:`UnstorableText` when a text value holds the NUL character."""
    for value in values:
        if isinstance(value, str) and "\x00" in value:
            raise UnstorableText


def _refuse_nul_characters(
    conn: Any, cursor: Any, statement: Any, parameters: Any, context: Any, executemany: bool
) -> None:
    for row in parameters if executemany else (parameters,):
        refuse_nul_characters(row.values() if isinstance(row, Mapping) else row or ())


# The statement timeout of each SQLite engine that has one, in seconds.
_SQLITE_TIMEOUTS: weakref.WeakKeyDictionary[Engine, float] = weakref.WeakKeyDictionary()


@contextmanager
def interrupt_timer(connection: AsyncConnection) -> Iterator[None]:
    """Interrupt a SQLite statement run on ``connection``'s driver directly, past the timeout.

    For statements that do not go through SQLAlchemy's execution (``store.direct``);
    the engine's listeners time everything else. Does nothing without a timeout.
    """
    seconds = _SQLITE_TIMEOUTS.get(connection.sync_engine)
    if seconds is None:
        yield
        return
    raw = connection.sync_connection.connection.driver_connection._conn  # type: ignore[union-attr]
    timer = asyncio.get_running_loop().call_later(seconds, raw.interrupt)
    try:
        yield
    finally:
        timer.cancel()


def _interrupt_after(engine: AsyncEngine, seconds: float) -> None:
    """SQLite has no statement timeout: interrupt the connection when a statement overruns.

    ``sqlite3.Connection.interrupt`` is the one call meant to come from another
    thread; the timer lives on the event loop that awaits the statement.
    """
    _SQLITE_TIMEOUTS[engine.sync_engine] = seconds

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def start(
        conn: Any, cursor: Any, statement: Any, parameters: Any, context: Any, many: Any
    ) -> None:
        raw = conn.connection.driver_connection._conn  # the sqlite3.Connection under aiosqlite
        conn.info["stepgraph_timer"] = asyncio.get_running_loop().call_later(seconds, raw.interrupt)

    @event.listens_for(engine.sync_engine, "after_cursor_execute")
    def stop(
        conn: Any, cursor: Any, statement: Any, parameters: Any, context: Any, many: Any
    ) -> None:
        timer = conn.info.pop("stepgraph_timer", None)
        if timer is not None:
            timer.cancel()

    @event.listens_for(engine.sync_engine, "handle_error")
    def failed(context: Any) -> None:
        timer = context.connection.info.pop("stepgraph_timer", None) if context.connection else None
        if timer is not None:
            timer.cancel()


class StatementTimeout(Exception):
    """A store statement ran past the configured timeout and was cancelled."""

    def __init__(self) -> None:
        super().__init__(
            "the query ran longer than the server allows and was cancelled; narrow it with "
            "filters or a smaller page"
        )


@contextmanager
def timeouts_reported() -> Iterator[None]:
    """Turn a driver error meaning "cancelled for overrunning the timeout" into StatementTimeout."""
    try:
        yield
    except Exception as exc:
        if is_statement_timeout(exc):
            raise StatementTimeout from exc
        raise


def is_statement_timeout(error: BaseException) -> bool:
    """Whether a driver error means the statement was cancelled for taking too long."""
    original = getattr(error, "orig", None)
    text = f"{type(original).__name__}: {original}" if original is not None else str(error)
    return "interrupted" in text or "QueryCanceled" in text or "statement timeout" in text


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers run while an import writes; foreign keys are off by default in SQLite.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
