"""The query plan of every read the API makes, for every filter and sort of the contract.

For each store, over the largest flow of its dataset, the product's store functions
run with each filter alone and none (recordId, batchId, status with a rare and with the
most common value, stepId, from/to),
crossed with the 7 sort fields and 2 orders:

* ``reads.fetch_page`` (the offset page of ``stepResults`` and REST), first page;
* ``keyset.fetch_cursor_page`` (``stepResultsConnection``) after the 25th row, so the
  seek predicate and the EXISTS look-back are there;

and once per filter ``reads.count_matching`` (``totalCount``), ``stats.fetch_stats``
and ``stats.fetch_step_stats`` (``stepResultStats``). Every SELECT they send is
captured as sent, with its parameters, and explained:

* SQLite: ``EXPLAIN QUERY PLAN``;
* PostgreSQL: ``EXPLAIN (ANALYZE, BUFFERS)`` for the file, and the JSON plan for the
  check, both as planned for these parameters (a custom plan); and the generic plan
  (``plan_cache_mode = force_generic_plan``), which the server may switch to once a
  prepared statement has run five times, as asyncpg's cached statements do.

The check fails when any plan reads rows or index entries of other flows: on SQLite a
``SCAN step_results`` or a ``SEARCH step_results`` not keyed on ``flow_id=?``; on
PostgreSQL a ``Seq Scan`` on step_results, or an index scan of it whose index
condition does not bind ``flow_id``. Sorting the selected rows is reported as a note:
it does not touch other flows, but it reads all of the selection.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bench.scale.common import HERE, say
from bench.scale.datasets import Dataset
from stepgraph.domain import SortField, SortOrder, StepStatus
from stepgraph.query import (
    StepResultCursorQuery,
    StepResultFilter,
    StepResultQuery,
    filter_fields,
)
from stepgraph.store import keyset, reads, stats

PAGE = 25


@dataclass(frozen=True, slots=True)
class Sent:
    """One statement as the store function sent it."""

    sql: str
    parameters: Any


@dataclass(slots=True)
class Explained:
    """The plans of one store, and what the check found."""

    kind: str
    sections: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    shapes: dict[str, str] = field(default_factory=dict)
    statements: int = 0


@contextmanager
def _capturing(engine: AsyncEngine) -> Iterator[list[Sent]]:
    sent: list[Sent] = []

    def record(
        conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool
    ) -> None:
        sent.append(Sent(statement, parameters))

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)


async def _filters(connection: AsyncConnection, flow_id: str) -> dict[str, StepResultFilter]:
    """One filter of each kind, with values taken from the middle of the flow."""
    middle = await reads.count_matching(connection, StepResultFilter(flow_id=flow_id)) // 2
    page = await reads.fetch_page(
        connection, StepResultQuery(flow_id=flow_id, limit=100, offset=middle)
    )
    row = next(r for r in page.rows if r["batch_execution_id"] and r["record_id"])
    created: datetime = row["created_at"]
    base = StepResultFilter(flow_id=flow_id)
    return {
        "none": base,
        "recordId": replace(base, record_id=row["record_id"]),
        "batchId": replace(base, batch_id=row["batch_execution_id"]),
        # A plan depends on how many rows a value selects: status is explained with a rare
        # value and with the one most rows have.
        "status=failed": replace(base, status=StepStatus.FAILED),
        "status=completed": replace(base, status=StepStatus.COMPLETED),
        "stepId": replace(base, step_id=row["step_id"]),
        "from/to": replace(
            base,
            created_from=created - timedelta(hours=12),
            created_to=created + timedelta(hours=12),
        ),
    }


def _page_query(selection: StepResultFilter, sort: SortField, order: SortOrder) -> StepResultQuery:
    return StepResultQuery(
        **filter_fields(selection),
        sort_by=sort,
        sort_order=order,
        limit=PAGE,
    )


Call = Callable[[], Awaitable[Any]]

# The statements printed in full at the top of each file: one of each shape the store
# functions send (a non-null and a nullable sort, both directions of the latter).
_SHOWN = {
    "page filter=none sortBy=createdAt desc",
    "page filter=none sortBy=totalTokens asc",
    "page filter=none sortBy=totalTokens desc",
    "cursor filter=none sortBy=createdAt desc",
    "cursor filter=none sortBy=totalTokens asc",
    "cursor filter=none sortBy=totalTokens desc",
    "count filter=none",
    "stats filter=none",
    "stats-by-step filter=none",
}


class _Explainer:
    """Runs store calls on one connection and explains every SELECT each one sends."""

    def __init__(self, engine: AsyncEngine, connection: AsyncConnection, kind: str) -> None:
        self.engine = engine
        self.connection = connection
        self.explained = Explained(kind)

    async def run(self, label: str, call: Call) -> Any:
        """Call, then explain what it sent; returns what the call returned."""
        with _capturing(self.engine) as sent:
            answer = await call()
        selects = [s for s in sent if s.sql.lstrip().upper().startswith(("SELECT", "WITH"))]
        for index, statement in enumerate(selects, start=1):
            self.explained.statements += 1
            name = f"{label} [{index}/{len(selects)}]"
            if label in _SHOWN:
                self.explained.shapes[name] = _shape(statement.sql)
            if self.explained.kind == "sqlite":
                await _explain_sqlite(self.connection, name, statement, self.explained)
            else:
                await _explain_postgres(
                    self.connection, name, statement, self.explained, self.explained.statements
                )
        return answer

    async def combinations(
        self, filters: Mapping[str, StepResultFilter], organization_id: str
    ) -> None:
        """Every filter crossed with every sort and order; then count and stats per filter."""
        c = self.connection
        for name, selection in filters.items():
            for sort in SortField:
                for order in SortOrder:
                    label = f"filter={name} sortBy={sort.value} {order.value}"
                    query = _page_query(selection, sort, order)
                    page = await self.run(
                        f"page {label}",
                        partial(reads.fetch_page, c, query, organization_id=organization_id),
                    )
                    # The cursor of the page's last row, as a client paging on holds it.
                    after = keyset.position_of(page.rows[-1], sort) if page.rows else None
                    cursor_query = StepResultCursorQuery(
                        filter=selection, sort_by=sort, sort_order=order, size=PAGE, after=after
                    )
                    await self.run(
                        f"cursor {label}",
                        partial(
                            keyset.fetch_cursor_page,
                            c,
                            cursor_query,
                            organization_id=organization_id,
                        ),
                    )
            label = f"filter={name}"
            await self.run(
                f"count {label}",
                partial(reads.count_matching, c, selection, organization_id=organization_id),
            )
            await self.run(
                f"stats {label}",
                partial(stats.fetch_stats, c, selection, organization_id=organization_id),
            )
            await self.run(
                f"stats-by-step {label}",
                partial(stats.fetch_step_stats, c, selection, organization_id=organization_id),
            )


# SQLite --------------------------------------------------------------------------------

_SQLITE_SCAN = re.compile(r"^SCAN step_results\b")
_SQLITE_SEARCH = re.compile(r"^SEARCH step_results\b")


async def _explain_sqlite(
    connection: AsyncConnection, label: str, sent: Sent, explained: Explained
) -> None:
    result = await connection.exec_driver_sql("EXPLAIN QUERY PLAN " + sent.sql, sent.parameters)
    rows = [(int(r[0]), int(r[1]), str(r[-1])) for r in map(tuple, result.all())]
    depth: dict[int, int] = {0: -1}
    lines: list[str] = []
    previous = ""
    for node, parent, detail in rows:
        depth[node] = depth.get(parent, -1) + 1
        lines.append("  " * depth[node] + detail)
        if _SQLITE_SCAN.match(detail) or (
            _SQLITE_SEARCH.match(detail) and "(flow_id=?" not in detail
        ):
            explained.problems.append(f"sqlite {label}: {detail}")
        # A sort right after reading step_results sorts the whole selection; one after a
        # co-routine sorts a branch that is already limited to one page.
        if "TEMP B-TREE FOR" in detail and _SQLITE_SEARCH.match(previous):
            explained.notes.append(f"sqlite {label}: {previous}; {detail}")
        previous = detail
    explained.sections.append(f"-- {label}\n" + "\n".join(lines))


# PostgreSQL ----------------------------------------------------------------------------

_SCANS = {"Seq Scan", "Index Scan", "Index Only Scan", "Bitmap Index Scan", "Bitmap Heap Scan"}
_SORTS = {"Sort", "Incremental Sort"}
_ID_LOOKUP = re.compile(r"^\(\(?id\)?(::text)? = ")


def _walk(plan: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    yield plan
    for child in plan.get("Plans", ()):
        yield from _walk(child)


def _on_step_results(node: Mapping[str, Any]) -> bool:
    return node.get("Relation Name") == "step_results" or str(
        node.get("Index Name", "")
    ).startswith(("ix_step_results", "pk_step_results"))


def _sorts_selection(node: Mapping[str, Any]) -> bool:
    """Whether a sort's input reaches a scan of step_results without a LIMIT in between."""
    for child in node.get("Plans", ()):
        if child["Node Type"] == "Limit":
            continue
        if (child["Node Type"] in _SCANS and _on_step_results(child)) or _sorts_selection(child):
            return True
    return False


def _postgres_findings(plan: Mapping[str, Any]) -> tuple[list[str], list[str], list[str]]:
    """(problems, notes, scan summaries) of one JSON plan."""
    problems: list[str] = []
    notes: list[str] = []
    scans: list[str] = []
    for node in _walk(plan):
        kind = node["Node Type"]
        if kind in _SORTS and _sorts_selection(node):
            notes.append(f"{kind} of the selection by {', '.join(node.get('Sort Key', []))}")
        if kind not in _SCANS or not _on_step_results(node):
            continue
        condition = str(node.get("Index Cond", ""))
        where = f"{kind} using {node['Index Name']}" if "Index Name" in node else kind
        scans.append(f"{where} ({condition})" if condition else where)
        if kind == "Seq Scan":
            problems.append("Seq Scan on step_results")
        elif kind != "Bitmap Heap Scan" and "flow_id" not in condition:
            if node.get("Index Name") == "pk_step_results" and _ID_LOOKUP.match(condition):
                # One row per id, the ids coming from a read of the flow's index (the
                # rows of a page, the latest row of a step): a lookup, not a scan.
                continue
            problems.append(f"{where} without flow_id in its index condition")
    return problems, notes, scans


def _literal(value: Any) -> str:
    """A parameter as an SQL literal, for EXECUTE of a prepared statement."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float | Decimal):
        return str(value)
    if isinstance(value, datetime):
        return f"'{value.isoformat()}'"
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    raise TypeError(f"no literal for {type(value).__name__}")


async def _explain_postgres(
    connection: AsyncConnection, label: str, sent: Sent, explained: Explained, number: int
) -> None:
    text_plan = await connection.exec_driver_sql(
        "EXPLAIN (ANALYZE, BUFFERS) " + sent.sql, sent.parameters
    )
    lines = [str(r[0]) for r in text_plan.all()]
    custom = await connection.exec_driver_sql("EXPLAIN (FORMAT JSON) " + sent.sql, sent.parameters)
    problems, notes, _ = _postgres_findings(_json_plan(custom.scalar_one()))
    # The generic plan: what a prepared statement may switch to after five runs.
    name = f"stepgraph_bench_{number}"
    await connection.exec_driver_sql("SET plan_cache_mode = force_generic_plan")
    await connection.exec_driver_sql(f"PREPARE {name} AS {sent.sql}")
    try:
        arguments = ", ".join(_literal(v) for v in sent.parameters)
        generic = await connection.exec_driver_sql(
            f"EXPLAIN (FORMAT JSON) EXECUTE {name}({arguments})"
            if arguments
            else f"EXPLAIN (FORMAT JSON) EXECUTE {name}"
        )
        generic_problems, _, generic_scans = _postgres_findings(_json_plan(generic.scalar_one()))
    finally:
        await connection.exec_driver_sql(f"DEALLOCATE {name}")
        await connection.exec_driver_sql("RESET plan_cache_mode")
    explained.problems += [f"postgres {label}: {p}" for p in problems]
    explained.problems += [f"postgres {label} (generic plan): {p}" for p in generic_problems]
    explained.notes += [f"postgres {label}: {n}" for n in notes]
    explained.sections.append(
        f"-- {label}\n"
        + "\n".join(lines)
        + "\n   generic plan scans: "
        + ("; ".join(generic_scans) or "(none)")
    )


def _json_plan(value: Any) -> Mapping[str, Any]:
    data = json.loads(value) if isinstance(value, str) else value
    plan: Mapping[str, Any] = data[0]["Plan"]
    return plan


# Both ----------------------------------------------------------------------------------


def _shape(sql: str) -> str:
    """A statement with its select list folded, to show each distinct SQL once."""
    return re.sub(r"SELECT (?:step_results\.\w+(?:, )?)+\s*\n?FROM", "SELECT <columns> FROM", sql)


async def explain_store(engine: AsyncEngine, dataset: Dataset) -> Explained:
    """Explain every combination on one store."""
    kind = dataset.store.kind
    flow_id = dataset.manifest.largest_flow
    async with engine.connect() as connection:
        owner = await reads.fetch_flows(connection, [flow_id])
        organization_id = str(owner[flow_id]["organization_id"])
        filters = await _filters(connection, flow_id)
        explainer = _Explainer(engine, connection, kind)
        await explainer.combinations(filters, organization_id)
        await connection.rollback()
    explained = explainer.explained
    say(
        f"explain: {kind}: {explained.statements} statements, {len(explained.problems)} "
        f"problem(s), {len(explained.notes)} note(s)"
    )
    return explained


def _write(explained: Explained, dataset: Dataset, path: Path) -> None:
    manifest = dataset.manifest
    header = [
        f"# Query plans on {explained.kind}: {manifest.rows:,} rows (seed {manifest.seed}),",
        f"# largest flow {manifest.largest_flow} ({manifest.flows[manifest.largest_flow]:,} rows),",
        f"# schema revision {manifest.schema_revision}. Generated by `python -m bench.scale`.",
        f"# {explained.statements} statements; "
        f"{len(explained.problems)} plans read other flows' rows.",
        "",
        "# Problems (plans that read other flows' rows):",
        *(f"#   {p}" for p in explained.problems or ["(none)"]),
        "",
        "# Notes (all selected rows are sorted, rather than read in index order up to the page):",
        *(f"#   {n}" for n in explained.notes or ["(none)"]),
        "",
        "# The statements, as sent (select lists folded):",
        *(f"## {name}\n{sql}\n" for name, sql in explained.shapes.items()),
        "",
    ]
    path.write_text("\n".join(header) + "\n" + "\n\n".join(explained.sections) + "\n")


async def explain_all(datasets: Mapping[str, Dataset]) -> list[str]:
    """Explain every store's combinations, write ``explain-<store>.txt``; the problems."""
    problems: list[str] = []
    for kind, dataset in datasets.items():
        engine = dataset.store.engine()
        try:
            explained = await explain_store(engine, dataset)
        finally:
            await engine.dispose()
        _write(explained, dataset, HERE / f"explain-{kind}.txt")
        problems += explained.problems
    return problems
