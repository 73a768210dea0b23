"""What every scale benchmark shares: stores, the cache folder, timing and the machine's state."""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TypeVar

import asyncpg
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from stepgraph.settings import Settings
from stepgraph.store import migrate
from stepgraph.store.engine import create_engine

ROOT = Path(__file__).resolve().parents[2]
# Datasets and scratch stores live here; the folder is git-ignored and safe to delete.
CACHE = ROOT / "bench" / ".cache"
HERE = Path(__file__).resolve().parent

POSTGRES_ENV = "STEPGRAPH_BENCH_POSTGRES_URL"
DEFAULT_POSTGRES_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
# Every database the benchmarks create or drop carries this prefix, so that no other is touched.
DATABASE_PREFIX = "stepgraph_bench"

StoreKind = Literal["sqlite", "postgres"]
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Store:
    """One store under test: its kind and its SQLAlchemy URL."""

    kind: StoreKind
    url: str

    def engine(self) -> AsyncEngine:
        """An engine built exactly as the product builds it (pragmas, listeners included)."""
        return create_engine(Settings(database_url=self.url))


def postgres_server_url(cli_value: str | None) -> str:
    """The server URL from the flag, the environment, or the local default."""
    return cli_value or os.environ.get(POSTGRES_ENV, "").strip() or DEFAULT_POSTGRES_URL


def sqlite_store(path: Path) -> Store:
    """A SQLite store in ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return Store("sqlite", f"sqlite+aiosqlite:///{path.as_posix()}")


def postgres_store(server_url: str, database: str) -> Store:
    """A PostgreSQL store: the database ``database`` on the server of ``server_url``."""
    _check_name(database)
    url = make_url(server_url).set(drivername="postgresql+asyncpg", database=database)
    return Store("postgres", url.render_as_string(hide_password=False))


def _check_name(database: str) -> None:
    if not re.fullmatch(rf"{DATABASE_PREFIX}[a-z0-9_]*", database):
        raise ValueError(f"refusing to manage a database not named {DATABASE_PREFIX}*: {database}")


def _dsn(server_url: str, database: str | None = None) -> str:
    url = make_url(server_url).set(drivername="postgresql")
    if database is not None:
        url = url.set(database=database)
    return url.render_as_string(hide_password=False)


async def recreate_postgres_database(server_url: str, database: str) -> None:
    """Drop ``database`` if it exists and create it empty (only ``stepgraph_bench*`` names)."""
    _check_name(database)
    admin = await asyncpg.connect(_dsn(server_url))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{database}" TEMPLATE template0')
    finally:
        await admin.close()


async def postgres_database_exists(server_url: str, database: str) -> bool:
    """Whether the server holds ``database``."""
    admin = await asyncpg.connect(_dsn(server_url))
    try:
        return bool(
            await admin.fetchval(
                "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", database
            )
        )
    finally:
        await admin.close()


async def drop_postgres_database(server_url: str, database: str) -> None:
    """Drop ``database`` if it exists (only ``stepgraph_bench*`` names)."""
    _check_name(database)
    admin = await asyncpg.connect(_dsn(server_url))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    finally:
        await admin.close()


@asynccontextmanager
async def migrated(store: Store) -> AsyncIterator[AsyncEngine]:
    """An engine over ``store`` with its schema brought up to date; disposed on exit."""
    engine = store.engine()
    try:
        await migrate.upgrade(engine)
        yield engine
    finally:
        await engine.dispose()


async def timed_with_cpu(action: Callable[[], Awaitable[T]]) -> tuple[float, float, T]:
    """Wall seconds and this process's CPU seconds (all threads) of one call of ``action``.

    On a busy machine the CPU time is the steadier measure of the work done here; it
    leaves out what another process (a PostgreSQL server) does.
    """
    start, cpu = time.perf_counter(), time.process_time()
    result = await action()
    return time.perf_counter() - start, time.process_time() - cpu, result


def median(values: list[float]) -> float:
    """The median, or NaN for no values."""
    return statistics.median(values) if values else float("nan")


def load_average() -> tuple[float, float, float]:
    """The 1, 5 and 15 minute load averages."""
    return os.getloadavg()


def machine_notes() -> dict[str, object]:
    """What a reader needs to judge the figures: cores, memory, versions, load."""
    memory_kib = 0
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory_kib = int(line.split()[1])
    import sqlite3

    head = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    ).stdout.strip()
    return {
        "code": f"{head}{' + uncommitted changes' if dirty else ''}",
        "cpus": os.cpu_count(),
        "memory_gib": round(memory_kib / 2**20, 1),
        "python": sys.version.split()[0],
        "sqlite": sqlite3.sqlite_version,
        "load_average": load_average(),
    }


def say(message: str) -> None:
    """Progress on stderr, so that stdout stays the report."""
    print(message, file=sys.stderr, flush=True)
