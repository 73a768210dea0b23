"""Cursor pages: the rows next to a position in the sorted list, found by seeking, not OFFSET.

The contract's list is: rows with a sort value, ordered by (value, id), then rows
whose value is NULL, ordered by id; both in the sort's direction. Row-value
comparisons such as ``(value, id) > (:value, :id)`` are NULL for NULL values, so
one predicate cannot cross the boundary, and an OR across it would stop the
store from seeking. The list is therefore read as two stretches, each one
contiguous range of the ``(flow_id, <sort column>, id)`` index read in index
order: the stretch of values and the stretch of NULLs. A window (between two
cursors) cuts each stretch by at most one comparison per side. When a page spans
both stretches, each is limited on its own and a UNION ALL joins them.
"""

from __future__ import annotations

import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Column,
    ColumnElement,
    Select,
    UnaryExpression,
    false,
    or_,
    select,
    tuple_,
    union_all,
)
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from stepgraph.cursors import Position
from stepgraph.domain import SortField, SortOrder
from stepgraph.errors import NotFound
from stepgraph.query import StepResultCursorQuery
from stepgraph.store.reads import SORT_COLUMNS, _execute, filter_conditions, flow_exists
from stepgraph.store.tables import step_results


@dataclass(frozen=True, slots=True)
class CursorPage:
    """Rows of one cursor page, in the list's order, and whether rows lie on either side."""

    rows: Sequence[RowMapping]
    has_next_page: bool
    has_previous_page: bool


# Conditions selecting part of the list that one index range serves in order.
_Stretch = list[ColumnElement[bool]]


def position_of(row: Mapping[Any, Any], sort_by: SortField) -> Position:
    """Where a store row sits in a list sorted by ``sort_by``."""
    return Position(key=row[SORT_COLUMNS[sort_by].name], id=row["id"])


async def fetch_cursor_page(
    connection: AsyncConnection,
    query: StepResultCursorQuery,
    *,
    organization_id: str | None = None,
) -> CursorPage:
    """One cursor page of step results for ``query``.

    ``size + 1`` rows are read in the paging direction, so the extra row answers
    whether more lie that way. The other side of the page can only hold rows when
    a cursor bounds the window there; then one more SELECT answers it. Raises
    :class:`NotFound` when the flow does not exist for this organization.
    """
    rows = (await _execute(connection, cursor_page_statement(query, organization_id))).mappings()
    fetched = rows.all()
    if not fetched and not await flow_exists(
        connection, query.flow_id, organization_id=organization_id
    ):
        raise NotFound("flow", query.flow_id)
    more = len(fetched) > query.size
    page = list(fetched[: query.size])
    if query.backward:
        page.reverse()
    beyond = await _rows_beyond(
        connection,
        query,
        organization_id,
        earlier=query.after is not None and not (query.backward and more),
        later=query.before is not None and not (not query.backward and more),
    )
    return CursorPage(
        rows=page,
        has_next_page=(more and not query.backward) or beyond.get("later", False),
        has_previous_page=(more and query.backward) or beyond.get("earlier", False),
    )


def cursor_page_statement(
    query: StepResultCursorQuery, organization_id: str | None = None
) -> Select[Any]:
    """The SELECT of one cursor page: ``size + 1`` rows of the window, in paging direction."""
    column = SORT_COLUMNS[query.sort_by]
    ascending = query.sort_order is SortOrder.ASC
    stretches = _stretches(column, ascending, after=query.after, before=query.before)
    # Paging backward reads the list from its end: NULLs first, everything reversed.
    if query.backward:
        stretches.reverse()
    walk_ascending = ascending != query.backward
    conditions = filter_conditions(query.filter, organization_id)
    selects = [
        select(step_results)
        .where(*conditions, *stretch)
        .order_by(*_walk(column, walk_ascending))
        .limit(query.fetch_size)
        for stretch in stretches
    ]
    if not selects:
        return select(step_results).where(false())
    if len(selects) == 1:
        return selects[0]
    # Each branch is limited on its own, so each stays one short index range scan;
    # the outer sort then sees at most 2 * fetch_size rows.
    both = union_all(*(select(branch.subquery()) for branch in selects)).subquery()
    key = both.c[column.name].asc() if walk_ascending else both.c[column.name].desc()
    key = key.nulls_first() if query.backward else key.nulls_last()
    tie = both.c.id.asc() if walk_ascending else both.c.id.desc()
    return select(both).order_by(key, tie).limit(query.fetch_size)


async def _rows_beyond(
    connection: AsyncConnection,
    query: StepResultCursorQuery,
    organization_id: str | None,
    *,
    earlier: bool,
    later: bool,
) -> dict[str, bool]:
    """Whether rows exist at or before ``after`` (earlier) and at or after ``before`` (later).

    The cursor's own row counts: it is outside the window, so it precedes or follows the page.
    """
    column = SORT_COLUMNS[query.sort_by]
    ascending = query.sort_order is SortOrder.ASC
    conditions = filter_conditions(query.filter, organization_id)
    checks: dict[str, ColumnElement[bool]] = {}
    if earlier:
        stretches = _stretches(column, ascending, before=query.after, inclusive=True)
        checks["earlier"] = _any_row(conditions, column, stretches)
    if later:
        stretches = _stretches(column, ascending, after=query.before, inclusive=True)
        checks["later"] = _any_row(conditions, column, stretches)
    if not checks:
        return {}
    statement = select(*(check.label(name) for name, check in checks.items()))
    found = (await _execute(connection, statement)).mappings().one()
    # SQLite answers a comparison with 0 or 1.
    return {name: bool(found[name]) for name in checks}


def _any_row(
    conditions: list[ColumnElement[bool]], column: Column[Any], stretches: list[_Stretch]
) -> ColumnElement[bool]:
    if not stretches:
        return false()
    # The first row in index order rather than EXISTS: PostgreSQL drops ORDER BY and LIMIT
    # inside EXISTS and may then choose a sequential scan, betting that matching rows are
    # spread evenly through the table; this way it reads the page's own index range.
    return or_(
        *(
            select(step_results.c.id)
            .where(*conditions, *stretch)
            .order_by(*_walk(column, ascending=True))
            .limit(1)
            .scalar_subquery()
            .is_not(None)
            for stretch in stretches
        )
    )


def _stretches(
    column: Column[Any],
    ascending: bool,
    *,
    after: Position | None = None,
    before: Position | None = None,
    inclusive: bool = False,
) -> list[_Stretch]:
    """The stretches of the list between ``after`` and ``before``, in the list's order.

    A stretch the bounds leave empty is left out. ``inclusive`` keeps the bounds' own rows.
    """
    c = step_results.c
    key = tuple_(column, c.id)
    stretches: list[_Stretch] = []

    # Values. A bound on a NULL sits after every value: as `after` it leaves no value,
    # as `before` it leaves them all.
    if after is None or after.key is not None:
        values: _Stretch = [column.is_not(None)] if column.nullable else []
        if after is not None:
            values.append(_beyond(key, (after.key, after.id), ascending, inclusive, later=True))
        if before is not None and before.key is not None:
            values.append(_beyond(key, (before.key, before.id), ascending, inclusive, later=False))
        stretches.append(values)

    # NULLs, after every value. A bound on a value sits before every NULL: as `after` it
    # leaves them all, as `before` it leaves none.
    if column.nullable and (before is None or before.key is None):
        nulls: _Stretch = [column.is_(None)]
        if after is not None and after.key is None:
            nulls.append(_beyond(c.id, after.id, ascending, inclusive, later=True))
        if before is not None:
            nulls.append(_beyond(c.id, before.id, ascending, inclusive, later=False))
        stretches.append(nulls)
    return stretches


def _beyond(
    left: Any, right: Any, ascending: bool, inclusive: bool, *, later: bool
) -> ColumnElement[bool]:
    """``left`` comes after (``later``) or before ``right`` in the list's direction."""
    if later == ascending:
        compare = operator.ge if inclusive else operator.gt
    else:
        compare = operator.le if inclusive else operator.lt
    result: ColumnElement[bool] = compare(left, right)
    return result


def _walk(column: Column[Any], ascending: bool) -> list[UnaryExpression[Any]]:
    # Within a stretch the sort column is all NULL or never NULL, so ordering by it and
    # leaving NULLS FIRST/LAST to the store's default changes no result, while matching
    # the index exactly: PostgreSQL then reads it in either direction and never sorts
    # (it does not infer id order from `IS NULL`).
    if ascending:
        return [column.asc(), step_results.c.id.asc()]
    return [column.desc(), step_results.c.id.desc()]
