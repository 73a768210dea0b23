"""Import rate: rows per second through ``import_file`` and through the store's upsert alone.

Each run starts from an empty store and measures, in this order:

* ``file, new rows``: ``import_file`` of an NDJSON file (JSON decoding, contract
  checks and the upsert, as ``stepgraph import`` does);
* ``file, unchanged``: the same file again (every row identical, nothing written);
* ``file, 10% changed``: a copy of the file with every tenth row altered;
* ``upsert, new rows``: ``upsert_step_results`` alone on rows parsed beforehand, in
  batches of the importer's size, into another empty store.

With ``--baseline REV`` the upsert of ``src/stepgraph/store/writes.py`` at git
revision REV runs too, interleaved with the working tree's in every run, so that
"before" and "after" see the same machine load.
"""

from __future__ import annotations

import subprocess
import sys
import types
from collections.abc import Callable, Coroutine, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any
from unittest import mock

import orjson
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

import stepgraph.importer
from bench.scale.common import (
    CACHE,
    ROOT,
    Store,
    median,
    migrated,
    postgres_store,
    recreate_postgres_database,
    say,
    sqlite_store,
    timed_with_cpu,
)
from stepgraph.demo import generate_demo_step_results
from stepgraph.importer import PROGRESS_EVERY, ImportReport, import_file
from stepgraph.records import parse_step_result
from stepgraph.store import writes

Upsert = Callable[[AsyncConnection, Sequence[dict[str, Any]]], Coroutine[Any, Any, Any]]
MEASURES = ("file, new rows", "file, unchanged", "file, 10% changed", "upsert, new rows")
SCRATCH_DATABASE = "stepgraph_bench_import"


@dataclass(frozen=True, slots=True)
class Variant:
    """One implementation of the upsert under test."""

    name: str
    upsert: Upsert


@dataclass(slots=True)
class ImportRates:
    """Seconds per measure, per store and variant, over every run."""

    rows: int
    runs: int
    seconds: dict[tuple[str, str, str], list[float]] = field(default_factory=dict)
    cpu_seconds: dict[tuple[str, str, str], list[float]] = field(default_factory=dict)

    def add(self, store: str, variant: str, measure: str, seconds: float, cpu: float) -> None:
        """Record one timing: wall seconds and this process's CPU seconds."""
        self.seconds.setdefault((store, variant, measure), []).append(seconds)
        self.cpu_seconds.setdefault((store, variant, measure), []).append(cpu)

    def rate(self, store: str, variant: str, measure: str) -> float:
        """Median rows per second (wall clock)."""
        return self.rows / median(self.seconds.get((store, variant, measure), []))

    def cpu_per_row(self, store: str, variant: str, measure: str) -> float:
        """Median CPU microseconds per row spent in this process (SQLite's work included)."""
        return median(self.cpu_seconds.get((store, variant, measure), [])) / self.rows * 1e6

    def table(self, stores: Sequence[str], variants: Sequence[str]) -> str:
        """A Markdown table: one row per store and measure, one column per variant."""
        header = ["store", "measure", *(f"{v} rows/s" for v in variants)]
        if len(variants) == 2:
            header.append("speed-up")
        header += [f"{v} client CPU µs/row" for v in variants]
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for store in stores:
            for measure in MEASURES:
                rates = [self.rate(store, v, measure) for v in variants]
                cells = [store, measure, *(f"{r:,.0f}" for r in rates)]
                if len(rates) == 2:
                    cells.append(f"{rates[1] / rates[0]:.1f}x")
                cells += [f"{self.cpu_per_row(store, v, measure):,.0f}" for v in variants]
                lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines)

    def as_json(self) -> dict[str, Any]:
        """Plain data for results.json."""
        return {
            "rows": self.rows,
            "runs": self.runs,
            "seconds": [
                {
                    "store": s,
                    "variant": v,
                    "measure": m,
                    "seconds": t,
                    "cpu_seconds": self.cpu_seconds[(s, v, m)],
                }
                for (s, v, m), t in sorted(self.seconds.items())
            ],
        }


def baseline_variant(revision: str) -> Variant:
    """The upsert as it was at a git revision (read with ``git show``, nothing checked out)."""
    source = subprocess.run(
        ["git", "show", f"{revision}:src/stepgraph/store/writes.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    name = f"bench_scale_writes_{revision.replace('-', '_')}"
    module = types.ModuleType(name)
    module.__file__ = f"{revision}:src/stepgraph/store/writes.py"
    sys.modules[name] = module
    exec(compile(source, module.__file__, "exec"), module.__dict__)
    return Variant(f"before ({revision[:7]})", module.upsert_step_results)


def current_variant() -> Variant:
    """The upsert of the working tree."""
    return Variant("after", writes.upsert_step_results)


def import_files(rows: int, seed: int) -> tuple[Path, Path]:
    """The NDJSON file of ``rows`` demo rows and its 10%-changed twin, cached."""
    folder = CACHE / "scale" / "import"
    folder.mkdir(parents=True, exist_ok=True)
    original = folder / f"demo-{rows}-seed{seed}.ndjson"
    changed = folder / f"demo-{rows}-seed{seed}-changed.ndjson"
    if not (original.exists() and changed.exists()):
        with original.open("wb") as plain, changed.open("wb") as altered:
            for i, row in enumerate(generate_demo_step_results(rows, seed=seed)):
                plain.write(orjson.dumps(row) + b"\n")
                if i % 10 == 0:
                    row = {
                        **row,
                        "outputPreview": f"re-run {i}",
                        "retryCount": row["retryCount"] + 1,
                    }
                altered.write(orjson.dumps(row) + b"\n")
    return original, changed


@contextmanager
def _importer_using(variant: Variant) -> Iterator[None]:
    # The importer binds the upsert at import time; swap that binding for the variant's.
    with mock.patch.object(stepgraph.importer, "upsert_step_results", variant.upsert):
        yield


def _fresh_sqlite(path: Path) -> Store:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return sqlite_store(path)


async def _fresh(kind: str, scratch: Path, server_url: str | None) -> Store:
    if kind == "sqlite":
        return _fresh_sqlite(scratch / "import.db")
    assert server_url is not None
    await recreate_postgres_database(server_url, SCRATCH_DATABASE)
    return postgres_store(server_url, SCRATCH_DATABASE)


async def _upsert_all(
    engine: AsyncEngine, variant: Variant, parsed: Sequence[dict[str, Any]]
) -> None:
    async with engine.begin() as connection:
        for i in range(0, len(parsed), PROGRESS_EVERY):
            await variant.upsert(connection, parsed[i : i + PROGRESS_EVERY])


def _expect(report: ImportReport, expected: tuple[int, int, int]) -> None:
    # A fast import that miscounts would be no improvement: check every run's counts.
    got = (report.inserted, report.updated, report.unchanged)
    if got != expected:
        raise AssertionError(f"import counted {got}, expected {expected}")


async def measure_import_rates(
    *,
    stores: Sequence[str],
    server_url: str | None,
    rows: int,
    seed: int,
    runs: int,
    variants: Sequence[Variant],
) -> ImportRates:
    """Time every measure on every store for every variant, interleaved, ``runs`` times."""
    original, changed = import_files(rows, seed)
    parsed = [parse_step_result(row) for row in generate_demo_step_results(rows, seed=seed)]
    altered = len(range(0, rows, 10))
    scratch = CACHE / "scale" / "import"
    rates = ImportRates(rows=rows, runs=runs)
    for run in range(runs):
        # Alternate which variant goes first, so that neither always meets a warmer machine.
        ordered = list(variants) if run % 2 == 0 else list(reversed(variants))
        for variant in ordered:
            for kind in stores:
                store = await _fresh(kind, scratch, server_url)
                async with migrated(store) as engine:
                    with _importer_using(variant):
                        for measure, path, expected in (
                            (MEASURES[0], original, (rows, 0, 0)),
                            (MEASURES[1], original, (0, 0, rows)),
                            (MEASURES[2], changed, (0, altered, rows - altered)),
                        ):
                            seconds, cpu, report = await timed_with_cpu(
                                partial(import_file, engine, path)
                            )
                            _expect(report, expected)
                            rates.add(kind, variant.name, measure, seconds, cpu)
                store = await _fresh(kind, scratch, server_url)
                async with migrated(store) as engine:
                    seconds, cpu, _ = await timed_with_cpu(
                        partial(_upsert_all, engine, variant, parsed)
                    )
                    rates.add(kind, variant.name, MEASURES[3], seconds, cpu)
                say(
                    f"import rate, run {run + 1}/{runs}, {kind}, {variant.name}: "
                    + ", ".join(
                        f"{m} {rates.rows / rates.seconds[(kind, variant.name, m)][-1]:,.0f}/s"
                        for m in MEASURES
                    )
                )
    return rates
