"""Creating the async engine from settings (called from the app's lifespan or the CLI)."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import MissingGreenlet
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
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
            pool_size=settings.pool_size + settings.pool_max_overflow,
            max_overflow=0,
            # Returned connections are rolled back only when a transaction is open (see
            # _sqlite_reset): the usual unconditional rollback is a trip to aiosqlite's
            # thread for every request, most of which only read.
            pool_reset_on_return=None,
        )
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        event.listen(engine.sync_engine.pool, "reset", _sqlite_reset)
        if statement_timeout_ms is not None:
            _interrupt_after(engine, statement_timeout_ms / 1000)
        if settings.sqlite_inline_read_ms > 0:
            budget = settings.sqlite_inline_read_ms
            if statement_timeout_ms is not None:
                budget = min(budget, statement_timeout_ms)
            _SQLITE_INLINE_READS[engine.sync_engine] = budget / 1000
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


class reading:
    """``async with reading(engine) as connection``: a pooled connection for a request's reads.

    ``engine.connect()`` goes through a greenlet to check a connection out and another to
    check it in, and its ``async with`` closes in a task shielded from cancellation. On
    SQLite, where the pool keeps its connections open, neither needs to await when
    nothing is left to do: checking out an open connection and returning one with no
    transaction open and nothing running on aiosqlite's thread (see :func:`_sqlite_reset`)
    are plain calls, made here directly, so they cannot be cut short either. Anything
    else (opening a connection, rolling one back, another store) takes the usual path.
    """

    __slots__ = ("_connection", "_engine")

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._connection: AsyncConnection | None = None

    async def __aenter__(self) -> AsyncConnection:
        engine = self._engine
        sync_engine = engine.sync_engine
        pool: Any = sync_engine.pool
        if sync_engine.dialect.name == "sqlite" and pool.checkedin():
            try:
                self._connection = AsyncConnection(engine, sync_engine.connect())
                return self._connection
            except MissingGreenlet:
                pass  # the idle connection had to be opened again, which awaits
        self._connection = await engine.connect()
        return self._connection

    async def __aexit__(self, *exc_info: object) -> None:
        connection = self._connection
        assert connection is not None
        driver = sqlite_driver(connection)
        if driver is not None and _returns_idle(driver) and not connection.in_transaction():
            sync = connection.sync_connection
            assert sync is not None
            sync.close()
        else:
            await connection.__aexit__(*exc_info)


def sqlite_driver(connection: AsyncConnection) -> Any:
    """The aiosqlite connection under an open SQLite ``connection``; None otherwise."""
    sync = connection.sync_connection
    if sync is None or sync.invalidated or connection.dialect.name != "sqlite":
        return None
    fairy = sync._dbapi_connection
    return None if fairy is None else fairy.driver_connection


# aiosqlite connections (by id) whose thread runs a read handed to it by on_thread. A
# request cancelled while it waits leaves the read running there: until it ends, the
# connection must not be read on the event loop, nor go back to the pool as idle.
_THREAD_BUSY: set[int] = set()


def thread_busy(driver: Any) -> bool:
    """Whether aiosqlite's thread for ``driver`` still runs a read handed to it by on_thread."""
    return id(driver) in _THREAD_BUSY


async def on_thread(driver: Any, work: Callable[[], Any]) -> Any:
    """Run ``work`` on aiosqlite's thread for ``driver``, marked busy until it has ended there.

    When the caller is cancelled, the statement is interrupted: nobody waits for its rows.
    """
    key = id(driver)
    _THREAD_BUSY.add(key)

    def run() -> Any:
        try:
            return work()
        finally:
            _THREAD_BUSY.discard(key)  # on the thread, however the caller fares

    try:
        return await driver._execute(run)
    except asyncio.CancelledError:
        raw = driver._connection
        if raw is not None:
            raw.interrupt()  # the one sqlite3 call meant for another thread
        raise
    except ValueError:
        _THREAD_BUSY.discard(key)  # a closed connection: run() was never queued
        raise


# How long a SQLite connection waits for a lock another connection holds (milliseconds).
SQLITE_BUSY_TIMEOUT_MS = 30_000

# The inline read budget of each SQLite engine that has one, in seconds (store.direct).
_SQLITE_INLINE_READS: weakref.WeakKeyDictionary[Engine, float] = weakref.WeakKeyDictionary()


def inline_read_budget(connection: AsyncConnection) -> float | None:
    """How long a read may run on the event loop on this SQLite connection; None: not at all."""
    return _SQLITE_INLINE_READS.get(connection.sync_engine)


def _sqlite_reset(dbapi_connection: Any, _record: Any, state: Any) -> None:
    """Roll a returned SQLite connection back only if a transaction is open.

    What the pool's default reset does, less its rollback of connections that only
    read: in Python's sqlite3 a SELECT opens no transaction, so that rollback changes
    nothing and only costs a trip to aiosqlite's thread. A connection whose thread still
    runs a read (its request was cancelled while waiting) is rolled back all the same:
    the rollback waits its turn on the thread, so the next user finds the thread idle.
    """
    if not state.asyncio_safe:
        return  # the pool cannot await here (a connection collected as garbage)
    driver = dbapi_connection.driver_connection
    if driver._connection is not None and not _returns_idle(driver):
        # Queued behind whatever the thread still runs: the connection goes back idle.
        dbapi_connection.rollback()


def _returns_idle(driver: Any) -> bool:
    """Whether an open aiosqlite connection has nothing to roll back and nothing running."""
    raw = driver._connection  # the sqlite3.Connection, None once closed
    return raw is not None and not raw.in_transaction and not thread_busy(driver)


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
    timer = asyncio.get_running_loop().call_later(
        seconds, sqlite_driver(connection)._conn.interrupt
    )
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
