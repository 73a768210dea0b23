"""CPU per page, in one process: raw floor, REST twin, stock GraphQL, GraphQL as served.

Each variant answers the same page (the largest flow, newest first, every field) at
25, 100 and 500 rows. Variants are interleaved round by round, in a rotating order, each
round short (tens of milliseconds per variant) so that the machine's drift hits all of
a round's variants alike. The tables show medians over rounds of the process CPU time
per request (``time.process_time``: every thread, so aiosqlite's worker thread counts
too), and the ratios as medians of each round's own ratios. The served variants (raw
floor, REST twin, GraphQL) are measured in rounds of their own, for the targets; the
stock and executor paths and the parts of a request follow, for comparison.

``python -m bench.inprocess [--rounds N] [--seconds S]``
"""

from __future__ import annotations

import argparse
import gc
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import orjson
import uvloop
from sqlalchemy.ext.asyncio import AsyncEngine

from bench import dataset
from bench.harness import (
    SIZES,
    Reply,
    Target,
    bench_settings,
    graphql_request,
    machine_notes,
    median,
    prepare_target,
    rest_request,
    running_app,
)
from bench.raw_floor import RawFloor
from stepgraph.auth.authenticator import Authenticator
from stepgraph.query import PageLimits, StepResultQuery
from stepgraph.store import reads
from stepgraph.store.engine import create_engine, reading

Request = Callable[[], Awaitable[bytes]]


@dataclass
class Samples:
    """Per-round CPU and wall time per request, in milliseconds."""

    cpu: list[float] = field(default_factory=list)
    wall: list[float] = field(default_factory=list)


def _body(call: Callable[[], Awaitable[Reply]]) -> Request:
    async def request() -> bytes:
        reply = await call()
        if reply.status != 200:
            raise RuntimeError(f"status {reply.status}: {reply.body[:300]!r}")
        return reply.body

    return request


async def _measure(request: Request, count: int) -> tuple[float, float]:
    cpu = time.process_time()
    wall = time.perf_counter()
    for _ in range(count):
        await request()
    return (
        (time.process_time() - cpu) * 1000 / count,
        (time.perf_counter() - wall) * 1000 / count,
    )


async def _calibrate(request: Request, seconds: float) -> int:
    """How many requests fill about ``seconds`` of wall time (after a warm-up)."""
    for _ in range(3):
        await request()
    _, wall = await _measure(request, 3)
    return max(3, int(seconds * 1000 / max(wall, 0.001)))


def _check_same_page(bodies: dict[str, bytes]) -> None:
    """Every variant must answer the same rows, or the comparison means nothing."""
    rest = orjson.loads(bodies["rest"])
    assert bodies["raw"] == bodies["rest"], "the raw floor renders other bytes than REST"
    for name, body in bodies.items():
        if not name.startswith("graphql"):
            continue
        page = orjson.loads(body)["data"]["stepResults"]
        rows = [{**row, "status": row["status"].lower()} for row in page["data"]]
        assert rows == rest["data"], f"{name} answers other rows than REST"
        assert page["pagination"] == rest["pagination"], name
    graphql = [body for name, body in bodies.items() if name.startswith("graphql")]
    assert len(set(graphql)) == 1, "the GraphQL variants answer different bytes"


async def run(rounds: int, seconds: float) -> dict[int, dict[str, Samples]]:
    path = dataset.ensure()
    settings = bench_settings(path)
    target = await prepare_target(settings)
    results: dict[int, dict[str, Samples]] = {}
    engine = create_engine(settings, statement_timeout_ms=settings.statement_timeout_ms)
    async with (
        running_app(settings) as app,
        running_app(settings, "executor") as executor,
        running_app(settings, "stock") as stock,
    ):
        for rows in SIZES:
            floor = RawFloor(path, target.flow_id, target.organization_id, rows)

            async def raw(floor: RawFloor = floor) -> bytes:
                return floor.page()

            served: dict[str, Request] = {
                "raw": raw,
                "rest": _body(rest_request(app, target, rows)),
                "graphql": _body(graphql_request(app, target, rows)),
            }
            others: dict[str, Request] = {
                "graphql-stock": _body(graphql_request(stock, target, rows)),
                "graphql-executor": _body(graphql_request(executor, target, rows)),
            }
            _check_same_page(
                {name: await request() for name, request in {**served, **others}.items()}
            )
            # The targets' ratios, from rounds of the served variants only: a stock GraphQL
            # request allocates and touches so much more that, interleaved in the same short
            # rounds, it leaves the caches and the collector to whichever variant follows it.
            samples = await _rounds(served, rounds, seconds)
            results[rows] = samples
            _print_table(f"{rows} rows, all 30 fields ({rounds} rounds)", samples)
            # For comparison: the same variants with the stock and executor paths, and (at
            # 25 rows) what the REST twin's fixed cost is made of, in rounds of their own.
            comparison = {**served, **others}
            if rows == SIZES[0]:
                comparison.update(_parts(engine, target, rows))
            context = await _rounds(comparison, max(5, rounds // 10), seconds * 4)
            _print_table(f"{rows} rows, with the stock and executor paths", context)
    await engine.dispose()
    return results


async def _rounds(variants: dict[str, Request], rounds: int, seconds: float) -> dict[str, Samples]:
    """Per-round CPU and wall time of each variant, in a rotating order each round."""
    counts = {name: await _calibrate(request, seconds) for name, request in variants.items()}
    samples = {name: Samples() for name in variants}
    names = list(variants)
    for round_ in range(rounds):
        for name in names[round_ % len(names) :] + names[: round_ % len(names)]:
            gc.collect()
            cpu, wall = await _measure(variants[name], counts[name])
            samples[name].cpu.append(cpu)
            samples[name].wall.append(wall)
    return samples


def _parts(engine: AsyncEngine, target: Target, rows: int) -> dict[str, Request]:
    """Pieces of a request on their own: a checkout, the key check, the page read, and a
    statement through SQLAlchemy's execution (what reads other than pages and keys take)."""
    authenticator = Authenticator(engine)
    header = f"Bearer {target.key}"
    query = StepResultQuery.build(
        flow_id=target.flow_id, limits=PageLimits(maximum=max(SIZES)), limit=rows
    )

    async def checkout() -> bytes:
        async with reading(engine):
            pass
        return b""

    async def key_check() -> bytes:
        await authenticator.authenticate(header)
        return b""

    async def round_trip() -> bytes:
        async with reading(engine) as connection:
            await reads.ping(connection)
        return b""

    async def page_read() -> bytes:
        async with reading(engine) as connection:
            await reads.fetch_json_page(connection, query, organization_id=target.organization_id)
        return b""

    return {
        "part: connection checkout and return": checkout,
        "part: API key check (own connection)": key_check,
        "part: page read (fetch_json_page, own connection)": page_read,
        "part: SELECT 1 through SQLAlchemy": round_trip,
    }


def ratio(samples: dict[str, Samples], name: str, base: str) -> float:
    """The median over rounds of ``name``'s CPU over ``base``'s in the same round."""
    pairs = zip(samples[name].cpu, samples[base].cpu, strict=True)
    return median([cpu / base_cpu for cpu, base_cpu in pairs])


def _print_table(title: str, samples: dict[str, Samples]) -> None:
    print(f"\n### {title}\n")
    print("| variant | CPU ms/request (median) | wall ms | x REST | x raw |")
    print("|---|---:|---:|---:|---:|")
    for name, sample in samples.items():
        print(
            f"| {name} | {median(sample.cpu):.3f} | {median(sample.wall):.3f} | "
            f"{ratio(samples, name, 'rest'):.2f} | {ratio(samples, name, 'raw'):.2f} |"
        )
    print(flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=150)
    parser.add_argument("--seconds", type=float, default=0.03, help="wall time per batch")
    args = parser.parse_args()
    for note in machine_notes():
        print(f"- {note}")
    uvloop.run(run(args.rounds, args.seconds))


if __name__ == "__main__":
    main()
