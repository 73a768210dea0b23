"""Storing API keys: only hashes, never the keys themselves."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from stepgraph.store.direct import DirectRead
from stepgraph.store.tables import api_keys
from stepgraph.store.types import IDENTIFIER_LENGTH


async def insert_api_key(
    connection: AsyncConnection,
    *,
    key_id: str,
    secret_hash: str,
    organization_id: str,
    user_id: str,
    scopes: Sequence[str],
    label: str | None,
    created_at: datetime,
    expires_at: datetime | None,
) -> None:
    """Record a new key; an id longer than any store keeps is a ``ValueError`` on every store."""
    for name, value in (("key", key_id), ("organization", organization_id), ("user", user_id)):
        if len(value) > IDENTIFIER_LENGTH:
            raise ValueError(f"the {name} id is longer than {IDENTIFIER_LENGTH} characters")
    await connection.execute(
        insert(api_keys).values(
            id=key_id,
            secret_hash=secret_hash,
            organization_id=organization_id,
            user_id=user_id,
            scopes=list(scopes),
            label=label,
            created_at=created_at,
            expires_at=expires_at,
        )
    )


# Every request with an API key looks its key up: one trip to the store (store.direct).
_FIND_API_KEY = DirectRead(
    select(api_keys).where(api_keys.c.id == bindparam("key_id", type_=api_keys.c.id.type)),
    ["key_id"],
)
_API_KEY_COLUMNS = tuple(api_keys.c.keys())


async def find_api_key(connection: AsyncConnection, key_id: str) -> Mapping[str, Any] | None:
    """One key by id, revoked or not."""
    rows = await _FIND_API_KEY.all(connection, {"key_id": key_id})
    return dict(zip(_API_KEY_COLUMNS, rows[0], strict=True)) if rows else None


async def list_api_keys(
    connection: AsyncConnection, *, organization_id: str | None = None
) -> Sequence[RowMapping]:
    """Every key (or one organization's), oldest first."""
    statement = select(api_keys).order_by(api_keys.c.created_at, api_keys.c.id)
    if organization_id is not None:
        statement = statement.where(api_keys.c.organization_id == organization_id)
    return (await connection.execute(statement)).mappings().all()


async def revoke_api_keys(
    connection: AsyncConnection, key_ids: Sequence[str], *, at: datetime
) -> int:
    """Revoke keys that are not revoked yet; returns how many changed."""
    result = await connection.execute(
        update(api_keys)
        .where(api_keys.c.id.in_(list(key_ids)), api_keys.c.revoked_at.is_(None))
        .values(revoked_at=at)
    )
    return result.rowcount
