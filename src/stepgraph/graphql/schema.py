"""The federation schema: root fields and the schema object."""

from __future__ import annotations

import logging
from typing import Annotated, Any

import strawberry
from graphql import GraphQLError
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext

from stepgraph.graphql.arguments import (
    BatchIdArg,
    FlowIdArg,
    FromArg,
    LimitArg,
    OffsetArg,
    RecordIdArg,
    SortByArg,
    SortOrderArg,
    StatusArg,
    StepIdArg,
    ToArg,
    build_query,
)
from stepgraph.graphql.auth import RequireViewer
from stepgraph.graphql.context import Context
from stepgraph.graphql.enums import SortOrder, StepResultSort
from stepgraph.graphql.errors import ErrorCodes, is_unexpected
from stepgraph.graphql.protocol import OperationSelection, QueryLimits, limit_extensions
from stepgraph.graphql.scalars import SCALAR_OVERRIDES
from stepgraph.graphql.types import Flow, StepResult, StepResultConnection, load_page

logger = logging.getLogger("stepgraph.graphql")


@strawberry.type(description="Read step results of flow runs.")
class Query:
    @strawberry.field(
        description=(
            "Step results of one flow, filtered, sorted and paged exactly like "
            "`GET /v1/flows/{id}/step-results`. Null with a NOT_FOUND error when the flow "
            "does not exist; BAD_USER_INPUT (naming the argument) for an invalid argument."
        )
    )
    async def step_results(
        self,
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

    @strawberry.field(description="One step result by id; null when it does not exist.")
    async def step_result(
        self,
        info: strawberry.Info[Context, None],
        id: Annotated[strawberry.ID, strawberry.argument(description="The step result's id.")],
    ) -> StepResult | None:
        row = await info.context.step_results.load(str(id))
        return None if row is None else StepResult.from_row(row)

    @strawberry.field(description="One flow by id; null when it does not exist.")
    async def flow(
        self,
        info: strawberry.Info[Context, None],
        id: Annotated[strawberry.ID, strawberry.argument(description="The flow's id.")],
    ) -> Flow | None:
        row = await info.context.flows.load(str(id))
        return None if row is None else Flow(id=id)


class StepgraphSchema(strawberry.federation.Schema):
    """Logs what the client will only see masked, with the request id to find it."""

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        request_id: Any = getattr(getattr(execution_context, "context", None), "request_id", None)
        for error in errors:
            if is_unexpected(error):
                logger.error(
                    "unexpected error in GraphQL request %s",
                    request_id,
                    exc_info=error.original_error,
                )


def build_schema(limits: QueryLimits | None = None) -> StepgraphSchema:
    """The schema served at /graphql and exported to ``schema.graphql``.

    ``limits`` only change which documents are refused, never the SDL.
    """
    limits = limits or QueryLimits()
    config = StrawberryConfig(
        batching_config={"max_operations": limits.max_batch} if limits.max_batch else None
    )
    return StepgraphSchema(
        query=Query,
        config=config,
        types=[StepResult, Flow],
        scalar_overrides=SCALAR_OVERRIDES,
        # 2.9 is the newest federation version every composer we test with knows
        # (Hive's stops there); stepgraph needs only @key and @tag.
        federation_version="2.9",
        extensions=[
            ErrorCodes,
            *limit_extensions(limits),
            OperationSelection,
            RequireViewer,
        ],
    )
