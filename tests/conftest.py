"""Shared fixtures: a fresh store per test, on every store, and the app over it.

Every test that uses ``settings``, ``engine`` or ``api`` runs once per store: ``[sqlite]``
always, ``[postgres]`` when ``STEPGRAPH_TEST_POSTGRES_URL`` names a server (see
``tests/postgres.py``). Without it the PostgreSQL pass is skipped and the summary says so;
on CI (``CI=true``) a missing variable or an unreachable server fails the run instead.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Generator, Iterable, Iterator
from pathlib import Path
from typing import Any, NoReturn

import httpx
import pytest
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

ENABLE = f"set {ENV}, e.g. {ENV}={EXAMPLE_URL}"
NOT_RUN = "PostgreSQL pass NOT RUN"


class _PostgresPass:
    """Whether the PostgreSQL pass ran, for the summary."""

    not_run: str | None = None
    advice = f"To run them on PostgreSQL too, {ENABLE}."
    tests = 0
    stale_dropped: tuple[str, ...] = ()


# --- session hooks ---------------------------------------------------------------------------


def pytest_configure(config: pytest.Config) -> None:
    if configured_url() is None:
        _PostgresPass.not_run = f"{ENV} is not set"
        if in_ci():
            raise pytest.UsageError(
                f"CI=true but {ENV} is not set: CI must run the PostgreSQL pass; {ENABLE}"
            )


def pytest_report_header(config: pytest.Config) -> str:
    url = configured_url()
    if url is None:
        return f"stores: sqlite only (PostgreSQL pass off; to run it, {ENABLE})"
    return f"stores: sqlite, postgres at {redacted(url)}"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    _PostgresPass.tests = sum(1 for item in items if _store_of(item) == "postgres")


def _store_of(item: pytest.Item) -> str | None:
    callspec = getattr(item, "callspec", None)
    return None if callspec is None else callspec.params.get("store_kind")


def _skip_postgres_pass(reason: str) -> NoReturn:
    pytest.skip(f"{NOT_RUN}: {reason}")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item,
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    # A skip raised by a fixture is reported at each test's own line; report the PostgreSQL
    # pass's skips at one place instead, so that ``-ra`` sums them up on a single line.
    report = yield
    longrepr = report.longrepr
    if report.skipped and isinstance(longrepr, tuple) and NOT_RUN in str(longrepr[2]):
        report.longrepr = (__file__, _skip_postgres_pass.__code__.co_firstlineno, longrepr[2])
    return report


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    if config.option.collectonly:
        return
    if _PostgresPass.stale_dropped:
        terminalreporter.write_line(
            f"dropped {len(_PostgresPass.stale_dropped)} test database(s) "
            "that an earlier, interrupted run left behind"
        )
    if _PostgresPass.not_run is None or _PostgresPass.tests == 0:
        return
    terminalreporter.write_sep("!", NOT_RUN, red=True, bold=True)
    terminalreporter.write_line(
        f"{_PostgresPass.tests} store test(s) ran on SQLite only: {_PostgresPass.not_run}.",
        red=True,
        bold=True,
    )
    terminalreporter.write_line(_PostgresPass.advice)


# --- stores ----------------------------------------------------------------------------------


def _started(url: str) -> PostgresServer | str:
    """The server, started; or why it cannot be used."""
    server: PostgresServer | None = None
    try:
        server = PostgresServer(url)
        server.start()
    except Exception as error:
        if server is not None:
            with contextlib.suppress(Exception):
                server.close()
        return f"{type(error).__name__}: {error}"
    return server


@pytest.fixture(scope="session")
def postgres_server(request: pytest.FixtureRequest) -> Iterator[PostgresServer]:
    """This run's PostgreSQL database (see ``tests/postgres.py``); skips without a server."""
    url = configured_url()
    if url is None:
        _skip_postgres_pass(f"{ENV} is not set (to run it, {ENABLE})")
    server = _started(url)
    if isinstance(server, str):
        reason = f"cannot use PostgreSQL at {redacted(url)}: {server}"
        if in_ci():
            # Fail this test and stop the session, as ``-x`` would.
            request.session.shouldfail = f"CI=true and {reason}"
            pytest.fail(f"CI=true and {reason}", pytrace=False)
        _PostgresPass.not_run = reason
        _PostgresPass.advice = f"Start the server, or fix {ENV}."
        _skip_postgres_pass(reason)
    _PostgresPass.stale_dropped = tuple(server.stale_dropped)
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
    """Settings for a store of this test's own: a fresh SQLite file, or a fresh schema.

    Like the SQLite file, which does not exist yet, the PostgreSQL schema is empty unless
    the test also uses ``engine``; then it is already migrated.
    """
    data_dir = tmp_path / "data"
    if store_kind == "sqlite":
        yield Settings(data_dir=data_dir)
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    schema = server.use_new_schema(migrated="engine" in request.fixturenames)
    try:
        yield Settings(data_dir=data_dir, database_url=server.url)
    finally:
        server.drop_schema(schema)


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
