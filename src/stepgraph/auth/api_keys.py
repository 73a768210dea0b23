"""API keys issued by stepgraph: ``sgk_<id>_<secret>``, kept only as a SHA-256 hash.

The secret carries 256 random bits, so a fast hash is enough: nobody can
guess a key from its hash, and checking a key costs one primary-key lookup.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from stepgraph.auth.viewer import KNOWN_SCOPES, READ_STEP_RESULTS, Unauthenticated, Viewer
from stepgraph.store import api_keys as store

PREFIX = "sgk_"
_KEY = re.compile(r"^sgk_(?P<id>[a-z0-9]{12})_(?P<secret>[A-Za-z0-9_-]{43})$")
_ID_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"


@dataclass(frozen=True, slots=True)
class IssuedKey:
    """A key just created: ``key`` is shown once and never stored."""

    id: str
    key: str
    organization_id: str
    user_id: str
    scopes: tuple[str, ...]
    expires_at: datetime | None


def looks_like_api_key(token: str) -> bool:
    """Whether a bearer token claims to be a stepgraph API key."""
    return token.startswith(PREFIX)


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


async def issue_api_key(
    connection: AsyncConnection,
    *,
    organization_id: str,
    user_id: str,
    scopes: Sequence[str] = (READ_STEP_RESULTS,),
    expires_at: datetime | None = None,
    label: str | None = None,
    now: datetime | None = None,
) -> IssuedKey:
    """Create a key for a user of an organization; only its hash is stored."""
    unknown = sorted(set(scopes) - set(KNOWN_SCOPES))
    if unknown:
        raise ValueError(f"unknown scope(s) {', '.join(unknown)}; known: {', '.join(KNOWN_SCOPES)}")
    if not scopes:
        raise ValueError("a key needs at least one scope")
    for name, value in (("organization", organization_id), ("user", user_id)):
        if not value.strip():
            raise ValueError(f"the {name} id must not be empty")
    now = now or datetime.now(UTC)
    if expires_at is not None and expires_at <= now:
        raise ValueError("the expiry must be in the future")
    key_id = "".join(secrets.choice(_ID_ALPHABET) for _ in range(12))
    key = f"{PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
    await store.insert_api_key(
        connection,
        key_id=key_id,
        secret_hash=_hash(key),
        organization_id=organization_id,
        user_id=user_id,
        scopes=sorted(set(scopes)),
        label=label,
        created_at=now,
        expires_at=expires_at,
    )
    return IssuedKey(key_id, key, organization_id, user_id, tuple(sorted(set(scopes))), expires_at)


async def verify_api_key(connection: AsyncConnection, key: str) -> Viewer:
    """The caller a key stands for; :class:`Unauthenticated` when it cannot be used."""
    match = _KEY.match(key)
    if match is None:
        raise Unauthenticated("malformed API key")
    row = await store.find_api_key(connection, match["id"])
    # Compare even when the id is unknown, so timing does not tell ids apart.
    expected = row["secret_hash"] if row is not None else _hash("")
    if not hmac.compare_digest(expected, _hash(key)) or row is None:
        raise Unauthenticated("unknown API key")
    if row["revoked_at"] is not None:
        raise Unauthenticated("this API key has been revoked")
    if row["expires_at"] is not None and row["expires_at"] <= datetime.now(UTC):
        raise Unauthenticated("this API key has expired")
    return Viewer(
        user_id=row["user_id"],
        organization_id=row["organization_id"],
        scopes=frozenset(row["scopes"]),
        method="api_key",
        credential_id=row["id"],
    )
