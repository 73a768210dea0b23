"""Object types of the schema, built from store rows by ``from_row``."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar

import strawberry
from strawberry.scalars import JSON

from stepgraph.graphql.arguments import (
    AfterArg,
    BatchIdArg,
    BeforeArg,
    FirstArg,
    FlowIdArg,
    FromArg,
    LastArg,
    LimitArg,
    OffsetArg,
    RecordIdArg,
    SortByArg,
    SortOrderArg,
    StatusArg,
    StepIdArg,
    ToArg,
    build_cursor_query,
    build_filter,
    build_query,
)
from stepgraph.graphql.connections import (
    TOTAL_COUNT_DESCRIPTION,
    PageInfo,
    StepResultCursorConnection,
    StepResultEdge,
    count_total,
)
from stepgraph.graphql.context import Context
from stepgraph.graphql.enums import SortOrder, StepResultSort, StepStatus
from stepgraph.graphql.fastpath import page_failure
from stepgraph.graphql.stats import StatsFlowIdArg, StepResultStats, load_stats
from stepgraph.query import StepResultCursorQuery, StepResultQuery
from stepgraph.store import keyset, reads
from stepgraph.store.engine import reading

# `@tag(name: "internal")`: fields a public contract variant of the supergraph leaves out
# (prompts, variables and configuration may hold customer data or secrets).
INTERNAL = ("internal",)


@strawberry.type(
    description="The REST envelope's pagination: the window asked for and what came back."
)
class Pagination:
    limit: int = strawberry.field(description="Page size that was applied.")
    offset: int = strawberry.field(description="Rows skipped before this page.")
    returned: int = strawberry.field(description="Number of rows in `data`.")
    has_more: bool = strawberry.field(description="True exactly when a row exists after this page.")


@strawberry.type(
    description=(
        "One page of step results, shaped like the REST response "
        "(`{data, pagination}`), so REST clients switch without remapping."
    )
)
class StepResultConnection:
    data: list[StepResult] = strawberry.field(
        description="The step results of this page, in order."
    )
    pagination: Pagination = strawberry.field(description="Where this page sits.")
    selection: strawberry.Private[StepResultQuery]

    @strawberry.field(description=TOTAL_COUNT_DESCRIPTION)
    async def total_count(self, info: strawberry.Info[Context, None]) -> int:
        # A resolver runs only for a selected field, so pages that do not ask never count.
        return await count_total(info, self.selection)


async def load_page(
    info: strawberry.Info[Context, None], query: StepResultQuery
) -> StepResultConnection:
    """Run the page's one SELECT and wrap the rows."""
    context = info.context
    failure = page_failure(query)
    if failure is not None:
        # The compiled path already read this page and failed: report that, do not read twice.
        raise failure
    async with reading(context.engine) as connection:
        page = await reads.fetch_page(connection, query, organization_id=context.organization_id)
    return StepResultConnection(
        data=[StepResult.from_row(row) for row in page.rows],
        pagination=Pagination(
            limit=query.limit,
            offset=query.offset,
            returned=len(page.rows),
            has_more=page.has_more,
        ),
        selection=query,
    )


async def load_cursor_page(
    info: strawberry.Info[Context, None], query: StepResultCursorQuery
) -> StepResultCursorConnection:
    """Read one cursor page and wrap its rows in edges."""
    context = info.context
    async with reading(context.engine) as connection:
        page = await keyset.fetch_cursor_page(
            connection, query, organization_id=context.organization_id
        )
    edges = [
        StepResultEdge(
            cursor=query.cursor(keyset.position_of(row, query.sort_by)),
            node=StepResult.from_row(row),
        )
        for row in page.rows
    ]
    return StepResultCursorConnection(
        edges=edges,
        page_info=PageInfo(
            has_next_page=page.has_next_page,
            has_previous_page=page.has_previous_page,
            start_cursor=edges[0].cursor if edges else None,
            end_cursor=edges[-1].cursor if edges else None,
        ),
        selection=query.filter,
    )


# An entity shared with the subgraph that owns flows: this one adds only `stepResults`.
# `Flow` and `Flow.id` carry no description here on purpose. The owner describes them,
# and composers report INCONSISTENT_DESCRIPTION when two subgraphs describe one element
# differently; a subgraph without a description defers to the other.
T = TypeVar("T")


# Root fields that take a flow's id, and what `Flow` derives from them: the arguments of
# the contract are written once, in these signatures.


async def resolve_step_results(
    root: Any,
    info: strawberry.Info[Context, None],
    flow_id: FlowIdArg,
    record_id: RecordIdArg = strawberry.UNSET,
    batch_id: BatchIdArg = strawberry.UNSET,
    status: StatusArg = strawberry.UNSET,
    step_id: StepIdArg = strawberry.UNSET,
    from_: FromArg = strawberry.UNSET,
    to: ToArg = strawberry.UNSET,
    sort_by: SortByArg = StepResultSort.CREATED_AT,
    sort_order: SortOrderArg = SortOrder.DESC,
    limit: LimitArg = strawberry.UNSET,
    offset: OffsetArg = 0,
) -> StepResultConnection | None:
    query = build_query(
        flow_id=str(flow_id),
        limits=info.context.limits,
        record_id=record_id,
        batch_id=batch_id,
        status=status,
        step_id=step_id,
        from_=from_,
        to=to,
        sort_by=sort_by,
        sort_order=sort_order,
        limit=limit,
        offset=offset,
    )
    return await load_page(info, query)


async def resolve_step_results_connection(
    root: Any,
    info: strawberry.Info[Context, None],
    flow_id: FlowIdArg,
    record_id: RecordIdArg = strawberry.UNSET,
    batch_id: BatchIdArg = strawberry.UNSET,
    status: StatusArg = strawberry.UNSET,
    step_id: StepIdArg = strawberry.UNSET,
    from_: FromArg = strawberry.UNSET,
    to: ToArg = strawberry.UNSET,
    sort_by: SortByArg = StepResultSort.CREATED_AT,
    sort_order: SortOrderArg = SortOrder.DESC,
    first: FirstArg = strawberry.UNSET,
    after: AfterArg = strawberry.UNSET,
    last: LastArg = strawberry.UNSET,
    before: BeforeArg = strawberry.UNSET,
) -> StepResultCursorConnection | None:
    query = build_cursor_query(
        flow_id=str(flow_id),
        limits=info.context.limits,
        record_id=record_id,
        batch_id=batch_id,
        status=status,
        step_id=step_id,
        from_=from_,
        to=to,
        sort_by=sort_by,
        sort_order=sort_order,
        first=first,
        after=after,
        last=last,
        before=before,
    )
    return await load_cursor_page(info, query)


async def resolve_step_result_stats(
    root: Any,
    info: strawberry.Info[Context, None],
    flow_id: StatsFlowIdArg,
    record_id: RecordIdArg = strawberry.UNSET,
    batch_id: BatchIdArg = strawberry.UNSET,
    status: StatusArg = strawberry.UNSET,
    step_id: StepIdArg = strawberry.UNSET,
    from_: FromArg = strawberry.UNSET,
    to: ToArg = strawberry.UNSET,
) -> StepResultStats | None:
    selection = build_filter(
        flow_id=str(flow_id),
        record_id=record_id,
        batch_id=batch_id,
        status=status,
        step_id=step_id,
        from_=from_,
        to=to,
    )
    return await load_stats(info, selection)


def of_this_flow(resolver: Callable[..., Awaitable[T]]) -> Callable[..., Awaitable[T]]:
    """A root field's ``resolver`` as a field of ``Flow``, with the flow's own id as ``flowId``.

    Strawberry reads a field's arguments from its resolver's signature: the derived one
    declares every argument of ``resolver`` but ``flow_id``, with the same annotations
    (so the same names, descriptions and defaults in the schema).
    """
    signature = inspect.signature(resolver)

    async def resolve(root: Flow, **arguments: Any) -> T:
        return await resolver(root, flow_id=root.id, **arguments)

    resolve.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[p for p in signature.parameters.values() if p.name != "flow_id"]
    )
    resolve.__annotations__ = {
        name: annotation
        for name, annotation in resolver.__annotations__.items()
        if name != "flow_id"
    }
    resolve.__name__ = resolve.__qualname__ = resolver.__name__.removeprefix("resolve_")
    return resolve


@strawberry.federation.type(keys=["id"])
class Flow:
    id: strawberry.ID

    step_results = strawberry.field(
        resolver=of_this_flow(resolve_step_results),
        description=(
            "This flow's step results, filtered, sorted and paged exactly like "
            "`GET /v1/flows/{id}/step-results`. Null with a NOT_FOUND error when the flow "
            "does not exist."
        ),
    )
    step_results_connection = strawberry.field(
        resolver=of_this_flow(resolve_step_results_connection),
        description=(
            "This flow's step results as a Relay cursor connection: the filters and sort of "
            "`stepResults`, paged by `first`/`after` or `last`/`before` in constant time "
            "however deep. The same as `Query.stepResultsConnection`. Null with a NOT_FOUND "
            "error when the flow does not exist; BAD_USER_INPUT (naming the argument) for an "
            "invalid argument or a cursor of another list."
        ),
    )
    stats = strawberry.field(
        resolver=of_this_flow(resolve_step_result_stats),
        description=(
            "Counts, token and cost sums and duration percentiles over this flow's step "
            "results that the filters select; the same as `Query.stepResultStats`. Null with "
            "a NOT_FOUND error when the flow does not exist."
        ),
    )

    @classmethod
    async def resolve_reference(
        cls, info: strawberry.Info[Context, None], id: strawberry.ID
    ) -> Flow | None:
        """A flow by reference from another subgraph; null when unknown to this caller."""
        row = await info.context.flows.load(str(id))
        return None if row is None else cls(id=id)


@strawberry.federation.type(
    keys=["id"],
    description="What one step of one flow run on one record left behind.",
)
class StepResult:
    id: strawberry.ID = strawberry.field(description="Unique, stable id of this step result.")
    user_id: str = strawberry.field(description="The user who owns the run.")
    organization_id: str = strawberry.field(description="The organization that owns the run.")
    batch_execution_id: str | None = strawberry.field(
        description="The batch that ran the flow over many records, if any."
    )
    execution_session_id: str | None = strawberry.field(description="The run's execution session.")
    flow_id: str = strawberry.field(description="Id of the flow (see also `flow`).")
    flow_version_id: str | None = strawberry.field(description="The version of the flow that ran.")
    record_id: str | None = strawberry.field(description="The record the flow ran on.")
    record_name: str | None = strawberry.field(description="Human-readable name of the record.")
    step_id: str = strawberry.field(description="The step of the flow.")
    step_type: str = strawberry.field(
        description="Kind of step, free text: `api-call`, `prompt`, ..."
    )
    step_name: str = strawberry.field(description="Human-readable name of the step.")
    order: int = strawberry.field(description="Position of the step in the flow.")
    status: StepStatus = strawberry.field(description="Where the step stands.")
    started_at: datetime | None = strawberry.field(description="When the step started.")
    completed_at: datetime | None = strawberry.field(description="When the step finished.")
    duration_ms: int | None = strawberry.field(
        description="How long the step ran, in milliseconds."
    )
    output_preview: str | None = strawberry.field(description="The start of the step's output.")
    created_at: datetime = strawberry.field(description="When this step result was recorded.")
    record_metadata: JSON | None = strawberry.federation.field(
        description="The record's metadata, a JSON object.", tags=INTERNAL
    )
    step_config: JSON | None = strawberry.federation.field(
        description="The step's configuration, a JSON object.", tags=INTERNAL
    )
    input_variables: JSON | None = strawberry.federation.field(
        description="Variables the step was given, a JSON object.", tags=INTERNAL
    )
    resolved_prompt: str | None = strawberry.federation.field(
        description="The prompt as sent to the model, variables filled in.", tags=INTERNAL
    )
    model_used: str | None = strawberry.field(description="The model a prompt step called.")
    prompt_tokens: int | None = strawberry.field(description="Tokens in the prompt.")
    completion_tokens: int | None = strawberry.field(description="Tokens in the completion.")
    total_tokens: int | None = strawberry.field(description="Prompt plus completion tokens.")
    estimated_cost: Decimal | None = strawberry.field(
        description='Estimated cost in US dollars, exact (a decimal string such as "0.0045").'
    )
    error_message: str | None = strawberry.field(description="Why the step failed, if it did.")
    retry_count: int = strawberry.field(description="How many times the step was retried.")

    @strawberry.field(description="The flow this step result belongs to.")
    def flow(self) -> Flow:
        return Flow(id=strawberry.ID(self.flow_id))

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> StepResult:
        """Build the type from a store row (column names as in ``store.tables``)."""
        return cls(
            id=row["id"],
            user_id=row["user_id"],
            organization_id=row["organization_id"],
            batch_execution_id=row["batch_execution_id"],
            execution_session_id=row["execution_session_id"],
            flow_id=row["flow_id"],
            flow_version_id=row["flow_version_id"],
            record_id=row["record_id"],
            record_name=row["record_name"],
            step_id=row["step_id"],
            step_type=row["step_type"],
            step_name=row["step_name"],
            order=row["step_order"],
            status=StepStatus(row["status"]),
            started_at=row["started_at"],
            completed_at=row["completed_at"],
            duration_ms=row["duration_ms"],
            output_preview=row["output_preview"],
            created_at=row["created_at"],
            record_metadata=row["record_metadata"],
            step_config=row["step_config"],
            input_variables=row["input_variables"],
            resolved_prompt=row["resolved_prompt"],
            model_used=row["model_used"],
            prompt_tokens=row["prompt_tokens"],
            completion_tokens=row["completion_tokens"],
            total_tokens=row["total_tokens"],
            estimated_cost=row["estimated_cost"],
            error_message=row["error_message"],
            retry_count=row["retry_count"],
        )

    @classmethod
    async def resolve_reference(
        cls, info: strawberry.Info[Context, None], id: strawberry.ID
    ) -> StepResult | None:
        """A step result by reference from another subgraph; null when unknown to this caller."""
        row = await info.context.step_results.load(str(id))
        return None if row is None else cls.from_row(row)
