"""Aggregates over one flow's step results: counts, sums and duration percentiles.

Stats select rows with the WHERE clause of a page (:func:`reads.filter_conditions`) and
aggregate them in one SELECT per level: the whole selection, or one row per step. The
store does the work; Python only converts the one row per level it gets back.

Two things differ between the stores and are hidden here:

* Percentiles follow PostgreSQL's ``percentile_cont`` (continuous, linear interpolation
  between the two nearest ranks). PostgreSQL computes it natively; SQLite has no such
  aggregate, so the durations are ranked with window functions and the two neighbouring
  ranks are interpolated in integer arithmetic (hundredths of a millisecond, exact).
* Costs are NUMERIC on PostgreSQL and summed exactly there. On SQLite a cost is an
  integer count of 10^-COST_SCALE dollars; it is summed as whole dollars and the rest
  separately, so the two integer sums cannot overflow 64 bits, and joined in Python.

Means and percentiles are rounded to :data:`ROUNDING` decimal places, half to even. For
integer durations and whole-number percents the exact percentile has at most two decimal
places, so the rounding only removes PostgreSQL's floating-point noise and both stores
return the same float.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Any

from sqlalchemy import (
    ARRAY,
    CTE,
    BigInteger,
    ColumnElement,
    Float,
    Select,
    case,
    func,
    select,
    type_coerce,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from stepgraph.domain import StepStatus
from stepgraph.errors import NotFound
from stepgraph.query import StepResultFilter
from stepgraph.store.reads import _execute, filter_conditions, flow_exists
from stepgraph.store.tables import step_results
from stepgraph.store.types import COST_SCALE

# The duration percentiles every level reports, in percent.
PERCENTILES = (50, 95)
# Decimal places of mean and percentile durations (milliseconds).
ROUNDING = 3

_COST_UNITS_PER_DOLLAR = 10**COST_SCALE


@dataclass(frozen=True, slots=True)
class DurationSummary:
    """Durations (milliseconds) of the rows that have one; all None when none has."""

    count: int
    minimum: int | None
    maximum: int | None
    mean: float | None
    percentiles: Mapping[int, float | None]


@dataclass(frozen=True, slots=True)
class Measures:
    """Counts and sums over a set of step results; sums are None when no row has a value."""

    count: int
    by_status: Mapping[StepStatus, int]
    prompt_tokens: int | None
    completion_tokens: int | None
    total_tokens: int | None
    estimated_cost: Decimal | None
    duration: DurationSummary


@dataclass(frozen=True, slots=True)
class StepMeasures:
    """The measures of one step, named as the latest of its selected rows names it."""

    step_id: str
    step_name: str
    order: int
    measures: Measures


async def fetch_stats(
    connection: AsyncConnection, selection: StepResultFilter, *, organization_id: str | None
) -> Measures:
    """Measures of every step result ``selection`` matches, in one SELECT.

    Raises :class:`NotFound` when the flow does not exist for this organization; like a
    page, the flow is looked up only when nothing matched.
    """
    statement = stats_statement(
        selection, organization_id, dialect=connection.dialect.name, by_step=False
    )
    row = (await _execute(connection, statement)).mappings().one()
    if row["count"] == 0 and not await flow_exists(
        connection, selection.flow_id, organization_id=organization_id
    ):
        raise NotFound("flow", selection.flow_id)
    return _measures(row, connection.dialect.name)


async def fetch_step_stats(
    connection: AsyncConnection, selection: StepResultFilter, *, organization_id: str | None
) -> list[StepMeasures]:
    """Measures per step of the rows ``selection`` matches, ordered by step order then id.

    Steps without a matching row are absent. An unknown flow has no steps: check the flow
    with :func:`fetch_stats` first.
    """
    dialect = connection.dialect.name
    statement = stats_statement(selection, organization_id, dialect=dialect, by_step=True)
    rows = (await _execute(connection, statement)).mappings().all()
    return [
        StepMeasures(
            step_id=row["step_id"],
            step_name=row["step_name"],
            order=row["step_order"],
            measures=_measures(row, dialect),
        )
        for row in rows
    ]


def stats_statement(
    selection: StepResultFilter, organization_id: str | None, *, dialect: str, by_step: bool
) -> Select[Any]:
    """The SELECT of the measures: one row, or one row per step when ``by_step``.

    The rows are read from an index that holds every column a measure needs (see
    ``tables.MEASURED_COLUMNS``), not from the table: a large flow's statistics cost one pass
    over its index entries.
    """
    selected = _selected(selection, organization_id, dialect=dialect, by_step=by_step)
    measures = _measure_columns(selected, dialect)
    if not by_step:
        return select(*measures).select_from(selected)
    s = selected.c
    # The step's name and order as its latest selected row (the first row of a default
    # page of that step) has them: renames and reorders show up, ties cannot arise. That
    # row is found per step by walking the (flow_id, step_id, created_at, id) index
    # backwards, and only it is read from the table.
    latest_id = (
        select(step_results.c.id)
        .where(
            *filter_conditions(selection, organization_id),
            step_results.c.step_id == s.step_id,
        )
        .order_by(step_results.c.created_at.desc(), step_results.c.id.desc())
        .limit(1)
        .correlate(selected)
        .scalar_subquery()
    )
    grouped = (
        select(s.step_id, latest_id.label("latest_id"), *measures)
        .group_by(s.step_id)
        .subquery("grouped")
    )
    latest = step_results.alias("latest")
    return (
        select(
            grouped.c.step_id,
            latest.c.step_name,
            latest.c.step_order,
            *(grouped.c[measure.name] for measure in measures),
        )
        .join_from(grouped, latest, latest.c.id == grouped.c.latest_id)
        .order_by(latest.c.step_order, grouped.c.step_id)
    )


def _selected(
    selection: StepResultFilter, organization_id: str | None, *, dialect: str, by_step: bool
) -> CTE:
    """The matching rows with the window columns the aggregates need."""
    c = step_results.c
    partition = [c.step_id] if by_step else None
    columns: list[ColumnElement[Any]] = [
        c.step_id,
        c.status,
        c.prompt_tokens,
        c.completion_tokens,
        c.total_tokens,
        c.estimated_cost,
        c.duration_ms,
    ]
    if dialect != "postgresql":
        # Known durations get ranks 1..n in ascending order; NULLs rank after them.
        rank = func.row_number().over(
            partition_by=partition, order_by=c.duration_ms.asc().nulls_last()
        )
        known = func.count(c.duration_ms).over(partition_by=partition)
        columns += [rank.label("duration_rank"), known.label("durations_known")]
    return select(*columns).where(*filter_conditions(selection, organization_id)).cte("selected")


def _measure_columns(selected: CTE, dialect: str) -> list[ColumnElement[Any]]:
    s = selected.c
    columns: list[ColumnElement[Any]] = [func.count().label("count")]
    columns += [
        func.count().filter(s.status == status.value).label(f"status_{status.value}")
        for status in StepStatus
    ]
    columns += [
        func.sum(s.prompt_tokens).label("prompt_tokens"),
        func.sum(s.completion_tokens).label("completion_tokens"),
        func.sum(s.total_tokens).label("total_tokens"),
    ]
    if dialect == "postgresql":
        columns.append(func.sum(s.estimated_cost).label("estimated_cost"))
    else:
        units = type_coerce(s.estimated_cost, BigInteger)
        # Integer division truncates and % keeps the dividend's sign, so
        # units == dollars * UNITS + rest for negative costs too.
        columns += [
            func.sum(units // _COST_UNITS_PER_DOLLAR).label("cost_dollars"),
            func.sum(units % _COST_UNITS_PER_DOLLAR).label("cost_rest"),
        ]
    columns += [
        func.count(s.duration_ms).label("durations"),
        func.min(s.duration_ms).label("duration_min"),
        func.max(s.duration_ms).label("duration_max"),
        func.sum(s.duration_ms).label("duration_sum"),
    ]
    if dialect == "postgresql":
        # One ordered-set aggregate for every percentile: the durations are sorted once
        # per level rather than once per percentile.
        fractions = postgresql.array([percent / 100 for percent in PERCENTILES])
        percentiles = func.percentile_cont(fractions).within_group(s.duration_ms)
        columns.append(type_coerce(percentiles, ARRAY(Float)).label("percentiles"))
    else:
        columns += [_percentile(selected, percent).label(f"p{percent}") for percent in PERCENTILES]
    return columns


def _percentile(selected: CTE, percent: int) -> ColumnElement[Any]:
    """``percentile_cont(percent / 100)`` of the durations, where the store has no such aggregate.

    In hundredths of a millisecond (an exact integer). With n known durations
    v1 <= ... <= vn, the percentile sits at rank 1 + p(n - 1); in hundredths of a rank
    that is 100 + percent * (n - 1). The rank below gets weight (100 - fraction), the rank
    above weight fraction.
    """
    s = selected.c
    position = percent * (s.durations_known - 1)
    below = position // 100 + 1
    fraction = position % 100
    # NULL durations rank after every known one; were one picked (n = 0, or a zero
    # weight just past the end), its product is NULL, which SUM ignores.
    weighted = case(
        (s.duration_rank == below, s.duration_ms * (100 - fraction)),
        (s.duration_rank == below + 1, s.duration_ms * fraction),
    )
    return func.sum(weighted)


def _measures(row: RowMapping, dialect: str) -> Measures:
    durations: int = row["durations"]
    return Measures(
        count=row["count"],
        by_status={status: row[f"status_{status.value}"] for status in StepStatus},
        prompt_tokens=row["prompt_tokens"],
        completion_tokens=row["completion_tokens"],
        total_tokens=row["total_tokens"],
        estimated_cost=_cost(row, dialect),
        duration=DurationSummary(
            count=durations,
            minimum=row["duration_min"],
            maximum=row["duration_max"],
            mean=_rounded(Fraction(row["duration_sum"], durations)) if durations else None,
            percentiles=_percentiles(row, dialect),
        ),
    )


def _cost(row: RowMapping, dialect: str) -> Decimal | None:
    if dialect == "postgresql":
        cost: Decimal | None = row["estimated_cost"]
        return cost
    if row["cost_dollars"] is None:
        return None
    units = row["cost_dollars"] * _COST_UNITS_PER_DOLLAR + row["cost_rest"]
    return Decimal(units).scaleb(-COST_SCALE)


def _percentiles(row: RowMapping, dialect: str) -> dict[int, float | None]:
    if dialect == "postgresql":
        # percentile_cont over no durations is NULL, not an array of NULLs.
        values = row["percentiles"] or [None] * len(PERCENTILES)
        return {
            percent: None if value is None else _rounded(Fraction(value))
            for percent, value in zip(PERCENTILES, values, strict=True)
        }
    return {
        percent: None if row[f"p{percent}"] is None else _rounded(Fraction(row[f"p{percent}"], 100))
        for percent in PERCENTILES
    }


def _rounded(value: Fraction) -> float:
    """``value`` rounded to ROUNDING decimal places, half to even, then as the nearest float."""
    return float(round(value, ROUNDING))
