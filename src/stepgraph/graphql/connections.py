"""The Relay cursor connection of step results, and the total both connections offer.

``Query.stepResultsConnection`` and ``Flow.stepResultsConnection`` take the
contract's filters and sort plus ``first/after/last/before``, build a
:class:`StepResultCursorQuery` and hand it to ``store.keyset``. Cursors are
positions (sort value and id), not offsets, so deep pages cost what the first
one does and stay put while rows are inserted.

Decisions where the Relay spec leaves room:

- ``after`` and ``before`` may be combined with either ``first`` or ``last``: as
  the spec's algorithm does, the cursors cut the window first, then ``first``
  takes from its start and ``last`` from its end. ``first`` and ``last``
  together are refused (the spec discourages them). With neither, the default
  page size is taken from the end when only ``before`` is given (the page just
  before that cursor), otherwise from the start.
- ``hasNextPage`` and ``hasPreviousPage`` are exact, not merely allowed
  answers: true exactly when a step result matching the filters lies after the
  page's last edge (before its first edge), like ``hasMore`` of the offset page.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import strawberry

from stepgraph.graphql.context import Context
from stepgraph.query import StepResultFilter, StepResultQuery
from stepgraph.store import reads
from stepgraph.store.engine import reading

if TYPE_CHECKING:
    from stepgraph.graphql.types import StepResult


TOTAL_COUNT_DESCRIPTION = (
    "How many step results match the filters, across all pages. Counted only when "
    "selected: leave it out on every page after the first to keep paging cheap."
)


async def count_total(
    info: strawberry.Info[Context, None], selection: StepResultFilter | StepResultQuery
) -> int:
    """Count the rows matching the filters of ``selection``, for the caller's organization."""
    context = info.context
    async with reading(context.engine) as connection:
        return await reads.count_matching(
            connection, selection, organization_id=context.organization_id
        )


@strawberry.federation.type(
    shareable=True,
    description=(
        "Where a page of a cursor connection sits, as the Relay cursor connection spec defines "
        "it. Shareable: other subgraphs may define the same type."
    ),
)
class PageInfo:
    has_next_page: bool = strawberry.field(
        description="True exactly when an item matching the filters follows the last edge."
    )
    has_previous_page: bool = strawberry.field(
        description="True exactly when an item matching the filters precedes the first edge."
    )
    start_cursor: str | None = strawberry.field(
        description="Cursor of the first edge; null when the page is empty."
    )
    end_cursor: str | None = strawberry.field(
        description="Cursor of the last edge; null when the page is empty."
    )


@strawberry.type(description="One step result of a cursor page, with its cursor.")
class StepResultEdge:
    cursor: str = strawberry.field(
        description=(
            "Opaque position of this step result: pass it as `after` or `before` with the "
            "same flow, filters, sortBy and sortOrder."
        )
    )
    node: Annotated[StepResult, strawberry.lazy("stepgraph.graphql.types")] = strawberry.field(
        description="The step result."
    )


@strawberry.type(
    description=(
        "A cursor page of step results (Relay connection): `first`/`after` walk forward, "
        "`last`/`before` backward, in constant time however deep. Cursors hold a position, "
        "so rows inserted meanwhile are neither repeated nor skipped."
    )
)
class StepResultCursorConnection:
    edges: list[StepResultEdge] = strawberry.field(
        description="The step results of this page, in the list's order."
    )
    page_info: PageInfo = strawberry.field(description="Where this page sits.")
    selection: strawberry.Private[StepResultFilter]

    @strawberry.field(description=TOTAL_COUNT_DESCRIPTION)
    async def total_count(self, info: strawberry.Info[Context, None]) -> int:
        # A resolver runs only for a selected field (fragments, aliases, @skip and
        # @include included), so pages that do not ask for it never count.
        return await count_total(info, self.selection)
