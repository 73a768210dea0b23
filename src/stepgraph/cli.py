"""The ``stepgraph`` command: a thin layer over the functions the app uses."""

from __future__ import annotations

import argparse
import asyncio
import difflib
import itertools
import logging
import os
import sys
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any, TypeVar

from stepgraph.keys_cli import add_keys_parser
from stepgraph.settings import Settings, SettingsError

logger = logging.getLogger("stepgraph")

_T = TypeVar("_T")


def _settings() -> Settings:
    try:
        return Settings.from_env()
    except SettingsError as exc:
        raise SystemExit(f"stepgraph: {exc}") from None


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _run(coroutine: Coroutine[Any, Any, _T]) -> _T:
    """``asyncio.run``, with an outdated store reported as a message rather than a traceback."""
    from stepgraph.store.migrate import StoreOutOfDate

    try:
        return asyncio.run(coroutine)
    except StoreOutOfDate as exc:
        raise SystemExit(f"stepgraph: {exc}") from None


# --- serve -------------------------------------------------------------------


def _cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn
    from uvicorn.config import LOG_LEVELS

    settings = _settings()
    if settings.log_level not in LOG_LEVELS:
        raise SystemExit(
            f"stepgraph: STEPGRAPH_LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}, "
            f"got {settings.log_level!r}"
        )
    for name in sorted(settings.extra):
        _say(f"stepgraph: warning: unknown setting {name} is ignored")
    demo_key = _run(_prepare_store(settings, demo=args.demo))
    if demo_key is not None:
        # uvicorn builds the app (in each worker) from the environment.
        os.environ["STEPGRAPH_DEMO_KEY"] = demo_key
    host = args.host or settings.host
    port = settings.port if args.port is None else args.port
    _say(f"stepgraph: GraphQL and GraphiQL on http://{host}:{port}/graphql")
    _say(f"stepgraph: REST on http://{host}:{port}/v1/flows/{{id}}/step-results")
    uvicorn.run(
        "stepgraph.app:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=args.workers,
        reload=args.reload,
        log_level=settings.log_level,
    )
    return 0


async def _prepare_store(settings: Settings, *, demo: bool) -> str | None:
    """Bring the store up; in demo mode load demo data once and return a fresh demo key."""
    from stepgraph.store import migrate, reads
    from stepgraph.store.engine import create_engine

    engine = create_engine(settings)
    try:
        await migrate.prepare(engine)
        if not demo:
            return None
        async with engine.connect() as connection:
            existing = await reads.count_step_results(connection)
        if existing == 0:
            await _seed_demo(engine, rows=settings.demo_rows, seed=None)
        else:
            _say(f"stepgraph: store holds {existing:,} step results; demo data not added")
        return await _demo_key(engine)
    finally:
        await engine.dispose()


async def _demo_key(engine: Any) -> str | None:
    """A new key for the owner of the largest flow; older demo keys are revoked."""
    from datetime import UTC, datetime

    from stepgraph.auth.api_keys import issue_api_key
    from stepgraph.store import api_keys, reads

    async with engine.begin() as connection:
        organization = await reads.largest_flow_owner_id(connection)
        if organization is None:
            return None
        earlier = [r["id"] for r in await api_keys.list_api_keys(connection) if r["label"] == _DEMO]
        await api_keys.revoke_api_keys(connection, earlier, at=datetime.now(UTC))
        issued = await issue_api_key(
            connection, organization_id=organization, user_id="demo", label=_DEMO
        )
    _say(f"stepgraph: demo API key for organization {organization} (GraphiQL sends it for you):")
    _say(f"stepgraph:   Authorization: Bearer {issued.key}")
    return issued.key


_DEMO = "demo (stepgraph serve --demo)"


# --- migrate -----------------------------------------------------------------


def _cmd_migrate(args: argparse.Namespace) -> int:
    from stepgraph.store import migrate
    from stepgraph.store.engine import create_engine

    async def run() -> None:
        engine = create_engine(_settings())
        try:
            await migrate.upgrade(engine)
        finally:
            await engine.dispose()

    _run(run())
    _say("stepgraph: store is up to date")
    return 0


# --- seed --------------------------------------------------------------------


async def _seed_demo(engine: object, *, rows: int, seed: int | None) -> None:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from stepgraph.demo import DEMO_SEED, generate_demo_step_results
    from stepgraph.records import parse_step_result
    from stepgraph.store.writes import UpsertSummary, upsert_step_results

    assert isinstance(engine, AsyncEngine)
    summary = UpsertSummary()
    generated = generate_demo_step_results(rows, seed=DEMO_SEED if seed is None else seed)
    async with engine.begin() as connection:
        while batch := list(itertools.islice(generated, 5000)):
            summary += await upsert_step_results(connection, [parse_step_result(r) for r in batch])
            done = summary.inserted + summary.updated + summary.unchanged
            if rows >= 20000:
                _say(f"stepgraph: demo data {done:,}/{rows:,} rows")
    _say(
        f"stepgraph: demo data: {summary.inserted:,} inserted, {summary.updated:,} updated, "
        f"{summary.unchanged:,} unchanged"
    )


def _cmd_seed(args: argparse.Namespace) -> int:
    from stepgraph.store import migrate
    from stepgraph.store.engine import create_engine

    if not args.demo:
        raise SystemExit(
            "stepgraph seed: only --demo data can be generated; use `stepgraph import`"
        )
    if args.rows < 0:
        raise SystemExit("stepgraph seed: --rows must be 0 or more")
    settings = _settings()

    async def run() -> None:
        engine = create_engine(settings)
        try:
            await migrate.prepare(engine)
            await _seed_demo(engine, rows=args.rows, seed=args.seed)
        finally:
            await engine.dispose()

    _run(run())
    return 0


# --- import ------------------------------------------------------------------


def _cmd_import(args: argparse.Namespace) -> int:
    from stepgraph.importer import ImportProgress, import_files
    from stepgraph.store import migrate
    from stepgraph.store.engine import create_engine

    settings = _settings()

    def show(progress: ImportProgress) -> None:
        if progress.done and progress.validated < 10_000:
            return
        _say(
            f"stepgraph: {progress.path}: {progress.validated:,} rows checked, "
            f"{progress.written:,} written" + (" (done)" if progress.done else "")
        )

    async def run() -> int:
        engine = create_engine(settings)
        try:
            await migrate.prepare(engine)
            reports = await import_files(engine, args.files, progress=show)
        finally:
            await engine.dispose()
        failed = 0
        for report in reports:
            if report.error is not None:
                failed += 1
                _say(f"stepgraph: {report.path}: nothing imported, the file has problems:")
                for line in report.error.lines(limit=50):
                    _say(f"  {line}")
            else:
                _say(
                    f"stepgraph: {report.path} ({report.format.value if report.format else '?'}): "
                    f"{report.rows:,} rows: {report.inserted:,} inserted, "
                    f"{report.updated:,} updated, {report.unchanged:,} unchanged"
                )
        return 1 if failed else 0

    return _run(run())


# --- keys --------------------------------------------------------------------


def _cmd_keys(args: argparse.Namespace) -> int:
    from stepgraph.keys_cli import run_keys_command
    from stepgraph.store import migrate
    from stepgraph.store.engine import create_engine

    settings = _settings()

    async def run() -> int:
        engine = create_engine(settings)
        try:
            await migrate.prepare(engine)
            return await run_keys_command(engine, args)
        finally:
            await engine.dispose()

    return _run(run())


# --- export-schema -----------------------------------------------------------


def _cmd_export_schema(args: argparse.Namespace) -> int:
    from stepgraph.graphql.schema import build_schema

    sdl = build_schema().as_str() + "\n"
    if args.check is not None:
        path = Path(args.check)
        committed = path.read_text(encoding="utf-8") if path.exists() else ""
        if committed == sdl:
            return 0
        sys.stdout.writelines(
            difflib.unified_diff(
                committed.splitlines(keepends=True),
                sdl.splitlines(keepends=True),
                fromfile=str(path),
                tofile="live schema",
            )
        )
        _say(f"stepgraph: {path} is out of date; run `make schema`")
        return 1
    if args.output is not None:
        Path(args.output).write_text(sdl, encoding="utf-8")
        _say(f"stepgraph: wrote {args.output}")
    else:
        sys.stdout.write(sdl)
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The command line, with one sub-command per task."""
    parser = argparse.ArgumentParser(
        prog="stepgraph",
        description="A GraphQL gateway over flow step results. Settings come from STEPGRAPH_* "
        "environment variables (see README).",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the gateway (GraphQL, GraphiQL, REST)")
    serve.add_argument("--host", help="address to bind (default STEPGRAPH_HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default STEPGRAPH_PORT or 8000)")
    serve.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    serve.add_argument("--reload", action="store_true", help="restart when the code changes")
    serve.add_argument("--demo", action="store_true", help="fill an empty store with demo data")
    serve.set_defaults(handler=_cmd_serve)

    migrate = commands.add_parser("migrate", help="bring the store's schema up to date")
    migrate.set_defaults(handler=_cmd_migrate)

    seed = commands.add_parser("seed", help="add generated demo data to the store")
    seed.add_argument("--demo", action="store_true", help="generate realistic demo data")
    seed.add_argument("--rows", type=int, default=5000, help="step results to generate")
    seed.add_argument("--seed", type=int, default=None, help="random seed (same seed, same data)")
    seed.set_defaults(handler=_cmd_seed)

    load = commands.add_parser(
        "import", help="import step results (REST JSON, JSON array or NDJSON; - is stdin)"
    )
    load.add_argument("files", nargs="+", metavar="FILE")
    load.set_defaults(handler=_cmd_import)

    add_keys_parser(commands).set_defaults(handler=_cmd_keys)

    export = commands.add_parser("export-schema", help="print the GraphQL schema (SDL)")
    target = export.add_mutually_exclusive_group()
    target.add_argument("--output", "-o", help="write to this file instead of stdout")
    target.add_argument("--check", metavar="FILE", help="exit 1 when FILE differs from the schema")
    export.set_defaults(handler=_cmd_export_schema)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``stepgraph`` console script."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    # Alembic announces each of its plugins at INFO on import: noise before every message.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    handler: Callable[[argparse.Namespace], int] = args.handler
    return handler(args)


if __name__ == "__main__":
    raise SystemExit(main())
