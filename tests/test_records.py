"""Contract validation of one step result, and its JSON rendering."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from stepgraph.domain import STEP_RESULT_FIELDS
from stepgraph.records import InvalidStepResult, parse_step_result, step_result_json
from tests.factories import make_step_result

SEED_ROW: dict[str, Any] = make_step_result(
    id="a3f1c9d2-4b7e-4f8a-9d3e-2b5f6c7d8e9f",
    userId="user_7890abcd1234",
    organizationId="org_4567efgh8901",
    batchExecutionId="batch_20240615_001",
    executionSessionId="session_20240615_abc123",
    flowId="flow_1234abcd5678",
    flowVersionId="version_2.1.0",
    recordId="record_9876wxyz4321",
    createdAt="2024-06-15T10:15:30Z",
    outputPreview='{"valid":true,"errors":[]}',
)


def test_a_seed_row_round_trips_unchanged() -> None:
    assert step_result_json(parse_step_result(SEED_ROW)) == SEED_ROW
    assert tuple(step_result_json(parse_step_result(SEED_ROW))) == STEP_RESULT_FIELDS


def test_input_is_normalised() -> None:
    row = parse_step_result(
        make_step_result(createdAt="2024-06-15T12:15:30.5+02:00", estimatedCost=0.0045)
    )
    rendered = step_result_json(row)
    assert rendered["createdAt"] == "2024-06-15T10:15:30.500000Z"
    assert rendered["estimatedCost"] == "0.0045"
    assert row["estimated_cost"] == Decimal("0.0045")


def test_absent_optional_fields_are_null_and_retry_count_zero() -> None:
    row = make_step_result()
    for name in ("recordName", "durationMs", "retryCount"):
        del row[name]
    rendered = step_result_json(parse_step_result(row))
    assert (rendered["recordName"], rendered["durationMs"], rendered["retryCount"]) == (
        None,
        None,
        0,
    )


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"id": ""}, "id"),
        ({"flowId": None}, "flowId"),
        ({"order": "1"}, "order"),
        ({"order": True}, "order"),
        ({"status": "COMPLETED"}, "status"),
        ({"createdAt": "yesterday"}, "createdAt"),
        ({"startedAt": 1718446530}, "startedAt"),
        ({"durationMs": -1}, "durationMs"),
        ({"recordMetadata": [1, 2]}, "recordMetadata"),
        ({"estimatedCost": "abc"}, "estimatedCost"),
        ({"estimatedCost": "0.000000000001"}, "estimatedCost"),
        ({"estimatedCost": "NaN"}, "estimatedCost"),
        ({"retryCount": None}, "retryCount"),
        ({"colour": "blue"}, "colour"),
    ],
)
def test_each_field_at_fault_is_named(overrides: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidStepResult) as caught:
        parse_step_result(make_step_result(**overrides))
    assert [e.field for e in caught.value.errors] == [field]


def test_every_fault_of_a_row_is_reported_at_once() -> None:
    with pytest.raises(InvalidStepResult) as caught:
        parse_step_result(make_step_result(status="done", order=-1, extra=1))
    assert {e.field for e in caught.value.errors} == {"status", "order", "extra"}


def test_a_missing_required_field_is_named() -> None:
    row = make_step_result()
    del row["stepId"]
    with pytest.raises(InvalidStepResult, match="stepId: is required"):
        parse_step_result(row)
