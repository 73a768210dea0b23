"""PostgreSQL for the test suite: a throwaway database per test, cloned from a migrated template.

The server is named by ``STEPGRAPH_TEST_POSTGRES_URL`` (for example
``postgresql+asyncpg://postgres@127.0.0.1:5432/test``); its database is only the
maintenance database the suite connects to in order to create and drop its own.

Every database the suite creates is named ``stepgraph_test_<unix time>_<random hex>_<suffix>``
and carries a comment that marks it as a throwaway. A session migrates one template once,
clones it for each test (``CREATE DATABASE ... TEMPLATE``, tens of milliseconds) and drops
every database it created when it ends. Databases that a crashed run left behind are dropped
by the next run once they are an hour old, and only when both their name and their comment
say they are the suite's.
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
from collections.abc import Coroutine
from concurrent.futures import Future
from typing import Any, TypeVar

import asyncpg
from sqlalchemy.engine import URL, make_url

from stepgraph.settings import Settings
from stepgraph.store import migrate
from stepgraph.store.engine import create_engine

ENV = "STEPGRAPH_TEST_POSTGRES_URL"
EXAMPLE_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
PREFIX = "stepgraph_test_"
MARKER = "stepgraph test suite: throwaway database, safe to drop"
STALE_AFTER_S = 3600
CONNECT_TIMEOUT_S = 5.0
OPERATION_TIMEOUT_S = 120.0
# Migrated clones kept ready ahead of the tests that will use them.
READY_CLONES = 2
# Test databases use a linguistic default collation and a time zone far from UTC, as many
# production servers do, so that anything relying on the server's defaults differs from SQLite.
ICU_LOCALE = "en-US"
TIME_ZONE = "Asia/Kathmandu"

_OURS = re.compile(rf"^{PREFIX}(?P<created>\d{{10}})_[0-9a-f]{{8}}_(?:template|empty|\d+)$")

T = TypeVar("T")


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


def created_at(name: str) -> int | None:
    """The Unix time encoded in one of the suite's database names."""
    match = _OURS.match(name)
    return int(match["created"]) if match else None


def _quote(name: str) -> str:
    if not re.fullmatch(r"[a-z0-9_]+", name):
        raise ValueError(f"refusing an unexpected database name: {name!r}")
    return f'"{name}"'


class PostgresServer:
    """The suite's databases on one server.

    Tests run on pytest-asyncio's per-test event loops and an asyncpg connection belongs
    to the loop that opened it, so the administrative connections live on a private loop in
    a background thread; tests and fixtures call the blocking methods below.
    """

    def __init__(self, url: str) -> None:
        parsed = make_url(url)
        if parsed.get_backend_name() != "postgresql":
            raise ValueError(f"{ENV} must name a PostgreSQL server, got {redacted(url)}")
        self.url: URL = parsed.set(drivername="postgresql+asyncpg")
        self.prefix = f"{PREFIX}{int(time.time())}_{secrets.token_hex(4)}"
        self.template = f"{self.prefix}_template"
        self.empty = f"{self.prefix}_empty"
        self.stale_dropped: list[str] = []
        self._counter = itertools.count(1)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="stepgraph-test-postgres", daemon=True
        )
        self._create: asyncpg.Connection | None = None
        self._drop: asyncpg.Connection | None = None
        self._drop_lock: asyncio.Lock | None = None
        self._create_lock: asyncio.Lock | None = None
        self._pending: list[Future[None]] = []
        self._create_options = ""
        self._ready: asyncio.Queue[str] | None = None
        self._filler: asyncio.Task[None] | None = None

    # --- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Connect, drop stale leftovers of crashed runs, create and migrate the template."""
        self._thread.start()
        self._call(self._start())

    def close(self) -> None:
        """Drop every database of this session and stop the background loop."""
        try:
            for future in self._pending:
                future.exception(timeout=OPERATION_TIMEOUT_S)  # failures are retried below
            if self._thread.is_alive():
                self._call(self._close())
        finally:
            if self._thread.is_alive():
                self._loop.call_soon_threadsafe(self._loop.stop)
                self._thread.join(timeout=OPERATION_TIMEOUT_S)
            self._loop.close()

    # --- per test --------------------------------------------------------------------------

    def create_database(self, *, migrated: bool) -> str:
        """A new database, migrated (a clone of the template) or empty; returns its name.

        Migrated clones are made ahead, while the previous test runs.
        """
        if migrated:
            return self._call(self._next_ready())
        name = self._next_name()
        self._call(self._clone(self.empty, name))
        return name

    def drop_database(self, name: str) -> None:
        """Drop a test's database in the background; :meth:`close` waits for it."""
        self._pending.append(asyncio.run_coroutine_threadsafe(self._drop_one(name), self._loop))

    def url_for(self, name: str) -> str:
        """The SQLAlchemy URL of one of the suite's databases."""
        return self.url.set(database=name).render_as_string(hide_password=False)

    def databases(self) -> list[str]:
        """Every database of this session still on the server."""
        return self._call(self._ours(self.prefix))

    # --- on the background loop ------------------------------------------------------------

    def _next_name(self) -> str:
        return f"{self.prefix}_{next(self._counter)}"

    def _call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(OPERATION_TIMEOUT_S)

    async def _connect(self) -> asyncpg.Connection:
        dsn = self.url.set(drivername="postgresql").render_as_string(hide_password=False)
        return await asyncpg.connect(dsn, timeout=CONNECT_TIMEOUT_S)

    async def _start(self) -> None:
        self._create = await self._connect()
        self._drop = await self._connect()
        self._drop_lock = asyncio.Lock()
        self._create_lock = asyncio.Lock()
        version = self._create.get_server_version()
        if version.major < 13:
            raise RuntimeError(f"PostgreSQL 13 or newer is needed, the server runs {version}")
        icu = version.major >= 15 and await self._create.fetchval(
            "SELECT EXISTS (SELECT 1 FROM pg_collation WHERE collprovider = 'i')"
        )
        if icu:
            self._create_options = f" LOCALE_PROVIDER icu ICU_LOCALE '{ICU_LOCALE}'"
        await self._drop_stale()
        for name in (self.empty, self.template):
            await self._execute_create(
                f"CREATE DATABASE {_quote(name)} TEMPLATE template0{self._create_options}", name
            )
        engine = create_engine(Settings(database_url=self.url_for(self.template)))
        try:
            await migrate.upgrade(engine)
        finally:
            await engine.dispose()
        self._ready = asyncio.Queue(maxsize=READY_CLONES)
        self._filler = asyncio.create_task(self._fill())

    async def _fill(self) -> None:
        assert self._ready is not None
        while True:
            name = self._next_name()
            await self._clone(self.template, name)
            await self._ready.put(name)

    async def _next_ready(self) -> str:
        assert self._ready is not None and self._filler is not None
        getting = asyncio.ensure_future(self._ready.get())
        await asyncio.wait([getting, self._filler], return_when=asyncio.FIRST_COMPLETED)
        if not getting.done():
            getting.cancel()
            self._filler.result()  # raises what stopped the filler
            raise RuntimeError("no test database could be prepared")
        return getting.result()

    async def _execute_create(self, statement: str, name: str) -> None:
        assert self._create is not None
        await self._create.execute(statement)
        await self._create.execute(f"COMMENT ON DATABASE {_quote(name)} IS '{MARKER}'")

    async def _clone(self, template: str, name: str) -> None:
        assert self._create is not None and self._create_lock is not None
        async with self._create_lock:
            await self._execute_create(
                f"CREATE DATABASE {_quote(name)} TEMPLATE {_quote(template)}", name
            )
            await self._create.execute(
                f"ALTER DATABASE {_quote(name)} SET timezone TO '{TIME_ZONE}'"
            )

    async def _ours(self, prefix: str, *, marked: bool = True) -> list[str]:
        # The dropping connection is free whenever no drop holds its lock.
        assert self._drop is not None and self._drop_lock is not None
        async with self._drop_lock:
            rows = await self._drop.fetch(
                "SELECT datname, shobj_description(oid, 'pg_database') AS comment "
                "FROM pg_database WHERE starts_with(datname, $1) ORDER BY datname",
                prefix,
            )
        return [
            row["datname"]
            for row in rows
            if is_ours(row["datname"], row["comment"] if marked else MARKER)
        ]

    async def _drop_stale(self) -> None:
        cutoff = time.time() - STALE_AFTER_S
        for name in await self._ours(PREFIX):
            created = created_at(name)
            if created is not None and created < cutoff:
                await self._drop_one(name)
                self.stale_dropped.append(name)

    async def _drop_one(self, name: str) -> None:
        assert self._drop is not None and self._drop_lock is not None
        async with self._drop_lock:
            # FORCE ends connections a test may have leaked (PostgreSQL 13+).
            await self._drop.execute(f"DROP DATABASE IF EXISTS {_quote(name)} WITH (FORCE)")

    async def _close(self) -> None:
        try:
            if self._filler is not None:
                self._filler.cancel()
                with contextlib.suppress(BaseException):
                    await self._filler
            if self._drop is not None:
                # This session's names are ours even without the comment: a clone cancelled
                # between CREATE DATABASE and COMMENT has none.
                for name in await self._ours(self.prefix, marked=False):
                    await self._drop_one(name)
        finally:
            for connection in (self._create, self._drop):
                if connection is not None:
                    await connection.close()
