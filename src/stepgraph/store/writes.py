"""Writing step results: idempotent upserts by id, creating unknown flows.

Each store takes its fastest path, and both count exactly what they did:

* PostgreSQL: the rows are streamed with ``COPY`` (binary) into a temporary staging
  table, then merged by one ``INSERT ... SELECT ... ON CONFLICT (id) DO UPDATE ...
  WHERE <row differs>``. ``RETURNING (xmax = 0)`` tells a fresh row from an updated
  one; rows left alone are not returned at all.
* SQLite: the stored rows with the incoming ids are read back raw and compared
  with the incoming rows as they would be stored; new and changed rows are then
  written by one prepared ``INSERT ... ON CONFLICT(id) DO UPDATE ... WHERE <row
  differs>``. SQLite has a single writer, so what the read found is what the write
  meets, and the counts are exact.

Either way an identical row is never rewritten, so importing a file again writes
nothing, and everything happens in the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Boolean,
    ColumnElement,
    Table,
    Text,
    bindparam,
    cast,
    column,
    false,
    func,
    insert,
    literal_column,
    or_,
    select,
    table,
    text,
    type_coerce,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.expression import TableClause
from sqlalchemy.types import JSON, String, TypeDecorator

from stepgraph.store.engine import UnstorableText
from stepgraph.store.tables import flows, step_results

# Ids per lookup of existing flows or step results: well under every store's bind limit.
_CHUNK = 500
# Rows per SQLite upsert statement; bigger batches gain nothing once the statement is prepared.
_SQLITE_BATCH = 5000

_COLUMNS = tuple(c.name for c in step_results.c)
_TEXT_COLUMNS = tuple(
    c.name
    for c in step_results.c
    if isinstance(c.type.impl_instance if isinstance(c.type, TypeDecorator) else c.type, String)
)
# The staging table is session-local and dropped with the transaction that created it.
_STAGING = "stepgraph_step_results_staging"


@dataclass(frozen=True, slots=True)
class UpsertSummary:
    """What an upsert did to each row it was given."""

    inserted: int = 0
    updated: int = 0
    unchanged: int = 0

    def __add__(self, other: UpsertSummary) -> UpsertSummary:
        return UpsertSummary(
            self.inserted + other.inserted,
            self.updated + other.updated,
            self.unchanged + other.unchanged,
        )


class FlowOwnerConflict(ValueError):
    """Rows name a flow that belongs to another organization."""

    def __init__(self, conflicts: dict[str, str]) -> None:
        super().__init__(
            "; ".join(f"flow {f!r} belongs to organization {o!r}" for f, o in conflicts.items())
        )
        self.conflicts = conflicts


async def flow_owners(connection: AsyncConnection, flow_ids: Sequence[str]) -> dict[str, str]:
    """The organization of each existing flow among ``flow_ids``."""
    owners: dict[str, str] = {}
    unique = list(dict.fromkeys(flow_ids))
    for i in range(0, len(unique), _CHUNK):
        statement = select(flows.c.id, flows.c.organization_id).where(
            flows.c.id.in_(unique[i : i + _CHUNK])
        )
        owners.update({row.id: row.organization_id for row in await connection.execute(statement)})
    return owners


async def upsert_step_results(
    connection: AsyncConnection, rows: Sequence[dict[str, Any]]
) -> UpsertSummary:
    """Insert new rows, update changed ones, leave identical ones alone.

    ``rows`` are validated store rows (see ``records.parse_step_result``), at
    most one per id, each with every column. Flows they name are created, owned
    by the rows' organization; a flow owned by another organization raises
    :class:`FlowOwnerConflict` before anything is written. Runs inside the
    caller's transaction.
    """
    if not rows:
        return UpsertSummary()
    await _ensure_flows(connection, rows)
    if connection.dialect.name == "postgresql":
        return await _upsert_by_copy(connection, rows)
    return await _upsert_by_statement(connection, rows)


async def _ensure_flows(connection: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
    wanted: dict[str, dict[str, Any]] = {}
    for row in rows:
        flow = wanted.setdefault(
            row["flow_id"],
            {
                "id": row["flow_id"],
                "organization_id": row["organization_id"],
                "created_at": row["created_at"],
            },
        )
        if row["organization_id"] != flow["organization_id"]:
            raise FlowOwnerConflict({row["flow_id"]: flow["organization_id"]})
        flow["created_at"] = min(flow["created_at"], row["created_at"])
    owners = await flow_owners(connection, list(wanted))
    conflicts = {
        flow_id: owner
        for flow_id, owner in owners.items()
        if owner != wanted[flow_id]["organization_id"]
    }
    if conflicts:
        raise FlowOwnerConflict(conflicts)
    missing = [flow for flow_id, flow in wanted.items() if flow_id not in owners]
    if missing:
        await connection.execute(insert(flows), missing)


def _differs(target: Table | TableClause, incoming: Any) -> ColumnElement[bool]:
    """True when any column of the stored row differs from the incoming one (NULL-aware).

    JSON is compared as its text: PostgreSQL's json type has no equality, and the
    text is what the store keeps and gives back.
    """
    checks: list[ColumnElement[bool]] = []
    for name in _COLUMNS:
        if name == "id":
            continue
        stored: ColumnElement[Any] = target.c[name]
        new: ColumnElement[Any] = incoming[name]
        if isinstance(step_results.c[name].type, JSON):
            stored, new = cast(stored, Text), cast(new, Text)
        checks.append(stored.is_distinct_from(new))
    return or_(false(), *checks)


# SQLite -------------------------------------------------------------------------------


def _sqlite_upsert() -> Any:
    statement = sqlite.insert(step_results)
    # flow_id is compared but not set here: with foreign keys on, an upsert that may set the
    # foreign key costs SQLite about twice as much per row, fresh rows included. The rare row
    # that moves to another flow gets its flow_id from a separate UPDATE.
    return statement.on_conflict_do_update(
        index_elements=[step_results.c.id],
        set_={name: statement.excluded[name] for name in _COLUMNS if name not in ("id", "flow_id")},
        where=_differs(step_results, statement.excluded),
    )


_SQLITE_UPSERT = _sqlite_upsert()
_MOVE_TO_FLOW = (
    update(step_results)
    .where(step_results.c.id == bindparam("_id"))
    .values(flow_id=bindparam("_flow_id"))
)


async def _upsert_by_statement(
    connection: AsyncConnection, rows: Sequence[dict[str, Any]]
) -> UpsertSummary:
    summary = UpsertSummary()
    for i in range(0, len(rows), _SQLITE_BATCH):
        summary += await _upsert_sqlite_batch(connection, rows[i : i + _SQLITE_BATCH])
    return summary


async def _upsert_sqlite_batch(
    connection: AsyncConnection, rows: Sequence[dict[str, Any]]
) -> UpsertSummary:
    # The stored rows are read as the store keeps them and compared with the rows as they
    # would be written (the same text, integers and JSON text the upsert compares): that
    # costs less than letting the upsert find an identical row, so a re-import is cheap.
    stored = await _stored_values(connection, [row["id"] for row in rows])
    convert = _converter(connection.dialect)
    new: list[dict[str, Any]] = []
    changed: list[dict[str, Any]] = []
    moved: list[dict[str, Any]] = []
    for row in rows:
        before = stored.get(row["id"])
        if before is None:
            new.append(row)
            continue
        values = convert(row)
        if before != values:
            changed.append(row)
            if before[_FLOW_POSITION] != values[_FLOW_POSITION]:
                moved.append({"_id": row["id"], "_flow_id": row["flow_id"]})
    if new or changed:
        await connection.execute(_SQLITE_UPSERT, [*new, *changed])
    if moved:
        await connection.execute(_MOVE_TO_FLOW, moved)
    return UpsertSummary(len(new), len(changed), len(rows) - len(new) - len(changed))


# Every column read back untouched: SQLite's text, integers and JSON text.
_RAW_COLUMNS = [type_coerce(c, String()).label(c.name) for c in step_results.c]
_FLOW_POSITION = _COLUMNS.index("flow_id")


async def _stored_values(
    connection: AsyncConnection, ids: Sequence[str]
) -> dict[str, tuple[Any, ...]]:
    """The stored row of each id among ``ids`` that exists, as the store keeps it."""
    found: dict[str, tuple[Any, ...]] = {}
    for i in range(0, len(ids), _CHUNK):
        statement = select(*_RAW_COLUMNS).where(step_results.c.id.in_(ids[i : i + _CHUNK]))
        found.update({row[0]: tuple(row) for row in await connection.execute(statement)})
    return found


# PostgreSQL ---------------------------------------------------------------------------


_staging = table(_STAGING, *(column(c.name, c.type) for c in step_results.c))


def _merge_statement() -> Any:
    """INSERT ... SELECT from staging, updating differing rows; counts fresh and updated rows."""
    statement = postgresql.insert(step_results).from_select(
        list(_COLUMNS), select(*(_staging.c[name] for name in _COLUMNS))
    )
    statement = statement.on_conflict_do_update(
        index_elements=[step_results.c.id],
        set_={name: statement.excluded[name] for name in _COLUMNS if name != "id"},
        where=_differs(step_results, statement.excluded),
    )
    # A row this statement inserted has no xmax yet; an updated row carries the lock of
    # this transaction in it. Rows left alone are not returned.
    merged = statement.returning(literal_column("xmax = 0", Boolean).label("fresh")).cte("merged")
    fresh = merged.c.fresh
    return select(
        func.count().filter(fresh).label("inserted"),
        func.count().filter(~fresh).label("updated"),
    )


_MERGE = _merge_statement()


async def _upsert_by_copy(
    connection: AsyncConnection, rows: Sequence[dict[str, Any]]
) -> UpsertSummary:
    records = _records(rows, connection.dialect)
    # Created through SQLAlchemy first: that also opens the caller's transaction on the
    # driver connection, so the COPY below belongs to it.
    await connection.execute(
        text(
            f"CREATE TEMPORARY TABLE IF NOT EXISTS {_STAGING} "
            "(LIKE step_results INCLUDING DEFAULTS) ON COMMIT DROP"
        )
    )
    await connection.execute(text(f"TRUNCATE {_STAGING}"))
    raw = await connection.get_raw_connection()
    driver: Any = raw.driver_connection
    await driver.copy_records_to_table(_STAGING, records=records, columns=list(_COLUMNS))
    counts = (await connection.execute(_MERGE)).one()
    inserted, updated = int(counts.inserted), int(counts.updated)
    return UpsertSummary(inserted, updated, len(rows) - inserted - updated)


def _records(rows: Sequence[dict[str, Any]], dialect: Dialect) -> list[tuple[Any, ...]]:
    """Rows as the store receives them: converted by each column type's bind processing."""
    convert = _converter(dialect)
    return [convert(row) for row in rows]


def _converter(dialect: Dialect) -> Callable[[dict[str, Any]], tuple[Any, ...]]:
    """Turns a row into the tuple of values the store receives, in ``_COLUMNS`` order.

    COPY bypasses the statement hooks, so the refusal of NUL characters in text that
    every statement gets is applied here.
    """
    processors: list[Callable[[Any], Any] | None] = [
        step_results.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in _COLUMNS
    ]
    text_positions = [_COLUMNS.index(name) for name in _TEXT_COLUMNS]

    def convert(row: dict[str, Any]) -> tuple[Any, ...]:
        values = [row[name] for name in _COLUMNS]
        for position in text_positions:
            value = values[position]
            if value is not None and "\x00" in value:
                raise UnstorableText
        return tuple(
            value if process is None or value is None else process(value)
            for value, process in zip(values, processors, strict=True)
        )

    return convert
