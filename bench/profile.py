"""Where a GraphQL page's CPU goes now: a pyinstrument profile of the served path.

The page of the in-process benchmark (25 rows, all fields) is requested over and
over through the ASGI app. pyinstrument samples the event loop's thread by its own
CPU time (``time.thread_time``), so waiting for the store costs nothing in the
profile; the store's worker thread (aiosqlite) is reported separately from
``time.process_time``. The text goes to ``bench/profile-graphql.txt`` (and the REST
twin's to ``bench/profile-rest.txt``, for comparison).

``python -m bench.profile [--requests N] [--rows N]``
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from pathlib import Path

import uvloop
from pyinstrument import Profiler
from pyinstrument.stack_sampler import get_stack_sampler

from bench import dataset
from bench.harness import (
    BENCH_DIR,
    bench_settings,
    graphql_request,
    prepare_target,
    rest_request,
    running_app,
)


async def _profile(variant: str, rows: int, requests: int) -> str:
    path = dataset.ensure()
    settings = bench_settings(path)
    target = await prepare_target(settings)
    async with running_app(settings) as app:
        send = (graphql_request if variant == "graphql" else rest_request)(app, target, rows)
        for _ in range(50):
            await send()
        sampler = get_stack_sampler()
        sampler.timer_func = time.thread_time
        profiler = Profiler(interval=0.0005)
        cpu, main = time.process_time(), time.thread_time()
        profiler.start()
        for _ in range(requests):
            await send()
        profiler.stop()
        cpu, main = time.process_time() - cpu, time.thread_time() - main
        sampler.timer_func = None
    shares = _by_package(profiler)
    table = "\n".join(f"  {share:5.1%}  {package}" for package, share in shares)
    header = (
        f"{variant}: {requests} requests of {rows} rows (all fields), profiled.\n"
        f"CPU per request: {cpu * 1000 / requests:.3f} ms in all, "
        f"{main * 1000 / requests:.3f} ms on the event loop's thread (profiled below), "
        f"{(cpu - main) * 1000 / requests:.3f} ms on the store's worker thread (aiosqlite).\n"
        "Profiling slows Python down; read the shares, not the absolute times.\n\n"
        f"Event loop thread CPU by package (self time):\n{table}\n\n"
    )
    text = profiler.output_text(unicode=False, color=False, show_all=False)
    return header + text


def _package(path: str) -> str:
    """The package a file belongs to (stepgraph modules by name)."""
    parts = Path(path).parts
    if "site-packages" in parts:
        return parts[parts.index("site-packages") + 1].split(".")[0]
    if "stepgraph" in parts:
        return "stepgraph." + ".".join(parts[parts.index("stepgraph") + 1 :]).removesuffix(".py")
    if "bench" in parts:
        return "the benchmark's client"
    return "python stdlib" if "python3" in path else Path(path).name


def _by_package(profiler: Profiler) -> list[tuple[str, float]]:
    """Self time per package, as shares of the profiled thread's CPU, largest first.

    Time in C functions (builtins, orjson, uvloop internals) counts for the package of
    the Python code that called them: that code is what asked for the work.
    """
    session = profiler.last_session
    assert session is not None
    root = session.root_frame()
    totals: dict[str, float] = defaultdict(float)
    pending = [(root, "event loop")] if root is not None else []
    while pending:
        frame, caller = pending.pop()
        path = frame.file_path
        package = _package(path) if path and not path.startswith("<") else caller
        if path and path.startswith("<rows"):
            package = "stepgraph.graphql.row_renderers (generated)"
        elif path and path.startswith("<stored rows"):
            package = "stepgraph.store.json_rows (generated)"
        pending.extend((child, package) for child in frame.children)
        if frame.total_self_time:
            totals[package] += frame.total_self_time
    whole = sum(totals.values()) or 1.0
    ranked = sorted(totals.items(), key=lambda item: -item[1])
    return [(package, seconds / whole) for package, seconds in ranked if seconds / whole >= 0.005]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rows", type=int, default=25)
    args = parser.parse_args()
    for variant in ("graphql", "rest"):
        text = uvloop.run(_profile(variant, args.rows, args.requests))
        out = BENCH_DIR / f"profile-{variant}.txt"
        out.write_text(text)
        print(text.split("\n\n", 1)[0])
        print(f"-> {out.relative_to(BENCH_DIR.parent)}\n")


if __name__ == "__main__":
    main()
