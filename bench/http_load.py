"""Throughput and latency over HTTP: REST twin, GraphQL as served, stock GraphQL.

Each variant runs in a uvicorn worker (uvloop, httptools) in its own process; wrk,
in another process, keeps 16 connections busy with the same page (the largest flow,
newest first, every field). Variants are interleaved round by round and the table
shows medians over rounds: requests per second, p50 and p99 latency, and the
worker's CPU per request (from /proc, every thread).

``python -m bench.http_load [--rounds N] [--seconds S] [--connections C]``
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import subprocess
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from bench import dataset
from bench.harness import (
    PAGE_QUERY,
    Target,
    bench_settings,
    graphql_body,
    machine_notes,
    median,
    prepare_target,
)
from bench.servers import Server, serving

SIZES = (25, 100)
_DURATION = re.compile(r"([\d.]+)(us|ms|s)\b")


@dataclass
class Run:
    """Medians of the rounds of one variant."""

    rps: list[float] = field(default_factory=list)
    p50: list[float] = field(default_factory=list)
    p99: list[float] = field(default_factory=list)
    cpu_ms: list[float] = field(default_factory=list)
    errors: int = 0


def _lua_string(text: str) -> str:
    # A JSON string literal of ASCII text is a valid Lua string literal.
    assert text.isascii()
    return orjson.dumps(text).decode()


def request_script(target: Target, variant: str, rows: int, path: Path) -> Path:
    """A wrk script sending the variant's page request."""
    headers = {"Authorization": f"Bearer {target.key}"}
    if variant == "rest":
        method, url, body = "GET", f"/v1/flows/{target.flow_id}/step-results?limit={rows}", ""
    else:
        headers["Content-Type"] = "application/json"
        headers["Accept"] = "application/graphql-response+json"
        method, url = "POST", "/graphql"
        body = graphql_body(target, rows, PAGE_QUERY).decode()
    lines = [f"wrk.method = {_lua_string(method)}", f"wrk.path = {_lua_string(url)}"]
    if body:
        lines.append(f"wrk.body = {_lua_string(body)}")
    lines += [f"wrk.headers[{_lua_string(k)}] = {_lua_string(v)}" for k, v in headers.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def _milliseconds(text: str) -> float:
    match = _DURATION.search(text)
    if match is None:
        raise ValueError(f"not a duration: {text!r}")
    value, unit = float(match[1]), match[2]
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value


def wrk(server: Server, script: Path, *, seconds: float, connections: int) -> dict[str, float]:
    """One wrk run: requests/s, p50 and p99 in ms, requests, non-2xx responses."""
    command = [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{round(seconds)}s",
        "--latency",
        "--timeout",
        "10s",
        "-s",
        str(script),
        server.url,
    ]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    result: dict[str, float] = {"errors": 0.0}
    for line in output.splitlines():
        words = line.split()
        if line.startswith("Requests/sec:"):
            result["rps"] = float(words[1])
        elif len(words) == 2 and words[0] in {"50%", "99%"}:
            result["p" + words[0][:-1]] = _milliseconds(words[1])
        elif "requests in" in line:
            result["requests"] = float(words[0])
        elif line.strip().startswith("Non-2xx"):
            result["errors"] = float(words[-1])
    if "rps" not in result or "p99" not in result:
        raise RuntimeError(f"unexpected wrk output:\n{output}")
    return result


def _check(server: Server, target: Target, variant: str, rows: int) -> None:
    """The variant answers a real page before it is measured."""
    import urllib.request

    if variant == "rest":
        request = urllib.request.Request(
            f"{server.url}/v1/flows/{target.flow_id}/step-results?limit={rows}",
            headers={"Authorization": f"Bearer {target.key}"},
        )
    else:
        request = urllib.request.Request(
            f"{server.url}/graphql",
            data=graphql_body(target, rows, PAGE_QUERY),
            headers={"Authorization": f"Bearer {target.key}", "Content-Type": "application/json"},
        )
    with urllib.request.urlopen(request, timeout=30) as response:
        body = orjson.loads(response.read())
    page = body["data"] if variant == "rest" else body["data"]["stepResults"]["data"]
    assert len(page) == rows, (variant, len(page))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: `apt-get install -y wrk` (make bench does it)")
    for note in machine_notes():
        print(f"- {note}")
    path = dataset.ensure()
    settings = bench_settings(path)
    target = asyncio.run(prepare_target(settings))
    scripts = dataset.CACHE / "wrk"
    scripts.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        served = stack.enter_context(serving(settings.database_url))
        stock = stack.enter_context(serving(settings.database_url, graphql="stock"))
        servers = {"rest": served, "graphql": served, "graphql-stock": stock}
        print(
            f"- wrk: 1 thread, {args.connections} connections, {args.seconds:g}s per run, "
            f"{args.rounds} rounds per variant, interleaved"
        )
        for rows in SIZES:
            runs = {name: Run() for name in servers}
            script = {
                name: request_script(target, name, rows, scripts / f"{name}-{rows}.lua")
                for name in servers
            }
            for name, server in servers.items():
                _check(server, target, name, rows)
                wrk(server, script[name], seconds=2, connections=args.connections)  # warm-up
            names = list(servers)
            for round_ in range(args.rounds):
                for name in names[round_ % len(names) :] + names[: round_ % len(names)]:
                    server = servers[name]
                    cpu = server.cpu_seconds()
                    result = wrk(
                        server, script[name], seconds=args.seconds, connections=args.connections
                    )
                    cpu = server.cpu_seconds() - cpu
                    run = runs[name]
                    run.rps.append(result["rps"])
                    run.p50.append(result["p50"])
                    run.p99.append(result["p99"])
                    run.cpu_ms.append(cpu * 1000 / max(result["requests"], 1))
                    run.errors += int(result["errors"])
            _print_table(rows, runs, args.connections)


def _print_table(rows: int, runs: dict[str, Run], connections: int) -> None:
    rest = median(runs["rest"].rps)
    print(f"\n### {rows} rows, all 30 fields, {connections} connections\n")
    print("| variant | requests/s | x REST | p50 ms | p99 ms | worker CPU ms/request | non-2xx |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, run in runs.items():
        rps = median(run.rps)
        print(
            f"| {name} | {rps:.0f} | {rps / rest:.2f} | {median(run.p50):.1f} | "
            f"{median(run.p99):.1f} | {median(run.cpu_ms):.2f} | {run.errors} |"
        )
    print(flush=True)


if __name__ == "__main__":
    main()
