"""The benchmark store: demo step results in a SQLite file, built once and cached.

Rows come from :func:`stepgraph.demo.generate_demo_step_results` (so the skew of
real traffic is there: a few flows hold most rows), are validated by
:func:`stepgraph.records.parse_step_result` and rendered by the store's own column
types, then written with plain ``sqlite3`` executemany: the table, its indexes and
every stored value are exactly what the gateway itself would have written, only
faster. One process generates while another writes.

``python -m bench.dataset [--rows N]`` builds the file if it is missing and prints
its path.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import multiprocessing
import sqlite3
import sys
import time
from collections.abc import Callable, Iterator
from multiprocessing.queues import Queue
from pathlib import Path
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import sqlite as sqlite_dialect

from stepgraph.demo import DEMO_SEED, generate_demo_step_results
from stepgraph.records import parse_step_result
from stepgraph.settings import Settings
from stepgraph.store import migrate
from stepgraph.store.engine import create_engine
from stepgraph.store.tables import flows, step_results

CACHE = Path(__file__).resolve().parent / ".cache"
DEFAULT_ROWS = 1_000_000
_BATCH = 5000
# Bumped when the way the file is built changes, so a stale cache is not reused.
_FORMAT = 1


def dataset_path(rows: int = DEFAULT_ROWS) -> Path:
    """Where the dataset of ``rows`` rows lives."""
    return CACHE / f"step_results_{rows}_v{_FORMAT}.db"


def database_url(path: Path) -> str:
    """The gateway's URL for a dataset file."""
    return f"sqlite+aiosqlite:///{path.as_posix()}"


def _renderer(table: Table) -> Callable[[dict[str, Any]], tuple[Any, ...]]:
    """A store row as the values SQLAlchemy would bind for ``table`` on SQLite."""
    dialect = sqlite_dialect.dialect()  # type: ignore[no-untyped-call]
    processors = [
        (column.name, column.type.dialect_impl(dialect).bind_processor(dialect))
        for column in table.c
    ]

    def render(row: dict[str, Any]) -> tuple[Any, ...]:
        return tuple(row[name] if bind is None else bind(row[name]) for name, bind in processors)

    return render


def _produce(rows: int, queue: Queue[list[tuple[Any, ...]] | None]) -> None:
    render = _renderer(step_results)
    generated = generate_demo_step_results(rows, seed=DEMO_SEED)
    while batch := list(itertools.islice(generated, _BATCH)):
        queue.put([render(parse_step_result(row)) for row in batch])
    queue.put(None)


def _batches(rows: int) -> Iterator[list[tuple[Any, ...]]]:
    context = multiprocessing.get_context("spawn")
    queue: Queue[list[tuple[Any, ...]] | None] = context.Queue(maxsize=8)
    producer = context.Process(target=_produce, args=(rows, queue), daemon=True)
    producer.start()
    while (batch := queue.get()) is not None:
        yield batch
    producer.join()


async def _migrate(path: Path) -> None:
    engine = create_engine(Settings(database_url=database_url(path)))
    try:
        await migrate.upgrade(engine)
    finally:
        await engine.dispose()


def build(path: Path, rows: int) -> None:
    """Write ``rows`` demo step results (and their flows) into a new file at ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    partial.unlink(missing_ok=True)
    asyncio.run(_migrate(partial))
    columns = [column.name for column in step_results.c]
    insert = (
        f"INSERT INTO step_results ({', '.join(columns)}) "
        f"VALUES ({', '.join('?' for _ in columns)})"
    )
    positions = {name: i for i, name in enumerate(columns)}
    flow_owner: dict[str, tuple[str, str]] = {}
    started = time.monotonic()
    connection = sqlite3.connect(partial)
    try:
        # A throwaway file while it is built: no journal, no fsync, a big page cache.
        connection.execute("PRAGMA journal_mode=OFF")
        connection.execute("PRAGMA synchronous=OFF")
        connection.execute("PRAGMA cache_size=-2000000")
        done = 0
        for batch in _batches(rows):
            connection.executemany(insert, batch)
            for row in batch:
                flow_id = row[positions["flow_id"]]
                created = row[positions["created_at"]]
                known = flow_owner.get(flow_id)
                if known is None or created < known[1]:
                    flow_owner[flow_id] = (row[positions["organization_id"]], created)
            done += len(batch)
            if done % 100_000 == 0 or done == rows:
                print(f"dataset: {done:,}/{rows:,} rows, {time.monotonic() - started:.0f}s")
        connection.executemany(
            f"INSERT INTO {flows.name} (id, organization_id, created_at) VALUES (?, ?, ?)",
            [(flow_id, owner, created) for flow_id, (owner, created) in flow_owner.items()],
        )
        connection.commit()
        connection.execute("PRAGMA journal_mode=WAL")
        connection.commit()
    finally:
        connection.close()
    partial.replace(path)


def ensure(rows: int = DEFAULT_ROWS) -> Path:
    """The dataset's path, building it first when it is not cached yet."""
    path = dataset_path(rows)
    if not path.exists():
        print(f"dataset: building {path} ({rows:,} rows, once)", file=sys.stderr)
        build(path, rows)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=DEFAULT_ROWS)
    args = parser.parse_args()
    print(ensure(args.rows))


if __name__ == "__main__":
    main()
