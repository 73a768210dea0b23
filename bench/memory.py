"""Memory of one worker over 100,000 requests: resident set size as the requests go by.

One uvicorn worker serves a mix a frontend sends: GraphQL pages through every offset
of the first 200 pages (more variable sets than any cache keeps, so caches churn),
three other selections of the page, and the REST twin. wrk sends them from another
process in runs of a few seconds until the total passes the target; the worker's RSS
is read from /proc after each run.

``python -m bench.memory [--requests N] [--run-seconds S] [--max-seconds S]``
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import time
from pathlib import Path

import orjson

from bench import dataset
from bench.harness import (
    ALL_FIELDS,
    Target,
    bench_settings,
    machine_notes,
    median,
    prepare_target,
)
from bench.servers import Server, serving

SELECTIONS = [
    ALL_FIELDS,
    "id status stepName durationMs totalTokens estimatedCost createdAt",
    "id recordName status errorMessage ... on StepResult { startedAt completedAt }",
    "rowId: id, state: status, __typename, cost: estimatedCost",
]
PAGES = 200
LIMIT = 25


def _lua(text: str) -> str:
    assert text.isascii()
    return orjson.dumps(text).decode()


def mix_script(target: Target, path: Path) -> Path:
    """A wrk script cycling through the mix."""
    requests: list[str] = []
    auth = f"Bearer {target.key}"
    for page in range(PAGES):
        selection = SELECTIONS[page % len(SELECTIONS)]
        query = (
            "query Page($flowId: ID!, $limit: Int, $offset: Int) { "
            "stepResults(flowId: $flowId, limit: $limit, offset: $offset) { "
            f"data {{ {selection} }} pagination {{ limit offset returned hasMore }} }} }}"
        )
        variables = {"flowId": target.flow_id, "limit": LIMIT, "offset": page * LIMIT}
        body = orjson.dumps({"query": query, "variables": variables}).decode()
        headers = f'{{["Authorization"] = {_lua(auth)}, ["Content-Type"] = "application/json"}}'
        requests.append(f'wrk.format("POST", "/graphql", {headers}, {_lua(body)})')
        if page % 4 == 0:
            rest = f"/v1/flows/{target.flow_id}/step-results?limit={LIMIT}&offset={page * LIMIT}"
            requests.append(
                f'wrk.format("GET", {_lua(rest)}, {{["Authorization"] = {_lua(auth)}}})'
            )
    lines = [
        "local requests = {}",
        "local next_request = 0",
        "function init(args)",
        *(f"  requests[{i + 1}] = {request}" for i, request in enumerate(requests)),
        "end",
        "function request()",
        "  next_request = next_request % #requests + 1",
        "  return requests[next_request]",
        "end",
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def _run(server: Server, script: Path, seconds: int) -> tuple[int, int]:
    """Keep 16 connections busy for ``seconds``; (requests sent, non-2xx responses)."""
    output = subprocess.run(
        ["wrk", "-t1", "-c16", f"-d{seconds}s", "--timeout", "10s", "-s", str(script), server.url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    sent = errors = 0
    for line in output.splitlines():
        if "requests in" in line:
            sent = int(line.split()[0])
        elif line.strip().startswith("Non-2xx"):
            errors = int(line.split()[-1])
    return sent, errors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--run-seconds", type=int, default=15)
    parser.add_argument("--max-seconds", type=float, default=540, help="stop early after this")
    args = parser.parse_args()
    for note in machine_notes():
        print(f"- {note}")
    path = dataset.ensure()
    settings = bench_settings(path)
    target = asyncio.run(prepare_target(settings))
    script = mix_script(target, dataset.CACHE / "wrk" / "memory-mix.lua")
    samples: list[tuple[int, float, float]] = []
    started = time.monotonic()
    errors = 0
    with serving(settings.database_url) as server:
        samples.append((0, 0.0, server.rss_mib()))
        total = 0
        while total < args.requests and time.monotonic() - started < args.max_seconds:
            sent, failed = _run(server, script, args.run_seconds)
            total += sent
            errors += failed
            samples.append((total, time.monotonic() - started, server.rss_mib()))
            print(f"memory: {total:,} requests, RSS {samples[-1][2]:.1f} MiB", flush=True)
        cpu = server.cpu_seconds()
    _report(samples, errors, cpu, args.requests)


def _slope(points: list[tuple[int, float]]) -> float:
    """Least-squares slope of RSS against requests: a leak shows as a steady climb."""
    n = len(points)
    if n < 2:
        return 0.0
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    spread = sum((x - mean_x) ** 2 for x, _ in points)
    return sum((x - mean_x) * (y - mean_y) for x, y in points) / spread if spread else 0.0


def _report(samples: list[tuple[int, float, float]], errors: int, cpu: float, wanted: int) -> None:
    total, seconds, final = samples[-1]
    second_half = [(count, rss) for count, _, rss in samples if count >= total / 2]
    half = [rss for _, rss in second_half]
    print(
        f"\n{total:,} requests in {seconds:.0f}s ({total / max(seconds, 1e-9):.0f}/s), "
        f"{errors} non-2xx, worker CPU {cpu:.0f}s"
    )
    if total < wanted:
        print(f"(stopped early: {wanted:,} wanted)")
    print(f"RSS at start {samples[0][2]:.1f} MiB, at the end {final:.1f} MiB")
    quarters = [
        [rss for count, _, rss in samples[1:] if q * total / 4 < count <= (q + 1) * total / 4]
        for q in range(4)
    ]
    medians = ", ".join(f"{median(q):.1f}" if q else "-" for q in quarters)
    print(f"median RSS per quarter of the run: {medians} MiB")
    print(
        f"second half: min {min(half):.1f}, max {max(half):.1f} MiB, "
        f"trend {_slope(second_half) * 10_000:+.2f} MiB per 10,000 requests (least squares)\n"
    )
    print("| requests | seconds | RSS MiB |")
    print("|---:|---:|---:|")
    shown = -1
    for count, elapsed, rss in samples:
        if count // 10_000 != shown or count == total:
            shown = count // 10_000
            print(f"| {count:,} | {elapsed:.0f} | {rss:.1f} |")


if __name__ == "__main__":
    main()
