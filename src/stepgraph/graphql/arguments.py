"""The contract's arguments, described once and shared by every field that takes them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, TypeVar

import strawberry

from stepgraph.graphql.enums import SortOrder, StepResultSort, StepStatus
from stepgraph.query import PageLimits, StepResultCursorQuery, StepResultFilter, StepResultQuery

_T = TypeVar("_T")

FlowIdArg = Annotated[
    strawberry.ID, strawberry.argument(description="The flow whose step results to list.")
]
RecordIdArg = Annotated[
    str | None, strawberry.argument(description="Only step results of this record (exact match).")
]
BatchIdArg = Annotated[
    str | None,
    strawberry.argument(description="Only step results of this batch execution (exact match)."),
]
StatusArg = Annotated[
    StepStatus | None, strawberry.argument(description="Only step results with this status.")
]
StepIdArg = Annotated[
    str | None,
    strawberry.argument(description="Only results of this step of the flow (exact match)."),
]
FromArg = Annotated[
    datetime | None,
    strawberry.argument(
        name="from",
        description=(
            "Only step results created at or after this instant (inclusive). A date alone "
            "means midnight UTC; no offset means UTC."
        ),
    ),
]
ToArg = Annotated[
    datetime | None,
    strawberry.argument(
        description=(
            "Only step results created before this instant (exclusive). A date alone means "
            "midnight UTC; no offset means UTC. Must not be before `from`."
        )
    ),
]
SortByArg = Annotated[
    StepResultSort | None,
    strawberry.argument(
        description="What to order by; ties are broken by id in the same direction."
    ),
]
SortOrderArg = Annotated[
    SortOrder | None,
    strawberry.argument(description="Sort direction; NULLs come last in both directions."),
]
LimitArg = Annotated[
    int | None,
    strawberry.argument(description="Page size: 1 to 100 (server setting), 25 when omitted."),
]
OffsetArg = Annotated[
    int | None,
    strawberry.argument(
        description="Rows to skip, 0 or more (default 0). Past the end gives an empty page."
    ),
]
FirstArg = Annotated[
    int | None,
    strawberry.argument(
        description=(
            "Take this many step results from the start (after `after`, when given): 1 to 100 "
            "(server setting); not together with `last`. When neither is given, 25 are "
            "taken: from the end when only `before` is given, otherwise from the start."
        )
    ),
]
AfterArg = Annotated[
    str | None,
    strawberry.argument(
        description=(
            "Only step results after this cursor (an edge's `cursor` or `pageInfo.endCursor`), "
            "made by this field with the same flow, filters, sortBy and sortOrder."
        )
    ),
]
LastArg = Annotated[
    int | None,
    strawberry.argument(
        description=(
            "Take this many step results from the end (before `before`, when given), to page "
            "backward: 1 to 100 (server setting); not together with `first`."
        )
    ),
]
BeforeArg = Annotated[
    str | None,
    strawberry.argument(
        description=(
            "Only step results before this cursor (an edge's `cursor` or "
            "`pageInfo.startCursor`), made by this field with the same flow, filters, sortBy "
            "and sortOrder."
        )
    ),
]


def build_query(
    *,
    flow_id: str,
    limits: PageLimits,
    record_id: str | None,
    batch_id: str | None,
    status: StepStatus | None,
    step_id: str | None,
    from_: datetime | None,
    to: datetime | None,
    sort_by: StepResultSort | None,
    sort_order: SortOrder | None,
    limit: int | None,
    offset: int | None,
) -> StepResultQuery:
    """Translate GraphQL arguments into the query object REST builds too.

    Omitted arguments arrive as ``UNSET`` and explicit nulls as None; both mean
    "not given", so the contract's defaults apply.
    """
    return StepResultQuery.build(
        flow_id=flow_id,
        limits=limits,
        **_filters(record_id, batch_id, status, step_id, from_, to),
        sort_by=sort_by.to_domain() if sort_by else None,
        sort_order=sort_order.to_domain() if sort_order else None,
        limit=_given(limit),
        offset=_given(offset),
    )


def build_cursor_query(
    *,
    flow_id: str,
    limits: PageLimits,
    record_id: str | None,
    batch_id: str | None,
    status: StepStatus | None,
    step_id: str | None,
    from_: datetime | None,
    to: datetime | None,
    sort_by: StepResultSort | None,
    sort_order: SortOrder | None,
    first: int | None,
    after: str | None,
    last: int | None,
    before: str | None,
) -> StepResultCursorQuery:
    """Translate a cursor connection's GraphQL arguments into its query object."""
    return StepResultCursorQuery.build(
        flow_id=flow_id,
        limits=limits,
        **_filters(record_id, batch_id, status, step_id, from_, to),
        sort_by=sort_by.to_domain() if sort_by else None,
        sort_order=sort_order.to_domain() if sort_order else None,
        first=_given(first),
        after=_given(after),
        last=_given(last),
        before=_given(before),
    )


def build_filter(
    *,
    flow_id: str,
    record_id: str | None,
    batch_id: str | None,
    status: StepStatus | None,
    step_id: str | None,
    from_: datetime | None,
    to: datetime | None,
) -> StepResultFilter:
    """Translate the filter arguments (omitted ones arrive as ``UNSET``) into the filter."""
    return StepResultFilter.build(
        flow_id=flow_id, **_filters(record_id, batch_id, status, step_id, from_, to)
    )


def _filters(
    record_id: str | None,
    batch_id: str | None,
    status: StepStatus | None,
    step_id: str | None,
    from_: datetime | None,
    to: datetime | None,
) -> dict[str, Any]:
    """The contract's filters as every query object's ``build`` takes them."""
    return {
        "record_id": _given(record_id),
        "batch_id": _given(batch_id),
        "status": status.to_domain() if status else None,
        "step_id": _given(step_id),
        "created_from": _given(from_),
        "created_to": _given(to),
    }


def _given(value: _T | None) -> _T | None:
    return None if value is strawberry.UNSET else value
