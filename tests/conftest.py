"""Shared fixtures: a fresh store per test, on every store, and the app over it.

Every test that uses ``settings``, ``engine`` or ``api`` runs once per store: ``[sqlite]``
always, ``[postgres]`` when ``STEPGRAPH_TEST_POSTGRES_URL`` names a server (see
``tests/postgres.py``). Without it the PostgreSQL pass is skipped and the summary says so;
on CI (``CI=true``) a missing variable or an unreachable server fails the run instead.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Generator, Iterable, Iterator
from pathlib import Path
from typing import Any, NoReturn

import httpx
import pytest
from _pytest.reports import TestReport
from asgi_lifespan import LifespanManager
from sqlalchemy.ext.asyncio import AsyncEngine

from stepgraph.app import create_app
from stepgraph.records import parse_step_result
from stepgraph.settings import Settings
from stepgraph.store import migrate
from stepgraph.store.engine import create_engine
from stepgraph.store.writes import upsert_step_results
from tests.api import Api
from tests.postgres import (
    ENV,
    EXAMPLE_URL,
    PostgresServer,
    configured_url,
    in_ci,
    redacted,
)

HOW_TO_ENABLE = f"set {ENV} (e.g. {ENV}={EXAMPLE_URL}) to run it"
NOT_RUN = "PostgreSQL pass NOT RUN"


class _PostgresPass:
    """Whether the PostgreSQL pass ran, for the header and the summary."""

    not_run: str | None = None
    tests = 0
    stale_dropped: list[str] = []  # noqa: RUF012


# --- session hooks ---------------------------------------------------------------------------


def pytest_configure(config: pytest.Config) -> None:
    if configured_url() is None:
        _PostgresPass.not_run = f"{ENV} is not set"
        if in_ci():
            raise pytest.UsageError(
                f"CI=true but {ENV} is not set: the PostgreSQL pass is required on CI; "
                f"{HOW_TO_ENABLE}"
            )


def pytest_report_header(config: pytest.Config) -> str:
    url = configured_url()
    if url is None:
        return f"stores: sqlite only; PostgreSQL pass OFF ({HOW_TO_ENABLE})"
    return f"stores: sqlite, postgres ({redacted(url)})"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    _PostgresPass.tests = sum(
        1
        for item in items
        if getattr(item, "callspec", None) is not None
        and item.callspec.params.get("store_kind") == "postgres"  # type: ignore[attr-defined]
    )


def _skip_postgres_pass(reason: str) -> NoReturn:
    pytest.skip(f"{NOT_RUN}: {reason}")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item) -> Generator[None, TestReport, TestReport]:
    # A skip raised by a fixture is reported at each test's own line; report the PostgreSQL
    # pass's skips at one place instead, so that ``-ra`` sums them up on a single line.
    report = yield
    longrepr = report.longrepr
    if report.skipped and isinstance(longrepr, tuple) and NOT_RUN in str(longrepr[2]):
        report.longrepr = (__file__, _skip_postgres_pass.__code__.co_firstlineno, longrepr[2])
    return report


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _PostgresPass.stale_dropped:
        terminalreporter.write_line(
            f"dropped {len(_PostgresPass.stale_dropped)} stale test database(s) "
            "left by an earlier run"
        )
    if _PostgresPass.not_run is None or _PostgresPass.tests == 0:
        return
    terminalreporter.write_sep("!", NOT_RUN, red=True, bold=True)
    terminalreporter.write_line(
        f"{_PostgresPass.tests} store test(s) ran on SQLite only: {_PostgresPass.not_run}.",
        red=True,
        bold=True,
    )
    terminalreporter.write_line(f"To run them on PostgreSQL too, {HOW_TO_ENABLE}.", bold=True)


# --- stores ----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """The PostgreSQL server of this session, with a migrated template; skips without one."""
    url = configured_url()
    if url is None:
        _skip_postgres_pass(f"{ENV} is not set; {HOW_TO_ENABLE}")
    try:
        server = PostgresServer(url)
        server.start()
    except Exception as error:
        if "server" in locals():
            server.close()
        reason = f"cannot use PostgreSQL at {redacted(url)}: {type(error).__name__}: {error}"
        _PostgresPass.not_run = reason
        if in_ci():
            pytest.exit(f"CI=true and {reason}", returncode=1)
        _skip_postgres_pass(reason)
    _PostgresPass.stale_dropped = server.stale_dropped
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
    ]
)
def store_kind(request: pytest.FixtureRequest) -> str:
    """Which store this test runs on."""
    kind: str = request.param
    return kind


@pytest.fixture
def settings(request: pytest.FixtureRequest, store_kind: str, tmp_path: Path) -> Iterator[Settings]:
    """Settings for a store of this test's own: a fresh SQLite file, or a fresh database.

    Like the SQLite file, which does not exist yet, a PostgreSQL database is empty unless
    the test also uses ``engine``; then it is a clone of the session's migrated template.
    """
    data_dir = tmp_path / "data"
    if store_kind == "sqlite":
        yield Settings(data_dir=data_dir)
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    name = server.create_database(migrated="engine" in request.fixturenames)
    try:
        yield Settings(data_dir=data_dir, database_url=server.url_for(name))
    finally:
        server.drop_database(name)


@pytest.fixture
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    """A migrated, empty store."""
    engine = create_engine(settings)
    await migrate.upgrade(engine)
    yield engine
    await engine.dispose()


async def insert(engine: AsyncEngine, rows: Iterable[dict[str, Any]]) -> None:
    """Store contract-shaped rows through the same path as an import."""
    async with engine.begin() as connection:
        await upsert_step_results(connection, [parse_step_result(row) for row in rows])


@pytest.fixture
async def api(settings: Settings, engine: AsyncEngine) -> AsyncIterator[Api]:
    """The app with its lifespan run, over the same fresh store as ``engine``."""
    app = create_app(settings)
    async with (
        LifespanManager(app) as manager,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=manager.app), base_url="http://stepgraph.test"
        ) as client,
    ):
        api = Api(client, engine)
        await api.login()
        yield api
