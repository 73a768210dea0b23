"""The demo data: contract-shaped, deterministic, realistic, and loadable."""

from __future__ import annotations

import json
import re
import statistics
from collections import Counter, defaultdict
from datetime import timedelta
from decimal import Decimal
from itertools import islice, pairwise
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from stepgraph.demo import (
    DEMO_ANCHOR,
    DEMO_ORGANIZATIONS,
    DEMO_SEED,
    generate_demo_step_results,
)
from stepgraph.domain import STEP_RESULT_FIELDS, StepStatus
from stepgraph.records import parse_step_result, step_result_json
from stepgraph.store.tables import flows, step_results
from stepgraph.timestamps import parse_instant
from tests.conftest import insert

ROWS = 2000
Row = dict[str, Any]


@pytest.fixture(scope="module")
def rows() -> list[Row]:
    """The first rows of the demo data as served."""
    return list(generate_demo_step_results(ROWS, seed=DEMO_SEED))


def runs(rows: list[Row]) -> dict[str, list[Row]]:
    """Rows grouped by execution session (one run), each in step order."""
    grouped: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        grouped[row["executionSessionId"]].append(row)
    return {session: sorted(steps, key=lambda r: r["order"]) for session, steps in grouped.items()}


@pytest.mark.parametrize("count", [0, 1, 7, ROWS])
def test_yields_exactly_the_rows_asked_for(count: int) -> None:
    assert sum(1 for _ in generate_demo_step_results(count, seed=DEMO_SEED)) == count


def test_negative_row_count_is_rejected() -> None:
    with pytest.raises(ValueError, match="rows"):
        generate_demo_step_results(-1)


def test_rows_are_produced_lazily() -> None:
    endless = generate_demo_step_results(10**12, seed=DEMO_SEED)
    assert len(list(islice(endless, 5))) == 5


def test_same_seed_gives_identical_rows(rows: list[Row]) -> None:
    again = list(generate_demo_step_results(ROWS, seed=DEMO_SEED))
    assert json.dumps(again) == json.dumps(rows)


def test_different_seeds_give_different_rows() -> None:
    first = list(generate_demo_step_results(200, seed=1))
    second = list(generate_demo_step_results(200, seed=2))
    assert {r["id"] for r in first}.isdisjoint(r["id"] for r in second)


def test_default_seed_is_zero() -> None:
    assert list(generate_demo_step_results(50)) == list(generate_demo_step_results(50, seed=0))


def test_fewer_rows_are_a_prefix_of_more(rows: list[Row]) -> None:
    assert list(generate_demo_step_results(500, seed=DEMO_SEED)) == rows[:500]


def test_rows_have_exactly_the_contract_keys_in_order(rows: list[Row]) -> None:
    assert all(tuple(row) == STEP_RESULT_FIELDS for row in rows)


def test_every_row_passes_validation(rows: list[Row]) -> None:
    for row in rows:
        parse_step_result(row)


def test_rows_render_back_unchanged(rows: list[Row]) -> None:
    assert all(step_result_json(parse_step_result(row)) == row for row in rows)


def test_ids_are_unique(rows: list[Row]) -> None:
    assert len({row["id"] for row in rows}) == len(rows)


def test_every_status_appears(rows: list[Row]) -> None:
    assert {row["status"] for row in rows} == {status.value for status in StepStatus}


def test_several_organizations_and_flows(rows: list[Row]) -> None:
    assert len({row["organizationId"] for row in rows}) >= 3
    assert len({row["flowId"] for row in rows}) >= 6


def test_a_flow_never_belongs_to_two_organizations(rows: list[Row]) -> None:
    owners: dict[str, set[str]] = defaultdict(set)
    for row in rows:
        owners[row["flowId"]].add(row["organizationId"])
    assert all(len(orgs) == 1 for orgs in owners.values())
    declared = [flow for org in DEMO_ORGANIZATIONS for flow in org.flow_ids]
    assert len(declared) == len(set(declared))


def test_rows_match_the_declared_organizations(rows: list[Row]) -> None:
    organizations = {org.id: org for org in DEMO_ORGANIZATIONS}
    for row in rows:
        org = organizations[row["organizationId"]]
        assert row["userId"] in org.user_ids
        assert row["flowId"] in org.flow_ids


def test_a_few_flows_hold_most_rows() -> None:
    counts = Counter(row["flowId"] for row in generate_demo_step_results(20_000, seed=DEMO_SEED))
    top_three = sum(n for _, n in counts.most_common(3))
    assert top_three > 0.5 * sum(counts.values())
    assert len(counts) >= 10


def test_flow_versions_change_over_time() -> None:
    versions: dict[str, set[str]] = defaultdict(set)
    for row in generate_demo_step_results(20_000, seed=DEMO_SEED):
        versions[row["flowId"]].add(row["flowVersionId"])
    assert max(len(v) for v in versions.values()) >= 3


def test_batches_run_one_flow_and_some_runs_have_no_batch(rows: list[Row]) -> None:
    batch_flows: dict[str, set[str]] = defaultdict(set)
    for row in rows:
        if row["batchExecutionId"] is not None:
            batch_flows[row["batchExecutionId"]].add(row["flowId"])
    assert len(batch_flows) >= 5
    assert all(len(f) == 1 for f in batch_flows.values())
    assert any(row["batchExecutionId"] is None for row in rows)


def test_a_run_covers_one_record_with_ordered_steps(rows: list[Row]) -> None:
    for steps in runs(rows).values():
        assert len({(r["flowId"], r["recordId"], r["batchExecutionId"]) for r in steps}) == 1
        assert [r["order"] for r in steps] == list(range(1, len(steps) + 1))
        assert len({r["stepId"] for r in steps}) == len(steps)


def test_timestamps_are_consistent(rows: list[Row]) -> None:
    earliest = DEMO_ANCHOR - timedelta(weeks=6)
    for row in rows:
        created = parse_instant(row["createdAt"])
        assert earliest <= created <= DEMO_ANCHOR
        if row["startedAt"] is not None:
            assert created <= parse_instant(row["startedAt"])
        if row["completedAt"] is not None:
            elapsed = parse_instant(row["completedAt"]) - parse_instant(row["startedAt"])
            assert row["durationMs"] == elapsed // timedelta(milliseconds=1)
        assert row["createdAt"].endswith("Z")


def test_unfinished_steps_have_no_end(rows: list[Row]) -> None:
    for row in rows:
        if row["status"] in {"pending", "running"}:
            assert row["completedAt"] is None
            assert row["durationMs"] is None
        if row["status"] == "pending":
            assert row["startedAt"] is None
        if row["status"] in {"completed", "failed"}:
            assert row["startedAt"] is not None
            assert row["durationMs"] is not None


def test_steps_of_a_run_follow_one_another(rows: list[Row]) -> None:
    for steps in runs(rows).values():
        for before, after in pairwise(steps):
            if before["completedAt"] is not None and after["startedAt"] is not None:
                assert parse_instant(after["startedAt"]) >= parse_instant(before["completedAt"])


def test_a_failed_step_stops_its_run(rows: list[Row]) -> None:
    failed_runs = 0
    for steps in runs(rows).values():
        statuses = [r["status"] for r in steps]
        if "failed" in statuses:
            failed_runs += 1
            after = statuses[statuses.index("failed") + 1 :]
            assert set(after) <= {"skipped"}
    assert failed_runs > 0


def test_durations_are_heavy_tailed(rows: list[Row]) -> None:
    durations = [row["durationMs"] for row in rows if row["durationMs"] is not None]
    assert max(durations) > 50 * statistics.median(durations)


def test_total_tokens_add_up(rows: list[Row]) -> None:
    with_tokens = [row for row in rows if row["totalTokens"] is not None]
    assert with_tokens
    for row in with_tokens:
        assert row["totalTokens"] == row["promptTokens"] + row["completionTokens"]


def test_completed_prompt_steps_carry_model_prompt_and_cost(rows: list[Row]) -> None:
    prompts = [r for r in rows if r["stepType"] == "prompt" and r["status"] == "completed"]
    assert len({row["modelUsed"] for row in prompts}) >= 3
    for row in prompts:
        assert row["resolvedPrompt"]
        assert isinstance(row["inputVariables"], dict)
        assert row["totalTokens"] > 0
        assert row["estimatedCost"] is not None


def test_most_other_steps_have_no_tokens(rows: list[Row]) -> None:
    others = [row for row in rows if row["stepType"] != "prompt"]
    without = [row for row in others if row["totalTokens"] is None and row["modelUsed"] is None]
    assert len(without) > 0.9 * len(others)


def test_cost_is_an_exact_decimal_string(rows: list[Row]) -> None:
    costs = [row["estimatedCost"] for row in rows if row["estimatedCost"] is not None]
    assert costs
    for cost in costs:
        assert re.fullmatch(r"\d+(\.\d{1,10})?", cost), cost


def test_cost_follows_the_model_price(rows: list[Row]) -> None:
    # gpt-4o-mini: $0.15 per million prompt tokens, $0.60 per million completion tokens.
    mini = [row for row in rows if row["modelUsed"] == "gpt-4o-mini" and row["estimatedCost"]]
    assert mini
    for row in mini:
        expected = (
            Decimal("0.15") * row["promptTokens"] + Decimal("0.60") * row["completionTokens"]
        ) / 1_000_000
        assert Decimal(row["estimatedCost"]) == expected


def test_retries_and_error_messages_appear(rows: list[Row]) -> None:
    assert any(row["retryCount"] > 0 for row in rows)
    failed = [row for row in rows if row["status"] == "failed"]
    assert failed
    assert all(row["errorMessage"] for row in failed)
    assert len({row["errorMessage"] for row in failed}) >= 3


def test_json_fields_are_objects_when_present(rows: list[Row]) -> None:
    for field in ("recordMetadata", "stepConfig", "inputVariables"):
        values = [row[field] for row in rows if row[field] is not None]
        assert values, field
        assert all(isinstance(value, dict) for value in values)


async def test_demo_rows_load_into_a_fresh_store(engine: AsyncEngine, rows: list[Row]) -> None:
    await insert(engine, rows)
    async with engine.connect() as connection:
        stored = await connection.scalar(select(func.count()).select_from(step_results))
        owners = dict((await connection.execute(select(flows.c.id, flows.c.organization_id))).all())
    assert stored == len(rows)
    assert owners == {row["flowId"]: row["organizationId"] for row in rows}
