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
    header = (
        f"{variant}: {requests} requests of {rows} rows (all fields), profiled.\n"
        f"CPU per request: {cpu * 1000 / requests:.3f} ms in all, "
        f"{main * 1000 / requests:.3f} ms on the event loop's thread (profiled below), "
        f"{(cpu - main) * 1000 / requests:.3f} ms on the store's worker thread (aiosqlite).\n"
        "Profiling slows Python down; read the shares, not the absolute times.\n\n"
    )
    text = profiler.output_text(unicode=False, color=False, show_all=False)
    return header + text


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
