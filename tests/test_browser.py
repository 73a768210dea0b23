"""GraphiQL in a real, offline browser against a live ``stepgraph serve --demo``.

Headless Chromium opens /graphql with every non-loopback request blocked, runs a
``stepResults`` query through GraphiQL's editor and reads the answer from the result pane.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}
STARTUP_TIMEOUT_S = 60.0
UI_TIMEOUT_MS = 30_000

QUERY_EDITOR = ".graphiql-query-editor .CodeMirror"
RESPONSE_EDITOR = ".graphiql-response .CodeMirror"
# GraphiQL 3's editors are CodeMirror 5 instances, reachable from their wrapper element.
GET_EDITOR_VALUE = "(selector) => document.querySelector(selector).CodeMirror.getValue()"
SET_EDITOR_VALUE = (
    "([selector, text]) => document.querySelector(selector).CodeMirror.setValue(text)"
)


@dataclass(frozen=True)
class Server:
    """A running ``stepgraph serve`` and the folder holding its store."""

    base_url: str
    data_dir: Path
    log: Path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until_healthy(
    process: subprocess.Popen[bytes], base_url: str, log: Path, timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(
                f"stepgraph serve exited with {process.returncode}:\n{log.read_text()[-4000:]}"
            )
        try:
            with urllib.request.urlopen(f"{base_url}/healthz", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.25)
    pytest.fail(f"/healthz did not answer 200 within {timeout:.0f}s:\n{log.read_text()[-4000:]}")


@pytest.fixture
def chromium() -> Path:
    """The system Chromium; the test tools here cannot download a browser of their own."""
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is missing: install Debian's chromium package to run browser tests"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(f"!!! BROWSER TEST NOT RUN: {reason} !!!")
    return CHROMIUM


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    """``stepgraph serve --demo`` on a free loopback port, with its store in ``tmp_path``."""
    executable = Path(sys.executable).parent / "stepgraph"
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    data_dir = tmp_path / "data"
    log = tmp_path / "server.log"
    env = {
        **os.environ,
        "STEPGRAPH_DATA_DIR": str(data_dir),
        "STEPGRAPH_DEMO_ROWS": "300",
    }
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            [str(executable), "serve", "--host", "127.0.0.1", "--port", str(port), "--demo"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until_healthy(process, base_url, log, STARTUP_TIMEOUT_S)
        yield Server(base_url=base_url, data_dir=data_dir, log=log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)


def flow_with_steps(data_dir: Path, minimum: int) -> tuple[str, set[str]]:
    """The largest demo flow and its step result ids.

    ``serve --demo`` gives its demo key to the organization of the largest flow, so
    this flow is one the key GraphiQL starts with may read.
    """
    database = data_dir / "stepgraph.db"
    # Read-only, so the test can never disturb the running server's store.
    with sqlite3.connect(f"{database.as_uri()}?mode=ro", uri=True) as connection:
        row = connection.execute(
            "SELECT flow_id FROM step_results GROUP BY flow_id HAVING COUNT(*) >= ? "
            "ORDER BY COUNT(*) DESC, flow_id LIMIT 1",
            (minimum,),
        ).fetchone()
        assert row is not None, f"no demo flow has {minimum} step results"
        flow_id = str(row[0])
        ids = {
            str(step_id)
            for (step_id,) in connection.execute(
                "SELECT id FROM step_results WHERE flow_id = ?", (flow_id,)
            )
        }
    connection.close()
    return flow_id, ids


def test_graphiql_runs_a_query_offline(chromium: Path, server: Server, tmp_path: Path) -> None:
    from playwright.sync_api import Route, sync_playwright

    flow_id, step_ids = flow_with_steps(server.data_dir, minimum=3)
    query = (
        f'{{ stepResults(flowId: "{flow_id}", limit: 3) '
        "{ data { id status } pagination { returned hasMore } } }"
    )
    blocked: list[str] = []
    page_errors: list[str] = []

    def only_loopback(route: Route) -> None:
        request = route.request
        scheme = urlsplit(request.url).scheme
        host = urlsplit(request.url).hostname or ""
        if scheme == "data":
            route.continue_()
        elif host not in LOOPBACK_HOSTS:
            blocked.append(request.url)
            route.abort("internetdisconnected")
        elif request.is_navigation_request():
            # Ask for the page as a browser would; GraphiQL's own POSTs keep their headers.
            route.continue_(headers={**request.headers, "accept": "text/html"})
        else:
            route.continue_()

    started = time.monotonic()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.on("pageerror", lambda error: page_errors.append(str(error)))
        page.route("**/*", only_loopback)
        try:
            response = page.goto(f"{server.base_url}/graphql", wait_until="load")
            assert response is not None
            assert response.status == 200
            assert "text/html" in response.headers["content-type"]
            assert page.title() == "stepgraph GraphiQL"

            page.wait_for_selector(QUERY_EDITOR, timeout=UI_TIMEOUT_MS)
            assert page.evaluate("typeof GraphiQLPluginExplorer.explorerPlugin") == "function"
            initial = page.evaluate(GET_EDITOR_VALUE, QUERY_EDITOR)
            assert initial == page.evaluate("EXAMPLE_QUERY"), "editor did not start on the example"
            page.screenshot(path=str(tmp_path / "graphiql-start.png"))

            # The explorer plugin is loaded and builds its tree from the live schema.
            explorer_button = page.get_by_role("button", name="Show GraphiQL Explorer")
            explorer_button.click()
            page.wait_for_function(
                "(s) => document.querySelector(s)?.innerText.includes('stepResults') ?? false",
                arg=".graphiql-plugin",
                timeout=UI_TIMEOUT_MS,
            )
            page.get_by_role("button", name="Hide GraphiQL Explorer").click()

            page.evaluate(SET_EDITOR_VALUE, [QUERY_EDITOR, query])
            # GraphiQL digests an edit (operation name included) after a short debounce and
            # then mirrors it into ?q=; running before that would send the old operation name.
            page.wait_for_function(
                "(q) => new URLSearchParams(location.search).get('q') === q",
                arg=query,
                timeout=UI_TIMEOUT_MS,
            )
            page.click(".graphiql-execute-button")
            page.wait_for_function(
                """(selector) => {
                    const pane = document.querySelector(selector);
                    return pane !== null && /"returned": 3|"errors"/.test(pane.innerText);
                }""",
                arg=".graphiql-response",
                timeout=UI_TIMEOUT_MS,
            )
            page.screenshot(path=str(tmp_path / "graphiql.png"))
            shown = page.inner_text(".graphiql-response")
            result = json.loads(page.evaluate(GET_EDITOR_VALUE, RESPONSE_EDITOR))
        except Exception as exc:
            # A blank page usually means an asset failed; say which requests were refused.
            exc.add_note(f"blocked non-loopback requests: {blocked}; page errors: {page_errors}")
            exc.add_note(f"server log: {server.log}; screenshot: {tmp_path}/graphiql-failure.png")
            with contextlib.suppress(Exception):
                page.screenshot(path=str(tmp_path / "graphiql-failure.png"))
            raise
        finally:
            browser.close()
    elapsed = time.monotonic() - started

    assert "errors" not in result, result
    page_data = result["data"]["stepResults"]
    assert page_data["pagination"]["returned"] == 3
    assert isinstance(page_data["pagination"]["hasMore"], bool)
    returned_ids = [row["id"] for row in page_data["data"]]
    assert len(returned_ids) == 3
    assert set(returned_ids) <= step_ids, (returned_ids, flow_id)
    for step_id in returned_ids:
        assert step_id in shown, f"{step_id} not shown in the result pane"
    # GraphiQL rendered and ran the query with the internet blocked, and never tried it.
    assert blocked == [], f"the page asked for non-loopback URLs: {blocked}"
    assert page_errors == [], page_errors
    assert elapsed < 60, f"browser session took {elapsed:.1f}s"
