"""The ``stepgraph`` command, run as a real process over real SQLite files.

Every test gets its own data folder in ``tmp_path`` and an environment without the
developer's ``STEPGRAPH_*`` settings. ``serve`` is started on a free loopback port and
answered over HTTP.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from stepgraph.cli import main
from tests.factories import make_step_result

STEPGRAPH = Path(sys.executable).parent / "stepgraph"
ROOT = Path(__file__).resolve().parent.parent
COMMAND_TIMEOUT_S = 60
STARTUP_TIMEOUT_S = 60.0
SHUTDOWN_TIMEOUT_S = 20


# Helpers ----------------------------------------------------------------------


def cli_env(data_dir: Path, **settings: str) -> dict[str, str]:
    """The process environment without any STEPGRAPH_* setting, plus ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STEPGRAPH_")}
    return {**env, "STEPGRAPH_DATA_DIR": str(data_dir), **settings}


def stepgraph(
    data_dir: Path, *args: str, input: str | None = None, **settings: str
) -> subprocess.CompletedProcess[str]:
    """Run the console script to completion."""
    return subprocess.run(
        [str(STEPGRAPH), *args],
        env=cli_env(data_dir, **settings),
        input=input,
        stdin=None if input is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_S,
    )


def query_store(data_dir: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """Read the SQLite store (read-only, so a running server is never disturbed)."""
    database = data_dir / "stepgraph.db"
    connection = sqlite3.connect(f"{database.as_uri()}?mode=ro", uri=True)
    try:
        return connection.execute(sql, params).fetchall()
    finally:
        connection.close()


def count_rows(data_dir: Path) -> int:
    [(count,)] = query_store(data_dir, "SELECT COUNT(*) FROM step_results")
    return int(count)


def step_ids(data_dir: Path) -> set[str]:
    return {row[0] for row in query_store(data_dir, "SELECT id FROM step_results")}


def table_names(data_dir: Path) -> set[str]:
    return {row[0] for row in query_store(data_dir, "SELECT name FROM sqlite_master")}


def demo_key(server: Server) -> str:
    """The API key ``serve --demo`` printed."""
    found = re.findall(r"Authorization: Bearer (sgk_\S+)", server.output())
    assert found, server.output()[-2000:]
    return found[-1]


def write_ndjson(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Server:
    """A ``stepgraph serve`` subprocess with its output in a log file."""

    def __init__(self, data_dir: Path, log: Path, *args: str, **settings: str) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.data_dir = data_dir
        self.log = log
        with log.open("wb") as log_file:
            self.process = subprocess.Popen(
                [str(STEPGRAPH), "serve", "--host", "127.0.0.1", "--port", str(self.port), *args],
                env=cli_env(data_dir, **settings),
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def wait_until_healthy(self) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(
                    f"stepgraph serve exited with {self.process.returncode}:\n"
                    f"{self.output()[-4000:]}"
                )
            try:
                if httpx.get(f"{self.base_url}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        pytest.fail(f"/healthz did not answer 200 in time:\n{self.output()[-4000:]}")

    def interrupt(self) -> int:
        """Ctrl-C, as a developer would stop it; the exit status."""
        self.process.send_signal(signal.SIGINT)
        return self.process.wait(timeout=SHUTDOWN_TIMEOUT_S)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=SHUTDOWN_TIMEOUT_S)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def in_process(monkeypatch: pytest.MonkeyPatch) -> Callable[..., int]:
    """``stepgraph.cli.main`` in this process over one data folder: for setup, and for tests
    of a command's logic, where starting a process buys nothing."""
    for name in list(os.environ):
        if name.startswith("STEPGRAPH_"):
            monkeypatch.delenv(name)

    def run(data_dir: Path, *args: str) -> int:
        monkeypatch.setenv("STEPGRAPH_DATA_DIR", str(data_dir))
        return main(list(args))

    return run


# seed -------------------------------------------------------------------------


def test_seed_demo_creates_the_store_and_inserts_the_rows(data_dir: Path) -> None:
    result = stepgraph(data_dir, "seed", "--demo", "--rows", "500", "--seed", "3")

    assert result.returncode == 0, result.stderr
    assert count_rows(data_dir) == 500
    assert "demo data: 500 inserted, 0 updated, 0 unchanged" in result.stderr


def test_seed_demo_again_changes_nothing(data_dir: Path, in_process: Callable[..., int]) -> None:
    in_process(data_dir, "seed", "--demo", "--rows", "500", "--seed", "3")

    again = stepgraph(data_dir, "seed", "--demo", "--rows", "500", "--seed", "3")

    assert again.returncode == 0, again.stderr
    assert "demo data: 0 inserted, 0 updated, 500 unchanged" in again.stderr
    assert count_rows(data_dir) == 500


def test_seed_demo_with_another_seed_gives_other_ids(
    tmp_path: Path, in_process: Callable[..., int]
) -> None:
    assert in_process(tmp_path / "three", "seed", "--demo", "--rows", "50", "--seed", "3") == 0
    assert in_process(tmp_path / "four", "seed", "--demo", "--rows", "50", "--seed", "4") == 0

    assert step_ids(tmp_path / "three") != step_ids(tmp_path / "four")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["seed"], "only --demo data can be generated"),
        (["seed", "--demo", "--rows", "-1"], "--rows must be 0 or more"),
    ],
)
def test_seed_refuses_bad_arguments_with_a_message(
    data_dir: Path, args: list[str], message: str
) -> None:
    result = stepgraph(data_dir, *args)

    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert not (data_dir / "stepgraph.db").exists()


# migrate ----------------------------------------------------------------------


def test_migrate_creates_the_tables_in_an_empty_data_dir(data_dir: Path) -> None:
    result = stepgraph(data_dir, "migrate")

    assert result.returncode == 0, result.stderr
    assert {"alembic_version", "flows", "step_results"} <= table_names(data_dir)
    assert query_store(data_dir, "SELECT version_num FROM alembic_version") != []
    assert "store is up to date" in result.stderr


def test_migrate_twice_is_harmless(data_dir: Path, in_process: Callable[..., int]) -> None:
    in_process(data_dir, "migrate")
    version = query_store(data_dir, "SELECT version_num FROM alembic_version")

    again = stepgraph(data_dir, "migrate")

    assert again.returncode == 0, again.stderr
    assert query_store(data_dir, "SELECT version_num FROM alembic_version") == version


def test_serve_on_an_outdated_store_asks_for_migrate(
    data_dir: Path, in_process: Callable[..., int]
) -> None:
    in_process(data_dir, "migrate")
    database = sqlite3.connect(data_dir / "stepgraph.db")
    try:
        with database:
            database.execute("UPDATE alembic_version SET version_num = '0000'")
    finally:
        database.close()

    result = stepgraph(data_dir, "serve", "--port", str(free_port()))

    assert result.returncode != 0
    assert "run `stepgraph migrate` first" in result.stderr
    assert "Traceback" not in result.stderr


# import -----------------------------------------------------------------------


@pytest.fixture
def good_file(tmp_path: Path) -> Path:
    rows = [make_step_result(flowId="flow_good") for _ in range(3)]
    return write_ndjson(tmp_path / "good.ndjson", rows)


@pytest.fixture
def bad_file(tmp_path: Path) -> Path:
    rows = [make_step_result(flowId="flow_bad") for _ in range(3)]
    rows[1]["status"] = "exploded"
    return write_ndjson(tmp_path / "bad.ndjson", rows)


def test_import_ndjson_inserts_and_reports_counts(data_dir: Path, good_file: Path) -> None:
    result = stepgraph(data_dir, "import", str(good_file))

    assert result.returncode == 0, result.stderr
    assert f"{good_file} (ndjson): 3 rows: 3 inserted, 0 updated, 0 unchanged" in result.stderr
    assert count_rows(data_dir) == 3


def test_import_same_file_again_reports_unchanged(
    data_dir: Path, good_file: Path, in_process: Callable[..., int]
) -> None:
    in_process(data_dir, "import", str(good_file))

    again = stepgraph(data_dir, "import", str(good_file))

    assert again.returncode == 0, again.stderr
    assert f"{good_file} (ndjson): 3 rows: 0 inserted, 0 updated, 3 unchanged" in again.stderr
    assert count_rows(data_dir) == 3


def test_import_reads_stdin_for_dash(data_dir: Path) -> None:
    rows = [make_step_result(flowId="flow_piped") for _ in range(2)]
    response = {
        "data": rows,
        "pagination": {"limit": 25, "offset": 0, "returned": 2, "hasMore": False},
    }

    result = stepgraph(data_dir, "import", "-", input=json.dumps(response, indent=2))

    assert result.returncode == 0, result.stderr
    assert "<stdin> (rest-response): 2 rows: 2 inserted" in result.stderr
    assert step_ids(data_dir) == {row["id"] for row in rows}


def test_import_bad_row_names_file_line_and_field_and_imports_nothing(
    data_dir: Path, bad_file: Path
) -> None:
    result = stepgraph(data_dir, "import", str(bad_file))

    assert result.returncode == 1
    assert f"{bad_file}: nothing imported" in result.stderr
    assert f"{bad_file} line 2: status:" in result.stderr
    assert count_rows(data_dir) == 0


def test_import_bad_file_does_not_stop_a_valid_one(
    data_dir: Path, bad_file: Path, good_file: Path
) -> None:
    # Files are independent: each is all or nothing on its own (see stepgraph.importer).
    result = stepgraph(data_dir, "import", str(bad_file), str(good_file))

    assert result.returncode == 1
    assert f"{bad_file} line 2: status:" in result.stderr
    assert f"{good_file} (ndjson): 3 rows: 3 inserted" in result.stderr
    assert query_store(data_dir, "SELECT DISTINCT flow_id FROM step_results") == [("flow_good",)]
    assert count_rows(data_dir) == 3


def test_import_missing_file_is_a_clear_error(data_dir: Path, tmp_path: Path) -> None:
    missing = tmp_path / "missing.ndjson"

    result = stepgraph(data_dir, "import", str(missing))

    assert result.returncode != 0
    assert f"{missing}: cannot read the file" in result.stderr
    assert "Traceback" not in result.stderr


# export-schema ----------------------------------------------------------------


@pytest.fixture(scope="module")
def printed_schema(tmp_path_factory: pytest.TempPathFactory) -> str:
    result = stepgraph(tmp_path_factory.mktemp("schema"), "export-schema")
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_export_schema_prints_the_federated_sdl(printed_schema: str) -> None:
    assert "type StepResult" in printed_schema
    assert '@link(url: "https://specs.apollo.dev/federation/' in printed_schema


def test_export_schema_output_writes_the_same_text(
    data_dir: Path, tmp_path: Path, printed_schema: str
) -> None:
    target = tmp_path / "out.graphql"

    result = stepgraph(data_dir, "export-schema", "--output", str(target))

    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert target.read_text(encoding="utf-8") == printed_schema


def test_export_schema_check_accepts_the_committed_schema(data_dir: Path) -> None:
    result = stepgraph(data_dir, "export-schema", "--check", str(ROOT / "schema.graphql"))

    assert result.returncode == 0, result.stdout + result.stderr


def test_export_schema_check_rejects_a_stale_copy_with_a_diff(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stale = tmp_path / "schema.graphql"
    committed = (ROOT / "schema.graphql").read_text(encoding="utf-8")
    stale.write_text(committed.replace("type StepResult ", "type OldStepResult ", 1))

    status = main(["export-schema", "--check", str(stale)])

    out, err = capsys.readouterr()
    assert status == 1
    assert f"--- {stale}" in out
    assert "+++ live schema" in out
    assert "-type OldStepResult " in out
    assert "+type StepResult " in out
    assert "out of date" in err


# serve ------------------------------------------------------------------------


@pytest.fixture
def demo_server(tmp_path: Path, data_dir: Path) -> Iterator[Server]:
    server = Server(data_dir, tmp_path / "serve.log", "--demo", STEPGRAPH_DEMO_ROWS="200")
    try:
        server.wait_until_healthy()
        yield server
    finally:
        server.kill()


STEP_RESULTS = """
query ($flowId: ID!) {
  stepResults(flowId: $flowId, limit: 2) {
    data { id flowId }
    pagination { returned hasMore }
  }
}
"""


def test_serve_demo_answers_graphql_and_rest_alike(demo_server: Server) -> None:
    assert count_rows(demo_server.data_dir) == 200
    # The demo key belongs to the organization of the largest flow.
    [(flow_id,)] = query_store(
        demo_server.data_dir,
        "SELECT flow_id FROM step_results GROUP BY flow_id ORDER BY COUNT(*) DESC, flow_id LIMIT 1",
    )
    key = demo_key(demo_server)

    with httpx.Client(
        base_url=demo_server.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=10
    ) as client:
        graphql = client.post(
            "/graphql", json={"query": STEP_RESULTS, "variables": {"flowId": flow_id}}
        )
        rest = client.get(f"/v1/flows/{quote(flow_id, safe='')}/step-results?limit=2")
        page = client.get("/graphql", headers={"Accept": "text/html"})

    assert graphql.status_code == 200, graphql.text
    body = graphql.json()
    assert "errors" not in body, body
    connection = body["data"]["stepResults"]
    assert connection["pagination"] == {"returned": 2, "hasMore": True}
    assert {row["flowId"] for row in connection["data"]} == {flow_id}

    assert rest.status_code == 200, rest.text
    assert [row["id"] for row in rest.json()["data"]] == [row["id"] for row in connection["data"]]

    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "/graphiql/assets/graphiql.min.js" in page.text

    assert demo_server.interrupt() == 0, demo_server.output()[-4000:]


def test_serve_demo_graphiql_example_names_a_demo_flow(demo_server: Server) -> None:
    flows = {row[0] for row in query_store(demo_server.data_dir, "SELECT id FROM flows")}

    page = httpx.get(f"{demo_server.base_url}/graphql", headers={"Accept": "text/html"}, timeout=10)

    assert page.status_code == 200
    # The example query is embedded as a JSON string in the page's script.
    named = [f for f in flows if json.dumps(f'stepResults(flowId: "{f}"')[1:-1] in page.text]
    assert named, "the example query names no flow of the demo data"
    assert demo_key(demo_server) in page.text, "GraphiQL does not start with the demo key"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("STEPGRAPH_PORT", "abc"),
        ("STEPGRAPH_MAX_PAGE_SIZE", "0"),
        ("STEPGRAPH_LOG_LEVEL", "loud"),
    ],
)
def test_serve_with_an_invalid_setting_exits_naming_it(
    data_dir: Path, name: str, value: str
) -> None:
    port = [] if name == "STEPGRAPH_PORT" else ["--port", str(free_port())]

    # A server that started anyway would never return: the timeout fails the test.
    result = stepgraph(data_dir, "serve", *port, **{name: value})

    assert result.returncode != 0
    named = [line for line in result.stderr.splitlines() if name in line]
    assert named, result.stderr
    assert value in named[0]
    assert "Traceback" not in result.stderr
    assert not (data_dir / "stepgraph.db").exists()


def test_serve_warns_about_an_unknown_setting(tmp_path: Path, data_dir: Path) -> None:
    server = Server(data_dir, tmp_path / "serve.log", STEPGRAPH_FOO="1")
    try:
        server.wait_until_healthy()
        assert server.interrupt() == 0
    finally:
        server.kill()

    assert "warning: unknown setting STEPGRAPH_FOO is ignored" in server.output()


# keys -------------------------------------------------------------------------


def test_keys_create_prints_the_key_once_and_list_never_shows_it(data_dir: Path) -> None:
    created = stepgraph(
        data_dir,
        "keys",
        "create",
        "--org",
        "org_1",
        "--user",
        "ann",
        "--expires",
        "30d",
        "--label",
        "ci",
    )
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    assert re.fullmatch(r"sgk_[a-z0-9]{12}_[A-Za-z0-9_-]{43}", key)
    listed = stepgraph(data_dir, "keys", "list")
    assert listed.returncode == 0
    assert key.split("_")[1] in listed.stdout
    assert key not in listed.stdout
    assert key.split("_", 2)[2] not in listed.stdout
    assert "org_1\tann\tread:step-results" in listed.stdout
    assert "\tactive\tci" in listed.stdout


def test_keys_revoke_marks_the_key_revoked(data_dir: Path) -> None:
    key = stepgraph(data_dir, "keys", "create", "--org", "org_1", "--user", "ann").stdout.strip()
    key_id = key.split("_")[1]
    revoked = stepgraph(data_dir, "keys", "revoke", key_id)
    assert revoked.returncode == 0, revoked.stderr
    assert "\trevoked " in stepgraph(data_dir, "keys", "list").stdout
    assert stepgraph(data_dir, "keys", "revoke", "nosuchkey123").returncode == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--scope", "admin"], "invalid choice"),
        (["--expires", "soon"], "duration"),
        (["--expires", "2001-01-01"], "future"),
    ],
)
def test_keys_create_refuses_bad_attributes(data_dir: Path, args: list[str], message: str) -> None:
    result = stepgraph(data_dir, "keys", "create", "--org", "o", "--user", "u", *args)
    assert result.returncode == 2
    assert message in result.stderr
    assert result.stdout == ""
