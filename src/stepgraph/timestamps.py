"""RFC 3339 instants: the one parser and the one renderer of timestamps."""

from __future__ import annotations

import re
from datetime import UTC, datetime

_RFC3339 = re.compile(
    r"^(?P<date>\d{4}-\d{2}-\d{2})"
    r"(?:[Tt ](?P<time>\d{2}:\d{2}:\d{2})(?P<fraction>\.\d+)?(?P<offset>[Zz]|[+-]\d{2}:\d{2})?)?$"
)


def parse_instant(text: str, *, allow_date: bool = False) -> datetime:
    """Parse an RFC 3339 date-time into an aware UTC datetime.

    No offset means UTC. With ``allow_date``, a date alone means midnight UTC.
    Raises ``ValueError`` with a message fit for the caller.
    """
    match = _RFC3339.match(text)
    if match is None or (match["time"] is None and not allow_date):
        expected = "an RFC 3339 date-time" + (" or date" if allow_date else "")
        raise ValueError(f"expected {expected} such as 2024-06-15T10:15:30Z, got {text!r}")
    fraction = match["fraction"] or ""
    if len(fraction) > 7:
        raise ValueError(f"{text!r} is more precise than microseconds")
    offset = match["offset"] or "Z"
    offset = "+00:00" if offset in {"Z", "z"} else offset
    time = match["time"] or "00:00:00"
    try:
        parsed = datetime.fromisoformat(f"{match['date']}T{time}{fraction}{offset}")
        return parsed.astimezone(UTC)
    except ValueError:
        raise ValueError(f"{text!r} is not a valid date or time") from None
    except OverflowError:
        raise ValueError(f"{text!r} lies outside the years 1 to 9999 in UTC") from None


def format_instant(value: datetime) -> str:
    """Render an instant in UTC with ``Z``; microseconds appear when non-zero."""
    value = value.astimezone(UTC)
    # strftime("%Y") does not pad years before 1000; RFC 3339 needs four digits.
    text = (
        f"{value.year:04d}-{value.month:02d}-{value.day:02d}"
        f"T{value.hour:02d}:{value.minute:02d}:{value.second:02d}"
    )
    if value.microsecond:
        text += f".{value.microsecond:06d}"
    return text + "Z"
