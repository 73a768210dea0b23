"""The graphql-http audit suite (every MUST and SHOULD of GraphQL over HTTP) against a real server.

It needs Node and the suite's packages: ``npm ci --prefix tests/http``. Without them the test
is skipped, loudly; on CI (``CI=true``) it fails instead.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.postgres import in_ci
from tests.test_cli import ROOT, Server, demo_key

SUITE = ROOT / "tests" / "http"
AUDIT_TIMEOUT_S = 120


def audit_command() -> list[str]:
    """``node audit.mjs``, or a skip (a failure on CI) naming what is missing."""
    node = shutil.which("node")
    missing = [] if node is not None else ["`node` on PATH"]
    if not (SUITE / "node_modules" / "graphql-http").is_dir():
        missing.append(str(SUITE / "node_modules" / "graphql-http"))
    if node is None or missing:
        message = (
            f"graphql-http audit NOT RUN: missing {' and '.join(missing)}; "
            "install Node 20+ and run `npm ci --prefix tests/http`"
        )
        if in_ci():
            pytest.fail(f"CI=true and {message}")
        pytest.skip(message)
    return [node, str(SUITE / "audit.mjs")]


@pytest.fixture(scope="module")
def command() -> list[str]:
    return audit_command()


@pytest.fixture(scope="module")
def server(command: list[str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """``stepgraph serve --demo`` over a fresh SQLite store of 50 demo rows."""
    folder: Path = tmp_path_factory.mktemp("audit")
    server = Server(folder / "data", folder / "serve.log", "--demo", STEPGRAPH_DEMO_ROWS="50")
    try:
        server.wait_until_healthy()
        yield server
    finally:
        server.kill()


def run_audit(command: list[str], url: str, token: str) -> list[dict[str, Any]]:
    """The suite's results: one ``{id, name, status, reason, response}`` per check."""
    finished = subprocess.run(
        [*command, url, token],
        capture_output=True,
        text=True,
        timeout=AUDIT_TIMEOUT_S,
        cwd=SUITE,
        check=False,
    )
    assert finished.returncode == 0, finished.stderr[-4000:]
    results: list[dict[str, Any]] = json.loads(finished.stdout)
    return results


def test_the_server_passes_every_must_and_should(command: list[str], server: Server) -> None:
    results = run_audit(command, f"{server.base_url}/graphql", demo_key(server))

    levels = {result["name"].split()[0] for result in results}
    assert {"MUST", "SHOULD"} <= levels, f"the suite ran no MUST or SHOULD checks: {results}"
    failures = [
        f"{r['id']} [{r['status']}] {r['name']}: {r['reason']}; response {r['response']}"
        for r in results
        if r["status"] != "ok"
    ]
    assert not failures, f"{len(failures)} of {len(results)} checks failed:\n" + "\n".join(failures)
