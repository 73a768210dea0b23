"""StepResultQuery: REST query strings are validated once, errors name the argument."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from stepgraph.domain import SortField, SortOrder, StepStatus
from stepgraph.query import InvalidArgument, PageLimits, StepResultQuery

LIMITS = PageLimits()


def parse(**params: str) -> StepResultQuery:
    return StepResultQuery.from_query_string("flow_1", list(params.items()), LIMITS)


def test_defaults_follow_the_contract() -> None:
    query = parse()
    assert (query.sort_by, query.sort_order, query.limit, query.offset) == (
        SortField.CREATED_AT,
        SortOrder.DESC,
        25,
        0,
    )


def test_every_parameter_is_read() -> None:
    query = parse(
        recordId="r",
        batchId="b",
        status="failed",
        stepId="s",
        sortBy="estimatedCost",
        sortOrder="asc",
        limit="100",
        offset="7",
        **{"from": "2024-06-15", "to": "2024-06-16T00:00:00+02:00"},
    )
    assert query == StepResultQuery(
        flow_id="flow_1",
        record_id="r",
        batch_id="b",
        status=StepStatus.FAILED,
        step_id="s",
        created_from=datetime(2024, 6, 15, tzinfo=UTC),
        created_to=datetime(2024, 6, 15, 22, tzinfo=UTC),
        sort_by=SortField.ESTIMATED_COST,
        sort_order=SortOrder.ASC,
        limit=100,
        offset=7,
    )


@pytest.mark.parametrize(
    ("params", "argument"),
    [
        ({"limit": "abc"}, "limit"),
        ({"limit": "0"}, "limit"),
        ({"limit": "101"}, "limit"),
        ({"limit": "-1"}, "limit"),
        ({"limit": "2.5"}, "limit"),
        ({"offset": "-5"}, "offset"),
        ({"offset": "x"}, "offset"),
        ({"status": "done"}, "status"),
        ({"status": "COMPLETED"}, "status"),
        ({"sortBy": "name"}, "sortBy"),
        ({"sortOrder": "up"}, "sortOrder"),
        ({"from": "yesterday"}, "from"),
        ({"to": "2024-02-30"}, "to"),
        ({"from": "2024-06-16", "to": "2024-06-15"}, "from"),
        ({"recordId": ""}, "recordId"),
        ({"unknown": "1"}, "unknown"),
    ],
)
def test_invalid_parameters_name_the_argument(params: dict[str, str], argument: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        parse(**params)
    assert caught.value.argument == argument
    assert argument in caught.value.message


def test_a_repeated_parameter_is_refused() -> None:
    with pytest.raises(InvalidArgument, match="more than once"):
        StepResultQuery.from_query_string(
            "f", [("status", "failed"), ("status", "completed")], LIMITS
        )


def test_from_equal_to_is_an_empty_window_not_an_error() -> None:
    query = parse(**{"from": "2024-06-15", "to": "2024-06-15"})
    assert query.created_from == query.created_to


def test_configured_page_limits_apply() -> None:
    limits = PageLimits(default=10, maximum=500)
    assert StepResultQuery.from_query_string("f", [], limits).limit == 10
    assert StepResultQuery.from_query_string("f", [("limit", "500")], limits).limit == 500
