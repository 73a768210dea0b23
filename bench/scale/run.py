"""``python -m bench.scale``: build the large datasets, then measure and explain over them.

Steps (``--steps``, default all, in this order):

* ``build``: the cached datasets (``bench/.cache/scale/``), built when missing;
* ``import``: import rows per second on fresh stores (``--baseline REV`` adds the
  upsert of a git revision, interleaved, for a before/after comparison);
* ``figures``: page, cursor, offset, count and stats timings over the datasets;
* ``explain``: the query plan of every filter and sort combination, written to
  ``bench/scale/explain-<store>.txt`` and checked (see ``bench.scale.explain``).

Results go to ``bench/scale/results.json`` (merged with earlier steps' results; another
file with ``--results``) and the tables to ``bench/scale/results.md``. The exit status is
1 when a plan scans other flows' rows. Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench.scale import explain, figures, importing
from bench.scale.common import HERE, load_average, machine_notes, postgres_server_url, say
from bench.scale.datasets import Dataset, postgres_dataset, sqlite_dataset

STEPS = ("build", "import", "figures", "explain")
RESULTS_JSON = HERE / "results.json"


def build_parser() -> argparse.ArgumentParser:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.scale",
        description="Scale benchmarks of stepgraph on SQLite and PostgreSQL.",
    )
    parser.add_argument(
        "--steps",
        default=",".join(STEPS),
        help=f"comma-separated steps to run, of {', '.join(STEPS)} (default: all)",
    )
    parser.add_argument(
        "--stores", default="sqlite,postgres", help="comma-separated stores (default: both)"
    )
    parser.add_argument(
        "--sqlite-rows", type=int, default=1_000_000, help="rows of the SQLite dataset"
    )
    parser.add_argument(
        "--postgres-rows", type=int, default=10_000_000, help="rows of the PostgreSQL dataset"
    )
    parser.add_argument("--seed", type=int, default=7, help="seed of the demo generator")
    parser.add_argument(
        "--postgres-url",
        default=None,
        help="PostgreSQL server (SQLAlchemy URL; its database is only used to create others); "
        "default $STEPGRAPH_BENCH_POSTGRES_URL or postgresql+asyncpg://postgres@127.0.0.1:5432/test",
    )
    parser.add_argument("--runs", type=int, default=7, help="interleaved runs per figure")
    parser.add_argument(
        "--depth", type=int, default=500_000, help="rows skipped before the deep pages"
    )
    parser.add_argument("--import-rows", type=int, default=20_000, help="rows per import run")
    parser.add_argument("--import-runs", type=int, default=7, help="import runs")
    parser.add_argument(
        "--baseline",
        metavar="REV",
        default=None,
        help="also time the upsert of this git revision, interleaved with the working tree's",
    )
    parser.add_argument(
        "--results",
        type=Path,
        default=RESULTS_JSON,
        help="JSON file the results are merged into; the tables go next to it as .md "
        f"(default {RESULTS_JSON.relative_to(HERE.parents[1])})",
    )
    return parser


async def _datasets(args: argparse.Namespace, stores: Sequence[str]) -> dict[str, Dataset]:
    found: dict[str, Dataset] = {}
    if "sqlite" in stores:
        found["sqlite"] = await sqlite_dataset(args.sqlite_rows, args.seed)
    if "postgres" in stores:
        found["postgres"] = await postgres_dataset(
            postgres_server_url(args.postgres_url), args.postgres_rows, args.seed
        )
    return found


def _load_results(path: Path) -> dict[str, Any]:
    try:
        loaded: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return loaded


async def run(args: argparse.Namespace) -> int:
    """Run the chosen steps; 1 when a plan check failed."""
    steps = [s.strip() for s in args.steps.split(",") if s.strip()]
    stores = [s.strip() for s in args.stores.split(",") if s.strip()]
    unknown = sorted(set(steps) - set(STEPS)) + sorted(set(stores) - {"sqlite", "postgres"})
    if unknown:
        raise SystemExit(f"unknown step or store: {', '.join(unknown)}")
    results = _load_results(args.results)
    status = 0
    timings: dict[str, float] = {}
    datasets: dict[str, Dataset] = {}
    if {"build", "figures", "explain"} & set(steps):
        started = time.perf_counter()
        datasets = await _datasets(args, stores)
        timings["datasets"] = round(time.perf_counter() - started, 1)
        results["datasets"] = {
            kind: {**asdict(d.manifest), "reused": d.reused} for kind, d in datasets.items()
        }
    if "import" in steps:
        started = time.perf_counter()
        load_at_start = load_average()
        variants = [importing.current_variant()]
        if args.baseline:
            variants.insert(0, importing.baseline_variant(args.baseline))
        rates = await importing.measure_import_rates(
            stores=stores,
            server_url=postgres_server_url(args.postgres_url) if "postgres" in stores else None,
            rows=args.import_rows,
            seed=args.seed,
            runs=args.import_runs,
            variants=variants,
        )
        results["import"] = {
            **rates.as_json(),
            "table": rates.table(stores, [v.name for v in variants]),
            "load_average_at_start": load_at_start,
            "machine": machine_notes(),
        }
        timings["import"] = round(time.perf_counter() - started, 1)
    if "figures" in steps:
        started = time.perf_counter()
        load_at_start = load_average()
        measured = await figures.measure(datasets, runs=args.runs, depth=args.depth)
        results["figures"] = {
            **measured,
            "load_average_at_start": load_at_start,
            "machine": machine_notes(),
        }
        timings["figures"] = round(time.perf_counter() - started, 1)
    if "explain" in steps:
        started = time.perf_counter()
        problems = await explain.explain_all(datasets)
        results["explain"] = {"problems": problems, "machine": machine_notes()}
        if problems:
            status = 1
            for problem in problems:
                say(f"explain: {problem}")
        timings["explain"] = round(time.perf_counter() - started, 1)
    results.setdefault("step_seconds", {}).update(timings)
    args.results.write_text(json.dumps(results, indent=2, default=str) + "\n")
    args.results.with_suffix(".md").write_text(figures.markdown(results))
    say(f"results: {args.results}, step seconds {timings}")
    return status


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m bench.scale``."""
    args = build_parser().parse_args(argv)
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
