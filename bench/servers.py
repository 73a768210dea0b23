"""The gateway under uvicorn in a child process, as ``stepgraph serve`` runs it, for load tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench.harness import BENCH_DIR

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Server:
    """A running uvicorn worker: where it listens and its process, for CPU and memory."""

    url: str
    process: subprocess.Popen[bytes]

    def cpu_seconds(self) -> float:
        """User plus system CPU the worker has used so far (every thread)."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS

    def rss_mib(self) -> float:
        """Resident memory of the worker, in MiB."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError("no VmRSS")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def serving(
    database_url: str, *, graphql: str = "served", max_page_size: int = 500
) -> Iterator[Server]:
    """One uvicorn worker (uvloop, httptools) over ``database_url``; /graphql as ``graphql``."""
    port = _free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(BENCH_DIR.parent),
        "STEPGRAPH_DATABASE_URL": database_url,
        "STEPGRAPH_MAX_PAGE_SIZE": str(max_page_size),
        "STEPGRAPH_GRAPHIQL": "false",
        "STEPGRAPH_LOG_LEVEL": "warning",
        "BENCH_GRAPHQL": graphql,
    }
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "bench.harness:app_from_env",
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    process = subprocess.Popen(command, env=env)
    server = Server(f"http://127.0.0.1:{port}", process)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{server.url}/healthz", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the server did not start ({command})") from None
                time.sleep(0.2)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
