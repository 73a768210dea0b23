"""GraphQL enums; their values are the contract's REST spellings."""

from __future__ import annotations

import enum

import strawberry

from stepgraph import domain


@strawberry.enum(description="Where one step of one flow run stands.")
class StepStatus(enum.Enum):
    PENDING = strawberry.enum_value("pending", description="Queued, not started yet.")
    RUNNING = strawberry.enum_value("running", description="Started and not finished.")
    COMPLETED = strawberry.enum_value("completed", description="Finished successfully.")
    FAILED = strawberry.enum_value("failed", description="Finished with an error.")
    SKIPPED = strawberry.enum_value(
        "skipped", description="Not run, by a condition or an earlier failure."
    )
    CANCELLED = strawberry.enum_value("cancelled", description="Stopped before it finished.")

    def to_domain(self) -> domain.StepStatus:
        """The same status in the contract's vocabulary."""
        return domain.StepStatus(self.value)


@strawberry.enum(description="What a page of step results is ordered by. Ties are broken by id.")
class StepResultSort(enum.Enum):
    CREATED_AT = strawberry.enum_value(
        "createdAt", description="When the step result was recorded (default)."
    )
    STARTED_AT = strawberry.enum_value(
        "startedAt", description="When the step started; not started sorts last."
    )
    COMPLETED_AT = strawberry.enum_value(
        "completedAt", description="When the step finished; unfinished sorts last."
    )
    DURATION_MS = strawberry.enum_value(
        "durationMs", description="How long the step ran; unknown sorts last."
    )
    ORDER = strawberry.enum_value("order", description="Position of the step in its flow.")
    TOTAL_TOKENS = strawberry.enum_value(
        "totalTokens", description="Tokens used; steps without tokens sort last."
    )
    ESTIMATED_COST = strawberry.enum_value(
        "estimatedCost", description="Estimated cost; steps without cost sort last."
    )

    def to_domain(self) -> domain.SortField:
        """The same sort key in the contract's vocabulary."""
        return domain.SortField(self.value)


@strawberry.enum(description="Sort direction. NULLs come last in both directions.")
class SortOrder(enum.Enum):
    ASC = strawberry.enum_value("asc", description="Smallest or earliest first.")
    DESC = strawberry.enum_value("desc", description="Largest or latest first (default).")

    def to_domain(self) -> domain.SortOrder:
        """The same direction in the contract's vocabulary."""
        return domain.SortOrder(self.value)
