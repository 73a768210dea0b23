"""stepgraph as a federation subgraph: batched entities, composition and a live supergraph.

The Node side lives in ``tests/federation`` with its own ``package.json`` and lockfile:
a sample flows subgraph that owns ``Flow { id name status }``, ``compose.mjs`` (two
composers: Apollo's and The Guild's) and ``gateway.mjs`` (Apollo Gateway). Install it with
``npm ci --prefix tests/federation``. Without ``node`` or those modules the tests that
need them are skipped, and fail instead when ``CI=true``.

The live tests run every part as a real process on loopback: ``stepgraph serve`` over a
store filled by ``stepgraph import``, the flows subgraph and the gateway over the
supergraph composed from ``schema.graphql`` and the flows subgraph's SDL.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncEngine

from stepgraph.auth.api_keys import issue_api_key
from stepgraph.settings import Settings
from stepgraph.store.engine import create_engine
from tests.api import Api
from tests.conftest import insert
from tests.factories import make_step_result

ROOT = Path(__file__).resolve().parent.parent
FEDERATION = ROOT / "tests" / "federation"
SCHEMA = ROOT / "schema.graphql"
FLOWS_SDL = FEDERATION / "flows" / "schema.graphql"
STEPGRAPH = Path(sys.executable).parent / "stepgraph"
INTERNAL_FIELDS = ("resolvedPrompt", "inputVariables", "recordMetadata", "stepConfig")
STARTUP_TIMEOUT_S = 30.0
COMMAND_TIMEOUT_S = 60


# Batched entities (in process, every store) -------------------------------------------------


class SelectCounter:
    """Counts the SELECTs that reach the store, per table, while it is installed.

    The app opens its own engine in its lifespan, so this listens on every engine.
    """

    def __init__(self) -> None:
        self.statements: list[str] = []

    def __enter__(self) -> SelectCounter:
        event.listen(Engine, "before_cursor_execute", self._record)
        return self

    def __exit__(self, *exc: object) -> None:
        event.remove(Engine, "before_cursor_execute", self._record)

    def _record(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        self.statements.append(statement)

    def selects_from(self, table: str) -> list[str]:
        pattern = re.compile(rf'\bFROM\s+"?{table}"?\b', re.IGNORECASE)
        return [
            s
            for s in self.statements
            if s.lstrip().upper().startswith("SELECT") and pattern.search(s)
        ]


ENTITIES = """
query ($representations: [_Any!]!) {
  _entities(representations: $representations) {
    __typename
    ... on StepResult { id status flow { id } }
    ... on Flow { id }
  }
}
"""


async def test_entities_resolve_with_one_query_per_type(api: Api, engine: AsyncEngine) -> None:
    rows = [make_step_result(id=f"sr_fed_{i}", flowId=f"flow_fed_{i % 3}") for i in range(9)]
    await insert(engine, rows)
    step_ids = [*(r["id"] for r in rows), "sr_unknown"]
    flow_ids = ["flow_fed_2", "flow_unknown", "flow_fed_0", "flow_fed_1"]
    representations = [
        *({"__typename": "StepResult", "id": i} for i in step_ids),
        *({"__typename": "Flow", "id": i} for i in flow_ids),
    ]

    with SelectCounter() as counter:
        body = await api.graphql(ENTITIES, representations=representations)

    assert "errors" not in body, body
    expected_steps = [
        {
            "__typename": "StepResult",
            "id": r["id"],
            "status": "COMPLETED",
            "flow": {"id": r["flowId"]},
        }
        for r in rows
    ]
    expected_flows = [
        {"__typename": "Flow", "id": "flow_fed_2"},
        None,
        {"__typename": "Flow", "id": "flow_fed_0"},
        {"__typename": "Flow", "id": "flow_fed_1"},
    ]
    assert body["data"]["_entities"] == [*expected_steps, None, *expected_flows]
    assert len(counter.selects_from("step_results")) == 1, counter.statements
    assert len(counter.selects_from("flows")) == 1, counter.statements


async def test_the_served_subgraph_sdl_is_schema_graphql(api: Api) -> None:
    body = await api.graphql("{ _service { sdl } }")

    assert body["data"]["_service"]["sdl"] + "\n" == SCHEMA.read_text(encoding="utf-8")


# Node tools -------------------------------------------------------------------------------


def _require_node() -> str:
    node = shutil.which("node")
    missing = None
    if node is None:
        missing = "`node` is not on PATH"
    elif not (FEDERATION / "node_modules" / "@apollo" / "gateway").is_dir():
        missing = "tests/federation/node_modules is missing"
    if missing is None:
        assert node is not None
        return node
    message = (
        f"FEDERATION TESTS NOT RUN: {missing}; install Node 20+ and run "
        "`npm ci --prefix tests/federation`"
    )
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true and {message}")
    pytest.skip(message)


@pytest.fixture(scope="module")
def node() -> str:
    return _require_node()


def compose(node: str, subgraphs: dict[str, tuple[str, Path]], *options: str) -> dict[str, Any]:
    """Run compose.mjs over ``{name: (url, sdl_file)}``; its JSON answer."""
    args = [f"{name}={url}={path}" for name, (url, path) in subgraphs.items()]
    result = subprocess.run(
        [node, "compose.mjs", *options, *args],
        cwd=FEDERATION,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_S,
    )
    assert result.returncode in (0, 1), result.stderr
    answer: dict[str, Any] = json.loads(result.stdout)
    return answer


def subgraph_files(stepgraph_url: str, flows_url: str) -> dict[str, tuple[str, Path]]:
    return {"stepgraph": (stepgraph_url, SCHEMA), "flows": (flows_url, FLOWS_SDL)}


@pytest.fixture(scope="module")
def composition(node: str) -> dict[str, Any]:
    files = subgraph_files("http://stepgraph.invalid/graphql", "http://flows.invalid/graphql")
    return compose(node, files, "--exclude-tag", "internal")


def _issues(composition: dict[str, Any], composer: str) -> list[str]:
    return [
        f"{kind[:-1]} {issue['code']}: {issue['message']}"
        for kind in ("errors", "hints")
        for issue in composition[kind]
        if issue["composer"] == composer
    ]


@pytest.mark.parametrize("composer", ["apollo", "guild"])
def test_the_subgraphs_compose_without_errors_or_hints(
    composition: dict[str, Any], composer: str
) -> None:
    assert _issues(composition, composer) == []


def test_the_supergraph_joins_flow_from_both_subgraphs(composition: dict[str, Any]) -> None:
    supergraph = composition["supergraphSdl"]
    assert supergraph is not None, composition["errors"]
    flow = re.search(r"type Flow\b[^{]*\{(?P<fields>.*?)\n\}", supergraph, re.DOTALL)
    assert flow is not None
    header = supergraph[flow.start() : supergraph.index("{", flow.start())]
    assert 'join__type(graph: STEPGRAPH, key: "id")' in header
    assert 'join__type(graph: FLOWS, key: "id")' in header
    fields = flow["fields"]
    assert re.search(r"\bname: String! @join__field\(graph: FLOWS\)", fields)
    assert re.search(
        r"\bstepResults\(.*?\): StepResultConnection @join__field\(graph: STEPGRAPH\)",
        fields,
        re.DOTALL,
    )
    # The owner's description is the one clients read.
    assert "The flows service owns its name and status." in supergraph


def test_the_internal_contract_leaves_out_the_internal_fields(
    composition: dict[str, Any],
) -> None:
    contract = composition["contracts"]["internal"]
    assert contract["errors"] == []
    public, full = contract["apiSdl"], composition["apiSdl"]
    assert public is not None
    assert full is not None
    for name in INTERNAL_FIELDS:
        assert re.search(rf"\b{name}\b", full), name
        assert not re.search(rf"\b{name}\b", public), name
    for name in ("modelUsed", "totalTokens", "stepResults", "name"):
        assert re.search(rf"\b{name}\b", public), name
    # Only the internal fields are JSON: the scalar goes with them.
    assert "scalar JSON" in full
    assert "scalar JSON" not in public


# A live supergraph --------------------------------------------------------------------------


ORG = "org_1"
OTHER_ORG = "org_2"
FLOWS = [
    {"id": "flow_alpha", "name": "Customer onboarding", "status": "ACTIVE"},
    {"id": "flow_beta", "name": "Invoice triage", "status": "PAUSED"},
    # Known to the flows subgraph only: no step results yet.
    {"id": "flow_new", "name": "Lead scoring", "status": "ACTIVE"},
    # Its step results belong to another organization than the caller's.
    {"id": "flow_other", "name": "Someone else's", "status": "ACTIVE"},
]
STEP_ROWS = [
    make_step_result(id="sr_alpha_1", flowId="flow_alpha", createdAt="2024-06-15T10:00:01Z"),
    make_step_result(id="sr_alpha_2", flowId="flow_alpha", createdAt="2024-06-15T10:00:02Z"),
    make_step_result(
        id="sr_alpha_3", flowId="flow_alpha", createdAt="2024-06-15T10:00:03Z", status="failed"
    ),
    make_step_result(id="sr_beta_1", flowId="flow_beta", createdAt="2024-06-15T10:00:04Z"),
    make_step_result(
        id="sr_other_1",
        flowId="flow_other",
        organizationId=OTHER_ORG,
        createdAt="2024-06-15T10:00:05Z",
    ),
]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Process:
    """A server subprocess with its output in a log file; always stopped by ``stop``."""

    def __init__(self, name: str, command: list[str], log: Path, **popen: Any) -> None:
        self.name = name
        self.log = log
        with log.open("wb") as log_file:
            self.process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                **popen,
            )

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def _check_running(self) -> None:
        if self.process.poll() is not None:
            pytest.fail(
                f"{self.name} exited with {self.process.returncode}:\n{self.output()[-4000:]}"
            )

    def announced_url(self) -> str:
        """The URL from the ``listening <url>`` line the Node servers print when ready."""
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            self._check_running()
            found = re.search(r"^listening (\S+)$", self.output(), re.MULTILINE)
            if found:
                return found[1]
            time.sleep(0.05)
        pytest.fail(f"{self.name} did not start in time:\n{self.output()[-4000:]}")

    def wait_for_200(self, url: str) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            self._check_running()
            try:
                if httpx.get(url, timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        pytest.fail(f"{self.name}: {url} did not answer 200 in time:\n{self.output()[-4000:]}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
                return
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.process.wait(timeout=10)


@dataclass(frozen=True)
class Supergraph:
    gateway_url: str
    flows_url: str
    key: str
    other_key: str

    def query(self, query: str, *, key: str | None = None) -> dict[str, Any]:
        headers = {} if key is None else {"Authorization": f"Bearer {key}"}
        response = httpx.post(self.gateway_url, json={"query": query}, headers=headers, timeout=20)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def flows_saw(self) -> list[dict[str, Any]]:
        """The requests the flows subgraph served: Authorization header and query."""
        response = httpx.get(self.flows_url.replace("/graphql", "/requests"), timeout=5)
        seen: list[dict[str, Any]] = response.json()
        return seen


def _issue_key(data_dir: Path, organization_id: str) -> str:
    async def issue() -> str:
        engine = create_engine(Settings(data_dir=data_dir))
        try:
            async with engine.begin() as connection:
                issued = await issue_api_key(
                    connection, organization_id=organization_id, user_id="user_federation"
                )
        finally:
            await engine.dispose()
        return issued.key

    return asyncio.run(issue())


@pytest.fixture(scope="module")
def supergraph(node: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Supergraph]:
    """stepgraph, the flows subgraph and a gateway over both, on loopback."""
    tmp = tmp_path_factory.mktemp("supergraph")
    data_dir = tmp / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("STEPGRAPH_")}
    env["STEPGRAPH_DATA_DIR"] = str(data_dir)
    rows = tmp / "step-results.ndjson"
    rows.write_text("".join(json.dumps(r) + "\n" for r in STEP_ROWS), encoding="utf-8")
    imported = subprocess.run(
        [str(STEPGRAPH), "import", str(rows)],
        env=env,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_S,
    )
    assert imported.returncode == 0, imported.stderr
    key, other_key = _issue_key(data_dir, ORG), _issue_key(data_dir, OTHER_ORG)
    flows_file = tmp / "flows.json"
    flows_file.write_text(json.dumps(FLOWS), encoding="utf-8")

    processes: list[Process] = []
    try:
        port = _free_port()
        stepgraph = Process(
            "stepgraph serve",
            [str(STEPGRAPH), "serve", "--host", "127.0.0.1", "--port", str(port)],
            tmp / "stepgraph.log",
            env=env,
        )
        processes.append(stepgraph)
        flows = Process(
            "flows subgraph",
            [node, "flows/server.mjs", str(flows_file)],
            tmp / "flows.log",
            cwd=FEDERATION,
        )
        processes.append(flows)
        stepgraph_url = f"http://127.0.0.1:{port}/graphql"
        flows_url = flows.announced_url()

        composed = compose(node, subgraph_files(stepgraph_url, flows_url))
        assert composed["supergraphSdl"] is not None, composed["errors"]
        supergraph_file = tmp / "supergraph.graphql"
        supergraph_file.write_text(composed["supergraphSdl"], encoding="utf-8")
        gateway = Process(
            "gateway",
            [node, "gateway.mjs", str(supergraph_file)],
            tmp / "gateway.log",
            cwd=FEDERATION,
        )
        processes.append(gateway)
        gateway_url = gateway.announced_url()
        stepgraph.wait_for_200(f"http://127.0.0.1:{port}/healthz")
        yield Supergraph(gateway_url, flows_url, key, other_key)
    finally:
        for process in reversed(processes):
            process.stop()


def test_flows_reach_their_step_results_through_the_gateway(supergraph: Supergraph) -> None:
    body = supergraph.query(
        "{ flows { id name stepResults(limit: 2) { data { id status } pagination { hasMore } } } }",
        key=supergraph.key,
    )

    assert "errors" not in body, body
    by_id = {flow["id"]: flow for flow in body["data"]["flows"]}
    assert by_id["flow_alpha"] == {
        "id": "flow_alpha",
        "name": "Customer onboarding",
        "stepResults": {
            "data": [
                {"id": "sr_alpha_3", "status": "FAILED"},
                {"id": "sr_alpha_2", "status": "COMPLETED"},
            ],
            "pagination": {"hasMore": True},
        },
    }
    assert by_id["flow_beta"]["stepResults"] == {
        "data": [{"id": "sr_beta_1", "status": "COMPLETED"}],
        "pagination": {"hasMore": False},
    }


def test_a_step_result_reaches_its_flow_through_the_gateway(supergraph: Supergraph) -> None:
    body = supergraph.query(
        '{ stepResult(id: "sr_beta_1") { id flow { id name status } } }', key=supergraph.key
    )

    assert body == {
        "data": {
            "stepResult": {
                "id": "sr_beta_1",
                "flow": {"id": "flow_beta", "name": "Invoice triage", "status": "PAUSED"},
            }
        }
    }


def test_flows_without_step_results_for_the_caller_get_null(supergraph: Supergraph) -> None:
    # flow_new has none yet; flow_other's belong to another organization. Both look the
    # same to the caller, so the other organization's flow is not revealed.
    body = supergraph.query("{ flows { id name stepResults { data { id } } } }", key=supergraph.key)

    assert "errors" not in body, body
    by_id = {flow["id"]: flow for flow in body["data"]["flows"]}
    assert by_id["flow_new"] == {"id": "flow_new", "name": "Lead scoring", "stepResults": None}
    assert by_id["flow_other"] == {
        "id": "flow_other",
        "name": "Someone else's",
        "stepResults": None,
    }

    other = supergraph.query(
        "{ flows { id stepResults { data { id } } } }", key=supergraph.other_key
    )
    results = {flow["id"]: flow["stepResults"] for flow in other["data"]["flows"]}
    assert results["flow_other"] == {"data": [{"id": "sr_other_1"}]}
    assert results["flow_alpha"] is None


def test_the_gateway_forwards_authorization_to_every_subgraph(supergraph: Supergraph) -> None:
    before = len(supergraph.flows_saw())

    with_key = supergraph.query(
        "{ flows { id stepResults(limit: 1) { data { id } } } "
        'stepResult(id: "sr_alpha_1") { flow { name } } }',
        key=supergraph.key,
    )
    without = supergraph.query("{ flows { id stepResults(limit: 1) { data { id } } } }")

    # stepgraph reads nothing without the caller's key: data proves it got the header.
    assert "errors" not in with_key, with_key
    assert with_key["data"]["stepResult"] == {"flow": {"name": "Customer onboarding"}}
    assert [f["stepResults"] is not None for f in with_key["data"]["flows"]] == [
        True,
        True,
        False,
        False,
    ]
    assert {f["stepResults"] for f in without["data"]["flows"]} == {None}
    assert [e["extensions"]["code"] for e in without["errors"]] == ["UNAUTHENTICATED"]
    # The flows subgraph saw the same header on its root query and on its entity lookup.
    seen = supergraph.flows_saw()[before:]
    with_key_requests = [r for r in seen if r["authorization"] is not None]
    assert {r["authorization"] for r in with_key_requests} == {f"Bearer {supergraph.key}"}
    assert any("_entities" in r["query"] for r in with_key_requests)
    assert any("flows" in r["query"] and "_entities" not in r["query"] for r in with_key_requests)
    assert [r["authorization"] for r in seen if r not in with_key_requests] == [None]
