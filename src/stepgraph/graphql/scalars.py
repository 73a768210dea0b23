"""Scalars whose wire form follows the contract on every path."""

from __future__ import annotations

import datetime as dt
import decimal
from typing import Any

import strawberry
from strawberry.types.scalar import ScalarDefinition

from stepgraph.records import format_cost, parse_cost
from stepgraph.timestamps import format_instant, parse_instant


def _parse_datetime(value: Any) -> dt.datetime:
    if not isinstance(value, str):
        raise ValueError(f"DateTime must be a string, got {value!r}")
    return parse_instant(value, allow_date=True)


def _serialize_datetime(value: Any) -> str:
    if not isinstance(value, dt.datetime):
        raise TypeError(f"DateTime cannot represent {value!r}")
    return format_instant(value)


def _serialize_decimal(value: Any) -> str:
    if not isinstance(value, decimal.Decimal):
        raise TypeError(f"Decimal cannot represent {value!r}")
    return format_cost(value)


DateTime: ScalarDefinition = strawberry.scalar(
    name="DateTime",
    description=(
        "An instant in RFC 3339 form. Output is always UTC with `Z`, with microseconds when "
        "non-zero (`2024-06-15T10:15:30.250000Z`). Input may carry any offset; no offset "
        "means UTC and, where an argument says so, a date alone means midnight UTC."
    ),
    specified_by_url="https://datatracker.ietf.org/doc/html/rfc3339",
    serialize=_serialize_datetime,
    parse_value=_parse_datetime,
)

Decimal: ScalarDefinition = strawberry.scalar(
    name="Decimal",
    description=(
        'An exact decimal number, sent as a string (`"0.0045"`) so no binary rounding '
        "touches it. Input accepts a string or a number."
    ),
    serialize=_serialize_decimal,
    parse_value=parse_cost,
)

SCALAR_OVERRIDES: dict[object, Any] = {dt.datetime: DateTime, decimal.Decimal: Decimal}
