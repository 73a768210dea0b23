"""Writing step results: idempotent upserts by id, creating unknown flows."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from stepgraph.store.tables import flows, step_results

_CHUNK = 500


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
    most one per id. Flows they name are created, owned by the rows'
    organization; a flow owned by another organization raises
    :class:`FlowOwnerConflict` before anything is written. Runs inside the
    caller's transaction.
    """
    await _ensure_flows(connection, rows)
    summary = UpsertSummary()
    for i in range(0, len(rows), _CHUNK):
        summary += await _upsert_chunk(connection, rows[i : i + _CHUNK])
    return summary


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


async def _upsert_chunk(
    connection: AsyncConnection, rows: Sequence[dict[str, Any]]
) -> UpsertSummary:
    ids = [row["id"] for row in rows]
    existing = {
        row["id"]: row
        for row in (
            await connection.execute(select(step_results).where(step_results.c.id.in_(ids)))
        ).mappings()
    }
    new = [row for row in rows if row["id"] not in existing]
    changed = [
        row
        for row in rows
        if row["id"] in existing and any(existing[row["id"]][k] != v for k, v in row.items())
    ]
    if new:
        await connection.execute(insert(step_results), new)
    if changed:
        columns = [c.name for c in step_results.c if c.name != "id"]
        statement = (
            update(step_results)
            .where(step_results.c.id == bindparam("_id"))
            .values({name: bindparam(name) for name in columns})
        )
        await connection.execute(statement, [{**row, "_id": row["id"]} for row in changed])
    return UpsertSummary(len(new), len(changed), len(rows) - len(new) - len(changed))
