"""Opaque keyset cursors: where a row sits in one sorted list of step results.

A cursor is the urlsafe base64 (unpadded) of the compact JSON array
``[1, fingerprint, key, id]``: format version, a fingerprint of the list it came
from (flow, filters, sort), the row's sort value and its id. Positions rather
than offsets keep a cursor valid while rows are inserted.

Cursors are not signed: they grant nothing, because every read is scoped to the
caller's organization on the server. Decoding still checks every part, so a
damaged or hand-made cursor is refused before it reaches the store.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from stepgraph.domain import SortField

VERSION = 1

SortValue = datetime | int | Decimal | None

_INSTANTS = {SortField.CREATED_AT, SortField.STARTED_AT, SortField.COMPLETED_AT}
_INTEGERS = {SortField.DURATION_MS, SortField.ORDER, SortField.TOTAL_TOKENS}
# Sort keys the contract declares non-null: a cursor cannot sit on a NULL of these.
_REQUIRED = {SortField.CREATED_AT, SortField.ORDER}
# The integer sort columns are 32-bit on every store; a larger bind would fail in the driver.
_INT_RANGE = range(-(2**31), 2**31)
# Costs are NUMERIC(30, 10) in the store.
_COST_LIMIT = Decimal(10) ** 20
_COST_QUANTUM = Decimal(1).scaleb(-10)
_MAX_ID_LENGTH = 255
# Far above any cursor made here; refused unread, so nesting cannot exhaust the parser.
_MAX_CURSOR_LENGTH = 2048
_FINGERPRINT_LENGTH = 16
_URLSAFE = re.compile(r"^[A-Za-z0-9_-]+$")


class MalformedCursor(ValueError):
    """Text that is not a cursor this server made (damaged, truncated or hand-made)."""


@dataclass(frozen=True, slots=True)
class Position:
    """A row's place in a sorted list: its sort value (None for NULL) and its id."""

    key: SortValue
    id: str


@dataclass(frozen=True, slots=True)
class Cursor:
    """A decoded cursor: the list it belongs to and the position in it."""

    fingerprint: str
    position: Position


def fingerprint(parts: list[str | None]) -> str:
    """A short digest identifying one sorted, filtered list (not a secret)."""
    canonical = json.dumps(parts, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:_FINGERPRINT_LENGTH]


def encode_cursor(position: Position, list_fingerprint: str) -> str:
    """The opaque cursor of ``position`` in the list identified by ``list_fingerprint``."""
    payload = [VERSION, list_fingerprint, _encode_key(position.key), position.id]
    text = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
    return base64.urlsafe_b64encode(text.encode("utf-8")).rstrip(b"=").decode("ascii")


def decode_cursor(text: str, sort_by: SortField) -> Cursor:
    """Read a cursor whose key is a ``sort_by`` value; raises :class:`MalformedCursor`."""
    # The decoder would skip characters outside the alphabet; a cursor has none.
    if len(text) > _MAX_CURSOR_LENGTH or not _URLSAFE.match(text):
        raise MalformedCursor("not a cursor")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        payload = json.loads(raw.decode("utf-8"), parse_float=Decimal, parse_constant=_refuse)
    except (ValueError, binascii.Error) as exc:
        raise MalformedCursor("not a cursor") from exc
    if not isinstance(payload, list) or len(payload) != 4:
        raise MalformedCursor("not a cursor")
    version, list_fingerprint, key, row_id = payload
    if version != VERSION or isinstance(version, bool):
        raise MalformedCursor("unknown cursor version")
    if not isinstance(list_fingerprint, str) or len(list_fingerprint) != _FINGERPRINT_LENGTH:
        raise MalformedCursor("cursor without a valid fingerprint")
    if not isinstance(row_id, str) or not 0 < len(row_id) <= _MAX_ID_LENGTH:
        raise MalformedCursor("cursor without a valid id")
    return Cursor(list_fingerprint, Position(_decode_key(key, sort_by), row_id))


def _refuse(constant: str) -> Any:
    raise ValueError(f"{constant} is not JSON")


def _encode_key(key: SortValue) -> str | int | None:
    # Instants keep microseconds and costs every digit: both travel as strings.
    if isinstance(key, datetime):
        return key.isoformat()
    if isinstance(key, Decimal):
        return str(key)
    return key


def _decode_key(value: Any, sort_by: SortField) -> SortValue:
    if value is None:
        if sort_by in _REQUIRED:
            raise MalformedCursor(f"a {sort_by.value} cursor needs a value")
        return None
    if sort_by in _INSTANTS:
        return _instant(value)
    if sort_by in _INTEGERS:
        if isinstance(value, bool) or not isinstance(value, int) or value not in _INT_RANGE:
            raise MalformedCursor(f"a {sort_by.value} cursor needs a whole number")
        return value
    return _cost(value)


def _instant(value: Any) -> datetime:
    if not isinstance(value, str):
        raise MalformedCursor("cursor instant is not a string")
    try:
        instant = datetime.fromisoformat(value)
    except ValueError as exc:
        raise MalformedCursor("cursor instant is not ISO 8601") from exc
    if instant.tzinfo is None:
        raise MalformedCursor("cursor instant has no offset")
    return instant


def _cost(value: Any) -> Decimal:
    if not isinstance(value, str):
        raise MalformedCursor("cursor cost is not a string")
    try:
        cost = Decimal(value)
    except InvalidOperation as exc:
        raise MalformedCursor("cursor cost is not a decimal") from exc
    if not cost.is_finite() or abs(cost) >= _COST_LIMIT:
        raise MalformedCursor("cursor cost is out of range")
    try:
        exact = cost.quantize(_COST_QUANTUM)
    except InvalidOperation as exc:
        raise MalformedCursor("cursor cost is out of range") from exc
    if exact != cost:
        raise MalformedCursor("cursor cost is more precise than the store")
    return cost
