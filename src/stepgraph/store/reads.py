"""Every read of step results and flows: one query object in, one SELECT out."""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Column,
    ColumnElement,
    Integer,
    Select,
    bindparam,
    func,
    literal,
    select,
    union_all,
)
from sqlalchemy.engine import Result, RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import Executable

from stepgraph.domain import SortField, SortOrder, StepStatus
from stepgraph.errors import NotFound
from stepgraph.query import StepResultFilter, StepResultQuery
from stepgraph.store import json_rows
from stepgraph.store.direct import DirectRead
from stepgraph.store.engine import timeouts_reported
from stepgraph.store.tables import flows, step_results

SORT_COLUMNS = {
    SortField.CREATED_AT: step_results.c.created_at,
    SortField.STARTED_AT: step_results.c.started_at,
    SortField.COMPLETED_AT: step_results.c.completed_at,
    SortField.DURATION_MS: step_results.c.duration_ms,
    SortField.ORDER: step_results.c.step_order,
    SortField.TOTAL_TOKENS: step_results.c.total_tokens,
    SortField.ESTIMATED_COST: step_results.c.estimated_cost,
}

# Larger offsets overflow a 64-bit bind on some stores; no table has this many rows,
# so the page past the end is the same empty page.
_MAX_OFFSET = 2**62


@dataclass(frozen=True, slots=True)
class Page:
    """Rows of one page and whether any row follows it."""

    rows: Sequence[RowMapping]
    has_more: bool


async def _execute(connection: AsyncConnection, statement: Executable) -> Result[Any]:
    """Run a read; a statement cancelled for overrunning its timeout is StatementTimeout."""
    with timeouts_reported():
        return await connection.execute(statement)


def _scoped(statement: Select[Any], organization_id: str | None) -> Select[Any]:
    if organization_id is None:
        return statement
    return statement.where(step_results.c.organization_id == organization_id)


# The contract's filters besides the flow: the query's attribute, the column it
# constrains and how. Each value is bound under the attribute's name.
_FILTERS: tuple[tuple[str, Column[Any], Callable[[Any, Any], ColumnElement[bool]]], ...] = (
    ("record_id", step_results.c.record_id, operator.eq),
    ("batch_id", step_results.c.batch_execution_id, operator.eq),
    ("status", step_results.c.status, operator.eq),
    ("step_id", step_results.c.step_id, operator.eq),
    ("created_from", step_results.c.created_at, operator.ge),
    ("created_to", step_results.c.created_at, operator.lt),
)


def filter_values(
    query: StepResultFilter | StepResultQuery, organization_id: str | None = None
) -> dict[str, Any]:
    """The values :func:`filter_conditions` binds, by bind parameter name (filters given only)."""
    values: dict[str, Any] = {"flow_id": query.flow_id}
    if organization_id is not None:
        values["organization_id"] = organization_id
    for name, _, _ in _FILTERS:
        value = getattr(query, name)
        if value is not None:
            values[name] = value.value if isinstance(value, StepStatus) else value
    return values


def filter_conditions(
    query: StepResultFilter | StepResultQuery, organization_id: str | None = None
) -> list[ColumnElement[bool]]:
    """The WHERE clause shared by every read of one flow's step results (pages and stats).

    The contract's filters, scoped to the organization (to any organization when None).
    Each value is a bind parameter named as in :func:`filter_values`, so statements of
    the same filters differ in their values only.
    """
    c = step_results.c
    values = filter_values(query, organization_id)
    flow = bindparam("flow_id", query.flow_id, type_=c.flow_id.type)
    conditions: list[ColumnElement[bool]] = [c.flow_id == flow]
    if organization_id is not None:
        # A flow belongs to one organization (writes enforce it), so the owner is checked
        # once, on `flows`, rather than on every row: counts and statistics can then be
        # answered from the (flow_id, ...) indexes without fetching each row.
        owner = bindparam("organization_id", organization_id, type_=flows.c.organization_id.type)
        owned = select(flows.c.id).where(flows.c.id == flow, flows.c.organization_id == owner)
        conditions = [c.flow_id == owned.scalar_subquery()]
    for name, column, compare in _FILTERS:
        if name in values:
            conditions.append(compare(column, bindparam(name, values[name], type_=column.type)))
    return conditions


@functools.lru_cache(maxsize=8)
def _select_of(columns: tuple[ColumnElement[Any], ...]) -> Select[Any]:
    # Building a SELECT of many columns costs more than the page's clauses; later
    # clauses copy it, so one is enough per column list.
    return select(*columns)


def page_statement(
    query: StepResultQuery,
    organization_id: str | None = None,
    *,
    columns: Sequence[ColumnElement[Any]] | None = None,
    dialect: str = "sqlite",
) -> Select[Any]:
    """The SELECT of one page: filters, sort ending with id, NULLs last, ``limit + 1`` rows.

    Every column of ``step_results`` unless ``columns`` names others. ``dialect`` is the
    store's (``connection.dialect.name``): it decides how a page sorted by a nullable
    column is read, never what it holds.
    """
    c = step_results.c
    conditions = filter_conditions(query, organization_id)
    selected = _select_of(tuple(columns)) if columns is not None else select(step_results)
    offset = min(query.offset, _MAX_OFFSET)

    column = SORT_COLUMNS[query.sort_by]
    descending = query.sort_order is SortOrder.DESC
    if _splits(query, dialect):
        return _split_page(selected, conditions, column, query.fetch_size, offset)
    key = column.desc() if descending else column.asc()
    if column.nullable:
        key = key.nulls_last()
    tie = c.id.desc() if descending else c.id.asc()
    return (
        selected.where(*conditions)
        .order_by(key, tie)
        .limit(bindparam("fetch_size", query.fetch_size, type_=Integer))
        .offset(bindparam("page_offset", offset, type_=Integer))
    )


def _splits(query: StepResultQuery, dialect: str) -> bool:
    """Whether the page is read as values then NULLs (:func:`_split_page`)."""
    return (
        dialect == "postgresql"
        and query.sort_order is SortOrder.DESC
        and bool(SORT_COLUMNS[query.sort_by].nullable)
    )


def _split_page(
    selected: Select[Any],
    conditions: list[ColumnElement[bool]],
    column: Column[Any],
    fetch_size: int,
    offset: int,
) -> Select[Any]:
    """A page sorted by a nullable ``column`` descending, NULLs last, on PostgreSQL.

    PostgreSQL's indexes keep NULLs after every value, so reading ``(flow_id, column,
    id)`` backwards yields the NULLs first: ``DESC NULLS LAST`` matches no index order,
    and the store would sort every row of the flow to find one page. The same list is
    the values in index order followed by the NULLs in index order (as
    ``store.keyset`` reads cursor pages): each stretch is one index range read up to
    ``offset + fetch_size`` ids, the union of the two is cut to the page, and only the
    page's rows are fetched whole.
    """
    c = step_results.c
    depth = min(offset + fetch_size, _MAX_OFFSET)
    stretches = [
        select(c.id, column.label("sort_key"))
        .where(*conditions, stretch)
        .order_by(column.desc(), c.id.desc())
        .limit(depth)
        for stretch in (column.is_not(None), column.is_(None))
    ]
    both = union_all(*(select(branch.subquery()) for branch in stretches)).subquery()
    in_order = (both.c.sort_key.desc().nulls_last(), both.c.id.desc())
    page = select(both).order_by(*in_order).limit(fetch_size).offset(offset).subquery("page")
    return selected.join_from(step_results, page, page.c.id == c.id).order_by(
        page.c.sort_key.desc().nulls_last(), page.c.id.desc()
    )


async def fetch_page(
    connection: AsyncConnection, query: StepResultQuery, *, organization_id: str | None = None
) -> Page:
    """One page of step results for ``query``.

    Raises :class:`NotFound` when the flow does not exist for this organization.
    A non-empty page proves the flow exists, so the flow is looked up only when
    the page comes back empty.
    """
    statement = page_statement(query, organization_id, dialect=connection.dialect.name)
    result = await _execute(connection, statement)
    rows = result.mappings().all()
    if not rows and not await flow_exists(
        connection, query.flow_id, organization_id=organization_id
    ):
        raise NotFound("flow", query.flow_id)
    return Page(rows=rows[: query.limit], has_more=len(rows) > query.limit)


@dataclass(frozen=True, slots=True)
class JsonPage:
    """A page whose rows are the contract's JSON objects, their fields in the contract's order."""

    rows: list[dict[str, Any]]
    has_more: bool


async def fetch_json_page(
    connection: AsyncConnection, query: StepResultQuery, *, organization_id: str | None = None
) -> JsonPage:
    """The page of :func:`fetch_page`, rendered as it is sent (see ``store.json_rows``).

    Same SELECT, same :class:`NotFound`; each value is exactly what
    ``records.step_result_json`` makes of the typed row, at a fraction of the cost. The
    SELECT is compiled once per kind of page and run as a :class:`~direct.DirectRead`.
    """
    codec = json_rows.codec_for(connection.dialect)
    dialect = connection.dialect.name
    rows: Sequence[Sequence[Any]]
    if _splits(query, dialect):
        # Its shape depends on the offset: built for each page.
        statement = page_statement(query, organization_id, columns=codec.columns, dialect=dialect)
        rows = (await _execute(connection, statement)).all()
    else:
        values = filter_values(query, organization_id)
        values["fetch_size"] = query.fetch_size
        values["page_offset"] = min(query.offset, _MAX_OFFSET)
        read = _page_read(query, values, codec.columns, dialect)
        rows = await read.all(connection, values)
    if not rows and not await flow_exists(
        connection, query.flow_id, organization_id=organization_id
    ):
        raise NotFound("flow", query.flow_id)
    return JsonPage(rows=codec.render(rows[: query.limit]), has_more=len(rows) > query.limit)


# Compiled page reads, by everything that shapes the SQL: the sort, which filters are
# given, the selected columns and the store: 14 sorts x 2^7 filter combinations per
# engine at most, and far fewer in practice. Emptied when full (many engines in one
# process, as in tests), so it stays bounded.
_PAGE_READS: dict[tuple[Any, ...], DirectRead] = {}
_PAGE_READS_MAX = 2048


def _page_read(
    query: StepResultQuery,
    values: Mapping[str, Any],
    columns: tuple[ColumnElement[Any], ...],
    dialect: str,
) -> DirectRead:
    """The compiled read of ``query``'s kind of page, whose named values are ``values``."""
    names = tuple(values)
    shape = (query.sort_by, query.sort_order, names, columns, dialect)
    read = _PAGE_READS.get(shape)
    if read is None:
        if len(_PAGE_READS) >= _PAGE_READS_MAX:
            _PAGE_READS.clear()
        organization_id = values.get("organization_id")
        statement = page_statement(query, organization_id, columns=columns, dialect=dialect)
        read = _PAGE_READS[shape] = DirectRead(statement, names)
    return read


async def count_matching(
    connection: AsyncConnection,
    selection: StepResultFilter | StepResultQuery,
    *,
    organization_id: str | None = None,
) -> int:
    """How many step results match the filters of ``selection`` (sort and window aside)."""
    statement = (
        select(func.count())
        .select_from(step_results)
        .where(*filter_conditions(selection, organization_id))
    )
    return int((await _execute(connection, statement)).scalar_one())


async def flow_exists(
    connection: AsyncConnection, flow_id: str, *, organization_id: str | None = None
) -> bool:
    """Whether the flow exists for this organization (any organization when None)."""
    statement = select(flows.c.id).where(flows.c.id == flow_id)
    if organization_id is not None:
        statement = statement.where(flows.c.organization_id == organization_id)
    return (await _execute(connection, statement)).first() is not None


async def fetch_step_results(
    connection: AsyncConnection, ids: Sequence[str], *, organization_id: str | None = None
) -> dict[str, RowMapping]:
    """Step results by id (missing ids are absent from the result)."""
    found: dict[str, RowMapping] = {}
    for chunk in _chunks(list(dict.fromkeys(ids))):
        statement = _scoped(
            select(step_results).where(step_results.c.id.in_(chunk)), organization_id
        )
        for row in (await _execute(connection, statement)).mappings():
            found[row["id"]] = row
    return found


async def fetch_flows(
    connection: AsyncConnection, ids: Sequence[str], *, organization_id: str | None = None
) -> dict[str, RowMapping]:
    """Flows by id (missing ids are absent from the result)."""
    found: dict[str, RowMapping] = {}
    for chunk in _chunks(list(dict.fromkeys(ids))):
        statement = select(flows).where(flows.c.id.in_(chunk))
        if organization_id is not None:
            statement = statement.where(flows.c.organization_id == organization_id)
        for row in (await _execute(connection, statement)).mappings():
            found[row["id"]] = row
    return found


def _chunks(items: list[str], size: int = 500) -> list[list[str]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


async def largest_flow_id(connection: AsyncConnection, *, organization_id: str) -> str | None:
    """The organization's flow with the most step results (for example queries)."""
    statement = (
        select(step_results.c.flow_id)
        .where(step_results.c.organization_id == organization_id)
        .group_by(step_results.c.flow_id)
        .order_by(func.count().desc(), step_results.c.flow_id)
        .limit(1)
    )
    return (await _execute(connection, statement)).scalar()


async def largest_flow_owner_id(connection: AsyncConnection) -> str | None:
    """The organization owning the flow with the most step results (the demo key's)."""
    statement = (
        select(step_results.c.organization_id)
        .group_by(step_results.c.flow_id, step_results.c.organization_id)
        .order_by(func.count().desc(), step_results.c.flow_id)
        .limit(1)
    )
    return (await _execute(connection, statement)).scalar()


async def count_step_results(connection: AsyncConnection) -> int:
    """How many step results the store holds (for the CLI and health, not for pages)."""
    return int(
        (await _execute(connection, select(func.count()).select_from(step_results))).scalar_one()
    )


async def ping(connection: AsyncConnection) -> None:
    """Round-trip to the store; raises when it cannot answer."""
    await _execute(connection, select(literal(1)))
