"""PostgreSQL for the test suite: one database per run, a fresh migrated schema per test.

The server is named by ``STEPGRAPH_TEST_POSTGRES_URL`` (for example
``postgresql+asyncpg://postgres@127.0.0.1:5432/test``); its database is only the
maintenance database the suite connects to in order to create and drop its own.

A run creates one database, ``stepgraph_test_<unix time>_<run hex>``, with a comment
marking it as a throwaway, and drops it when the run ends (failures and Ctrl-C included).
Each test gets a schema of its own in it, made the default ``search_path`` of the run's role
in that database while the test runs, so the store the test's settings name is that schema
and nothing else:

- The migrations run for real (Alembic) once per run, into a schema no test uses; the
  statements they execute are recorded and replayed into each test's schema, ahead of the
  test, while the previous test runs. A test that asks for an empty store gets an empty
  schema, and migrations then run for real in it.
- A schema is dropped in the background after its test. Per-test databases would be
  simpler, but ``DROP DATABASE`` waits for a checkpoint and a busy disk makes that seconds.

While it runs, a run holds an advisory lock named after its hex. A run killed outright
loses the lock with its connection, so the next run drops the databases of runs whose lock
is free, when both their name and their comment say they are this suite's.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import re
import secrets
import threading
import time
from collections.abc import Coroutine, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, TypeVar

import asyncpg
from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import create_async_engine

from stepgraph.store import migrate

ENV = "STEPGRAPH_TEST_POSTGRES_URL"
EXAMPLE_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
PREFIX = "stepgraph_test_"
MARKER = "stepgraph test suite: throwaway database, safe to drop"
# The advisory lock a live run holds: (this class, the run's hex as a signed int4).
LOCK_CLASS = 0x53475453
CONNECT_TIMEOUT_S = 5.0
OPERATION_TIMEOUT_S = 120.0
# Migrated schemas kept ready ahead of the tests that will use them.
READY_SCHEMAS = 2
# The test database uses a linguistic default collation and a time zone far from UTC, as
# many production servers do, so that anything relying on server defaults differs from SQLite.
ICU_LOCALE = "en-US"
TIME_ZONE = "Asia/Kathmandu"
MIGRATED_SCHEMA = "migrations_of_this_run"

_OURS = re.compile(rf"^{PREFIX}\d{{10}}_(?P<run>[0-9a-f]{{8}})$")
# What migrations may run; anything else recorded from them is refused, not replayed blindly.
_DDL = re.compile(r"^\s*(CREATE|ALTER|DROP|COMMENT|INSERT|UPDATE|DELETE)\b", re.IGNORECASE)
_QUERY = re.compile(r"^\s*(SELECT|SHOW|WITH)\b", re.IGNORECASE)

T = TypeVar("T")
Statement = tuple[str, Sequence[Any]]


def in_ci() -> bool:
    """True on a CI runner, where a skipped PostgreSQL pass must fail the run instead."""
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def configured_url() -> str | None:
    """The server named by the environment, or None when the PostgreSQL pass is off."""
    return os.environ.get(ENV, "").strip() or None


def redacted(url: str) -> str:
    """A URL fit for logs: the password, if any, masked."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparseable URL>"


def is_ours(name: str, comment: str | None) -> bool:
    """Whether a database was created by this suite (its name and its comment both say so)."""
    return _OURS.match(name) is not None and comment == MARKER


def advisory_lock_of(name: str) -> tuple[int, int]:
    """The advisory lock key held by the run that created one of the suite's databases."""
    match = _OURS.match(name)
    if match is None:
        raise ValueError(f"not one of the suite's databases: {name!r}")
    return LOCK_CLASS, int(match["run"], 16) - 2**31


def _quote(name: str) -> str:
    if not re.fullmatch(r"[a-z0-9_]+", name):
        raise ValueError(f"refusing an unexpected identifier: {name!r}")
    return f'"{name}"'


@dataclass
class _Admin:
    """The administrative side, living on the background loop."""

    main: asyncpg.Connection  # to the maintenance database: creates and drops the run's
    run: asyncpg.Connection  # to the run's database: prepares schemas and switches them
    drop: asyncpg.Connection  # to the run's database: drops schemas while later tests run
    migrations: list[Statement]
    run_busy: asyncio.Lock = field(default_factory=asyncio.Lock)
    drop_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    ready: asyncio.Queue[str] = field(default_factory=lambda: asyncio.Queue(READY_SCHEMAS))
    filler: asyncio.Task[None] | None = None


class PostgresServer:
    """This run's database on one server, and a schema per test in it.

    Tests run on pytest-asyncio's per-test event loops and an asyncpg connection belongs
    to the loop that opened it, so the administrative connections live on a private loop in
    a background thread; fixtures call the blocking methods below. Tests run one at a time:
    the default ``search_path`` in the run's database names the current test's schema.
    """

    def __init__(self, url: str) -> None:
        parsed = make_url(url)
        if parsed.get_backend_name() != "postgresql":
            raise ValueError(f"{ENV} must name a PostgreSQL server, got {redacted(url)}")
        self.server: URL = parsed.set(drivername="postgresql+asyncpg")
        self.database = f"{PREFIX}{int(time.time())}_{secrets.token_hex(4)}"
        self.lock = advisory_lock_of(self.database)
        self.url = self.server.set(database=self.database).render_as_string(hide_password=False)
        self.stale_dropped: list[str] = []
        self._counter = itertools.count(1)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="stepgraph-test-postgres", daemon=True
        )
        self._admin: _Admin | None = None
        self._main: asyncpg.Connection | None = None
        self._drops: list[Future[None]] = []

    # --- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Connect, drop what killed runs left, create the database, record the migrations."""
        self._thread.start()
        self._call(self._start())

    def close(self) -> None:
        """Drop this run's database and stop the background loop."""
        try:
            for drop in self._drops:
                drop.exception(timeout=OPERATION_TIMEOUT_S)  # the database goes anyway
            if self._thread.is_alive():
                self._call(self._close())
        finally:
            if self._thread.is_alive():
                self._loop.call_soon_threadsafe(self._loop.stop)
                self._thread.join(timeout=OPERATION_TIMEOUT_S)
            self._loop.close()

    # --- per test --------------------------------------------------------------------------

    def use_new_schema(self, *, migrated: bool) -> str:
        """Give the next connections to :attr:`url` a new schema, migrated or empty."""
        return self._call(self._use_new_schema(migrated))

    def drop_schema(self, schema: str) -> None:
        """Drop a test's schema in the background; :meth:`close` waits for it."""
        self._drops.append(asyncio.run_coroutine_threadsafe(self._drop_schema(schema), self._loop))

    # --- on the background loop ------------------------------------------------------------

    def _call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(OPERATION_TIMEOUT_S)

    @property
    def admin(self) -> _Admin:
        if self._admin is None:
            raise RuntimeError("the PostgreSQL server has not been started")
        return self._admin

    async def _connect(self, database: str | None = None) -> asyncpg.Connection:
        url = self.server if database is None else self.server.set(database=database)
        dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
        return await asyncpg.connect(dsn, timeout=CONNECT_TIMEOUT_S)

    async def _start(self) -> None:
        main = self._main = await self._connect()
        # Held until this run's connection ends, however it ends.
        await main.execute("SELECT pg_advisory_lock($1, $2)", *self.lock)
        version = main.get_server_version()
        if version.major < 13:
            raise RuntimeError(f"PostgreSQL 13 or newer is needed, the server runs {version}")
        await self._drop_stale(main)
        options = ""
        if version.major >= 15 and await main.fetchval(
            "SELECT EXISTS (SELECT 1 FROM pg_collation WHERE collprovider = 'i')"
        ):
            options = f" LOCALE_PROVIDER icu ICU_LOCALE '{ICU_LOCALE}'"
        name = _quote(self.database)
        await main.execute(f"CREATE DATABASE {name} TEMPLATE template0{options}")
        await main.execute(f"COMMENT ON DATABASE {name} IS '{MARKER}'")
        await main.execute(
            f"ALTER ROLE CURRENT_USER IN DATABASE {name} SET timezone TO '{TIME_ZONE}'"
        )
        migrations = await self._record_migrations()
        self._admin = _Admin(
            main=main,
            run=await self._connect(self.database),
            drop=await self._connect(self.database),
            migrations=migrations,
        )
        self._admin.filler = asyncio.create_task(self._fill())

    async def _record_migrations(self) -> list[Statement]:
        """Run the migrations for real into a schema of their own, recording what they run."""
        recorded: list[Statement] = []

        def record(_c: Any, _cur: Any, statement: str, parameters: Any, *_: Any) -> None:
            if _QUERY.match(statement):
                return
            if not _DDL.match(statement):
                raise RuntimeError(
                    f"a migration ran a statement this suite cannot replay: {statement}"
                )
            recorded.append((statement, tuple(parameters or ())))

        connection = await self._connect(self.database)
        try:
            await connection.execute(f"CREATE SCHEMA {_quote(MIGRATED_SCHEMA)}")
        finally:
            await connection.close()
        engine = create_async_engine(
            self.url, connect_args={"server_settings": {"search_path": MIGRATED_SCHEMA}}
        )
        event.listen(engine.sync_engine, "before_cursor_execute", record)
        try:
            await migrate.upgrade(engine)
        finally:
            await engine.dispose()
        return recorded

    async def _new_schema(self, migrated: bool) -> str:
        schema = f"test_{next(self._counter)}"
        connection = self.admin.run
        async with self.admin.run_busy, connection.transaction():
            await connection.execute(f"CREATE SCHEMA {_quote(schema)}")
            if migrated:
                await connection.execute(f"SET LOCAL search_path TO {_quote(schema)}")
                for statement, parameters in self.admin.migrations:
                    await connection.execute(statement, *parameters)
        return schema

    async def _fill(self) -> None:
        while True:
            await self.admin.ready.put(await self._new_schema(migrated=True))

    async def _use_new_schema(self, migrated: bool) -> str:
        schema = await (self._next_ready() if migrated else self._new_schema(migrated=False))
        # Per role and database, the setting no other stored default overrides; on the
        # maintenance connection, so as not to wait for the schema being prepared.
        await self.admin.main.execute(
            f"ALTER ROLE CURRENT_USER IN DATABASE {_quote(self.database)} "
            f"SET search_path TO {_quote(schema)}"
        )
        return schema

    async def _next_ready(self) -> str:
        filler = self.admin.filler
        assert filler is not None
        getting = asyncio.ensure_future(self.admin.ready.get())
        await asyncio.wait([getting, filler], return_when=asyncio.FIRST_COMPLETED)
        if not getting.done():
            getting.cancel()
            filler.result()  # raises what stopped the filler
            raise RuntimeError("no test schema could be prepared")
        return getting.result()

    async def _drop_schema(self, schema: str) -> None:
        async with self.admin.drop_lock:
            # A connection a test leaked could hold locks forever; the database goes at the
            # end of the run anyway.
            with contextlib.suppress(asyncpg.LockNotAvailableError):
                async with self.admin.drop.transaction():
                    await self.admin.drop.execute("SET LOCAL lock_timeout = '5s'")
                    await self.admin.drop.execute(f"DROP SCHEMA {_quote(schema)} CASCADE")

    async def _drop_stale(self, main: asyncpg.Connection) -> None:
        rows = await main.fetch(
            "SELECT datname, shobj_description(oid, 'pg_database') AS comment "
            "FROM pg_database WHERE starts_with(datname, $1)",
            PREFIX,
        )
        for row in rows:
            name = row["datname"]
            if not is_ours(name, row["comment"]):
                continue
            lock = advisory_lock_of(name)
            if not await main.fetchval("SELECT pg_try_advisory_lock($1, $2)", *lock):
                continue  # a live run
            try:
                await main.execute(f"DROP DATABASE IF EXISTS {_quote(name)} WITH (FORCE)")
                self.stale_dropped.append(name)
            finally:
                await main.execute("SELECT pg_advisory_unlock($1, $2)", *lock)

    async def _close(self) -> None:
        if self._admin is not None:
            if self._admin.filler is not None:
                self._admin.filler.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await self._admin.filler
            for connection in (self._admin.run, self._admin.drop):
                with contextlib.suppress(Exception):
                    await connection.close()
        if self._main is not None:
            try:
                # FORCE ends any connection a test leaked (PostgreSQL 13+).
                await self._main.execute(
                    f"DROP DATABASE IF EXISTS {_quote(self.database)} WITH (FORCE)"
                )
            finally:
                await self._main.close()
