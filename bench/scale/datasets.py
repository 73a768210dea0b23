"""Large stores of demo step results, built once through the product's bulk path and cached.

Rows come from :func:`stepgraph.demo.generate_demo_step_results`, so the skew of real
traffic is there (a few flows hold most rows), are validated by
:func:`stepgraph.records.parse_step_result` and written by
:func:`stepgraph.store.writes.upsert_step_results`: on PostgreSQL its COPY path, on
SQLite its upsert statement. A thread generates the next batch while the store writes
the last one.

To build in minutes rather than hours, the secondary indexes of ``step_results`` are
dropped before loading and created again, from the store's own definitions, once the
rows are in: one sorted build per index instead of millions of random insertions. The
primary key stays, as the upsert needs it. PostgreSQL then gets ``VACUUM (ANALYZE)``,
as autovacuum would give a table that stopped growing; SQLite is left without
``ANALYZE``, as stepgraph leaves it.

A manifest next to the store records what it holds (rows, seed, schema revision, flow
sizes, build time). A store whose manifest matches is reused; anything else is rebuilt.
"""

from __future__ import annotations

import asyncio
import json
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.scale.common import (
    CACHE,
    Store,
    postgres_database_exists,
    postgres_store,
    recreate_postgres_database,
    say,
    sqlite_store,
)
from stepgraph.demo import generate_demo_step_results
from stepgraph.records import parse_step_result
from stepgraph.store import migrate, reads
from stepgraph.store.writes import UpsertSummary, upsert_step_results

FOLDER = CACHE / "scale"
# Rows per upsert call (the importer's batch) and per committed transaction.
BATCH = 10_000
COMMIT_EVERY = 200_000
MANIFEST_VERSION = 1


@dataclass(frozen=True, slots=True)
class Manifest:
    """What a cached store holds and how it was made."""

    version: int
    kind: str
    rows: int
    seed: int
    location: str
    schema_revision: str
    flows: dict[str, int]
    built_at: str
    build_seconds: float
    load_seconds: float
    index_seconds: float

    @property
    def largest_flow(self) -> str:
        """The flow holding the most rows."""
        return max(self.flows, key=lambda flow: (self.flows[flow], flow))


@dataclass(frozen=True, slots=True)
class Dataset:
    """A store ready for measuring, with its manifest."""

    store: Store
    manifest: Manifest
    reused: bool


def _manifest_path(kind: str, rows: int, seed: int) -> Path:
    return FOLDER / f"{kind}-{rows}-seed{seed}.json"


def _read_manifest(path: Path) -> Manifest | None:
    try:
        data = json.loads(path.read_text())
        manifest = Manifest(**data)
    except (OSError, ValueError, TypeError):
        return None
    return manifest if manifest.version == MANIFEST_VERSION else None


def _remove_sqlite(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


async def sqlite_dataset(rows: int, seed: int) -> Dataset:
    """The SQLite store of ``rows`` demo rows of ``seed``, built unless cached."""
    path = FOLDER / f"sqlite-{rows}-seed{seed}.db"
    store = sqlite_store(path)
    cached = _read_manifest(_manifest_path("sqlite", rows, seed))
    if cached is not None and path.exists() and await _holds(store, rows):
        return Dataset(store, await _migrated(store, cached), reused=True)
    _remove_sqlite(path)
    return Dataset(store, await _build(store, rows, seed, str(path)), reused=False)


def postgres_database(rows: int, seed: int) -> str:
    """The name of the PostgreSQL database holding ``rows`` demo rows of ``seed``."""
    return f"stepgraph_bench_r{rows}_s{seed}"


async def postgres_dataset(server_url: str, rows: int, seed: int) -> Dataset:
    """The PostgreSQL store of ``rows`` demo rows of ``seed``, built unless cached."""
    database = postgres_database(rows, seed)
    store = postgres_store(server_url, database)
    cached = _read_manifest(_manifest_path("postgres", rows, seed))
    if (
        cached is not None
        and await postgres_database_exists(server_url, database)
        and await _holds(store, rows)
    ):
        return Dataset(store, await _migrated(store, cached), reused=True)
    await recreate_postgres_database(server_url, database)
    return Dataset(store, await _build(store, rows, seed, database), reused=False)


async def _holds(store: Store, rows: int) -> bool:
    """Whether the store has exactly ``rows`` step results, at the newest schema revision."""
    engine = store.engine()
    try:
        # A cached store gains later migrations (new indexes) instead of being rebuilt.
        await migrate.upgrade(engine)
        async with engine.connect() as connection:
            return await reads.count_step_results(connection) == rows
    except Exception:
        return False
    finally:
        await engine.dispose()


# Building ------------------------------------------------------------------------------


def _batches(rows: int, seed: int, out: queue.Queue[list[dict[str, Any]] | None]) -> None:
    """Generate and validate rows in a thread, one batch at a time, ending with None."""
    stream: Iterator[dict[str, Any]] = generate_demo_step_results(rows, seed=seed)
    while batch := list(islice(stream, BATCH)):
        out.put([parse_step_result(row) for row in batch])
    out.put(None)


async def _build(store: Store, rows: int, seed: int, location: str) -> Manifest:
    say(f"dataset: building {rows:,} rows (seed {seed}) on {store.kind} at {location}")
    started = time.perf_counter()
    engine = store.engine()
    try:
        await migrate.upgrade(engine)
        indexes = await _drop_secondary_indexes(engine)
        load_started = time.perf_counter()
        await _load(engine, rows, seed)
        load_seconds = time.perf_counter() - load_started
        index_started = time.perf_counter()
        await _create_indexes(engine, indexes)
        index_seconds = time.perf_counter() - index_started
        flows = await _flow_sizes(engine)
        revision = await _revision(engine)
    finally:
        await engine.dispose()
    manifest = Manifest(
        version=MANIFEST_VERSION,
        kind=store.kind,
        rows=rows,
        seed=seed,
        location=location,
        schema_revision=revision,
        flows=flows,
        built_at=datetime.now(UTC).isoformat(timespec="seconds"),
        build_seconds=round(time.perf_counter() - started, 1),
        load_seconds=round(load_seconds, 1),
        index_seconds=round(index_seconds, 1),
    )
    path = _manifest_path(store.kind, rows, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(asdict(manifest), indent=2) + "\n")
    say(
        f"dataset: {rows:,} rows on {store.kind} in {manifest.build_seconds:,.0f} s "
        f"(load {manifest.load_seconds:,.0f} s, indexes {manifest.index_seconds:,.0f} s)"
    )
    return manifest


async def _load(engine: AsyncEngine, rows: int, seed: int) -> None:
    batches: queue.Queue[list[dict[str, Any]] | None] = queue.Queue(maxsize=4)
    producer = threading.Thread(target=_batches, args=(rows, seed, batches), daemon=True)
    producer.start()
    started = time.perf_counter()
    written = 0
    summary = UpsertSummary()
    reported = 0.0
    connection = await engine.connect()
    try:
        transaction = await connection.begin()
        in_transaction = 0
        while (batch := await asyncio.to_thread(batches.get)) is not None:
            summary += await upsert_step_results(connection, batch)
            written += len(batch)
            in_transaction += len(batch)
            if in_transaction >= COMMIT_EVERY:
                await transaction.commit()
                transaction = await connection.begin()
                in_transaction = 0
            elapsed = time.perf_counter() - started
            if elapsed - reported >= 10 or written == rows:
                reported = elapsed
                rate = written / elapsed
                say(
                    f"dataset: {written:,}/{rows:,} rows, {rate:,.0f} rows/s, "
                    f"{(rows - written) / rate:,.0f} s to go"
                )
        await transaction.commit()
    finally:
        await connection.close()
    producer.join()
    if summary.inserted != rows:
        raise RuntimeError(f"expected {rows:,} new rows, the store counted {summary}")


def _secondary_indexes(connection: Connection) -> list[tuple[str, str]]:
    """(name, CREATE INDEX statement) of every index on step_results but the primary key."""
    if connection.dialect.name == "postgresql":
        found = connection.execute(
            text(
                "SELECT i.indexname, i.indexdef FROM pg_indexes i "
                "JOIN pg_class c ON c.relname = i.indexname "
                "JOIN pg_index x ON x.indexrelid = c.oid "
                "WHERE i.tablename = 'step_results' AND NOT x.indisprimary"
            )
        )
    else:
        found = connection.execute(
            text(
                "SELECT name, sql FROM sqlite_master "
                "WHERE type = 'index' AND tbl_name = 'step_results' AND sql IS NOT NULL"
            )
        )
    return [(str(name), str(sql)) for name, sql in found]


async def _drop_secondary_indexes(engine: AsyncEngine) -> list[tuple[str, str]]:
    async with engine.begin() as connection:
        indexes = await connection.run_sync(_secondary_indexes)
        for name, _ in indexes:
            await connection.execute(text(f'DROP INDEX "{name}"'))
    return indexes


async def _create_indexes(engine: AsyncEngine, indexes: list[tuple[str, str]]) -> None:
    postgres = engine.dialect.name == "postgresql"
    async with engine.connect() as connection:
        if postgres:
            await connection.execute(text("SET maintenance_work_mem = '1GB'"))
        for number, (name, statement) in enumerate(indexes, start=1):
            started = time.perf_counter()
            await connection.execute(text(statement))
            await connection.commit()
            say(
                f"dataset: index {number}/{len(indexes)} {name} in "
                f"{time.perf_counter() - started:,.0f} s"
            )
    if postgres:
        started = time.perf_counter()
        async with engine.connect() as connection:
            # VACUUM cannot run inside a transaction.
            autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
            await autocommit.execute(text("VACUUM (ANALYZE) step_results"))
        say(f"dataset: VACUUM (ANALYZE) in {time.perf_counter() - started:,.0f} s")


async def _flow_sizes(engine: AsyncEngine) -> dict[str, int]:
    async with engine.connect() as connection:
        result = await connection.execute(
            text("SELECT flow_id, count(*) FROM step_results GROUP BY flow_id ORDER BY 2 DESC")
        )
        return {str(flow): int(count) for flow, count in result}


async def _migrated(store: Store, cached: Manifest) -> Manifest:
    """The manifest of a reused store, with the schema revision it was migrated to."""
    engine = store.engine()
    try:
        revision = await _revision(engine)
    finally:
        await engine.dispose()
    if revision == cached.schema_revision:
        return cached
    manifest = replace(cached, schema_revision=revision)
    path = _manifest_path(store.kind, manifest.rows, manifest.seed)
    path.write_text(json.dumps(asdict(manifest), indent=2) + "\n")
    return manifest


async def _revision(engine: AsyncEngine) -> str:
    async with engine.connect() as connection:
        result = await connection.execute(text("SELECT version_num FROM alembic_version"))
        return str(result.scalar_one())
