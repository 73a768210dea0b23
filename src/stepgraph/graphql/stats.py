"""Stats over one flow's step results: counts, token and cost sums, duration percentiles.

``Query.stepResultStats`` and ``Flow.stats`` take the contract's filters, build a
:class:`StepResultFilter` and hand it to ``store.stats``; the per-step breakdown runs
its own SELECT only when a client selects ``byStep``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, NewType

import strawberry
from strawberry.types.scalar import ScalarDefinition

from stepgraph.graphql.context import Context
from stepgraph.graphql.enums import StepStatus
from stepgraph.query import StepResultFilter
from stepgraph.store import stats
from stepgraph.store.engine import reading
from stepgraph.store.stats import Measures

# Sums of tokens outgrow GraphQL's 32-bit Int on large flows (a million prompt steps
# of 3,000 tokens each is past 2^31).
Long = NewType("Long", int)


def _serialize_long(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"Long cannot represent {value!r}")
    return value


def _parse_long(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not -(2**63) <= value < 2**63:
        raise ValueError(f"Long must be a whole number within 64 bits, got {value!r}")
    return value


LONG: ScalarDefinition = strawberry.scalar(
    name="Long",
    description=(
        "A 64-bit signed whole number, sent as a JSON number. JavaScript numbers hold it "
        "exactly up to 2^53."
    ),
    serialize=_serialize_long,
    parse_value=_parse_long,
)

# Registered with the schema next to the contract's scalars.
STATS_SCALARS: dict[object, Any] = {Long: LONG}

StatsFlowIdArg = Annotated[
    strawberry.ID, strawberry.argument(description="The flow whose step results to measure.")
]

_ROUNDING = (
    f"rounded to {stats.ROUNDING} decimal places (half to even), so every store returns "
    "the same number"
)
_PERCENTILE = (
    "as PostgreSQL's `percentile_cont({fraction})` defines it: continuous, linearly "
    "interpolated between the two durations nearest to position {fraction} * (n - 1) of the "
    f"n durations in ascending order (counted from 0), {_ROUNDING}."
)


@strawberry.type(description="How many of the selected step results have one status.")
class StatusCount:
    status: StepStatus = strawberry.field(description="The status.")
    count: int = strawberry.field(
        description="How many of the selected step results have it; 0 when none does."
    )


@strawberry.type(
    description=(
        "How long the selected step results ran, in milliseconds. Step results without a "
        "duration are left out; every measure is null when none has one."
    )
)
class DurationStats:
    count: int = strawberry.field(description="How many of the selected step results have one.")
    min: int | None = strawberry.field(description="The shortest duration.")
    max: int | None = strawberry.field(description="The longest duration.")
    avg: float | None = strawberry.field(description=f"The mean duration, {_ROUNDING}.")
    p50: float | None = strawberry.field(
        description="The median duration, " + _PERCENTILE.format(fraction="0.5")
    )
    p95: float | None = strawberry.field(
        description="The 95th percentile of the durations, " + _PERCENTILE.format(fraction="0.95")
    )


@strawberry.interface(
    description=(
        "Counts and sums over a set of step results. A sum leaves out step results without "
        "the value and is null when none has it."
    )
)
class StepResultMeasures:
    count: int = strawberry.field(description="How many step results are in the set.")
    by_status: list[StatusCount] = strawberry.field(
        description=(
            "How many have each status: every status once, zeros included, in the order "
            "of `StepStatus`."
        )
    )
    prompt_tokens: Long | None = strawberry.field(description="Sum of `promptTokens`.")
    completion_tokens: Long | None = strawberry.field(description="Sum of `completionTokens`.")
    total_tokens: Long | None = strawberry.field(description="Sum of `totalTokens`.")
    estimated_cost: Decimal | None = strawberry.field(
        description="Sum of `estimatedCost` in US dollars, exact (no binary rounding)."
    )
    duration_ms: DurationStats = strawberry.field(description="Statistics of `durationMs`.")


def _measured(measures: Measures) -> dict[str, Any]:
    """The interface's fields from the store's measures."""
    duration = measures.duration
    return {
        "count": measures.count,
        "by_status": [
            StatusCount(status=StepStatus(status.value), count=count)
            for status, count in measures.by_status.items()
        ],
        "prompt_tokens": measures.prompt_tokens,
        "completion_tokens": measures.completion_tokens,
        "total_tokens": measures.total_tokens,
        "estimated_cost": measures.estimated_cost,
        "duration_ms": DurationStats(
            count=duration.count,
            min=duration.minimum,
            max=duration.maximum,
            avg=duration.mean,
            p50=duration.percentiles[50],
            p95=duration.percentiles[95],
        ),
    }


@strawberry.type(description="The measures of one step of the flow over the selected rows.")
class StepStats(StepResultMeasures):
    step_id: str = strawberry.field(description="The step of the flow.")
    step_name: str = strawberry.field(
        description=(
            "The step's name on its latest selected step result (by `createdAt`, then id): "
            "a renamed step shows its current name."
        )
    )
    order: int = strawberry.field(
        description="The step's position in the flow, on its latest selected step result."
    )


@strawberry.type(
    description=(
        "Counts, sums and duration percentiles over the step results of one flow that the "
        "filters select, as a whole and step by step."
    )
)
class StepResultStats(StepResultMeasures):
    selection: strawberry.Private[StepResultFilter]

    @strawberry.field(
        description=(
            "The same measures for each step with selected step results, ordered by the "
            "step's `order`, then `stepId`."
        )
    )
    async def by_step(self, info: strawberry.Info[Context, None]) -> list[StepStats]:
        context = info.context
        async with reading(context.engine) as connection:
            steps = await stats.fetch_step_stats(
                connection, self.selection, organization_id=context.organization_id
            )
        return [
            StepStats(
                step_id=step.step_id,
                step_name=step.step_name,
                order=step.order,
                **_measured(step.measures),
            )
            for step in steps
        ]


async def load_stats(
    info: strawberry.Info[Context, None], selection: StepResultFilter
) -> StepResultStats:
    """Run the one SELECT of the whole selection's measures; NOT_FOUND for an unknown flow."""
    context = info.context
    async with reading(context.engine) as connection:
        measures = await stats.fetch_stats(
            connection, selection, organization_id=context.organization_id
        )
    return StepResultStats(selection=selection, **_measured(measures))
