"""The demo's six weeks: the anchor ("now"), instants in milliseconds, and busy hours.

Instants are whole milliseconds since the Unix epoch, which keeps the hot loop in integer
arithmetic; they are rendered to the store's ISO form only when a row is made.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import accumulate

DEMO_ANCHOR = datetime(2026, 10, 31, tzinfo=UTC)
"""The fixed "now" of the demo data: every timestamp lies in the six weeks before it."""

WINDOW_DAYS = 42
MINUTE_MS = 60_000
HOUR_MS = 3_600_000
DAY_MS = 86_400_000
ANCHOR_MS = int((DEMO_ANCHOR - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds()) * 1000
WINDOW_START_MS = ANCHOR_MS - WINDOW_DAYS * DAY_MS
_NAIVE_EPOCH = datetime(1970, 1, 1)

_MINUTES: dict[int, str] = {}


def iso(ms: int) -> str:
    """The instant ``ms`` as the store renders it: ``YYYY-MM-DDTHH:MM:SS[.ffffff]Z``."""
    # The store's own rendering (microseconds only when non-zero), so rows round-trip
    # unchanged. Steps of a run share their minute, so the minute's text is cached.
    minute, rest = divmod(ms, MINUTE_MS)
    prefix = _MINUTES.get(minute)
    if prefix is None:
        if len(_MINUTES) > 50_000:
            _MINUTES.clear()
        prefix = (_NAIVE_EPOCH + timedelta(minutes=minute)).strftime("%Y-%m-%dT%H:%M:")
        _MINUTES[minute] = prefix
    seconds, millis = divmod(rest, 1000)
    if millis:
        return f"{prefix}{seconds:02d}.{millis:03d}000Z"
    return f"{prefix}{seconds:02d}Z"


def day_stamp(ms: int) -> str:
    """The UTC day of the instant ``ms`` as ``YYYYMMDD``, as batch and session ids spell it."""
    return iso(ms)[:10].replace("-", "")


def _hour_weight(hour: int) -> float:
    day, hour_of_day = divmod(hour, 24)
    weekday = (DEMO_ANCHOR - timedelta(days=WINDOW_DAYS - day)).weekday()
    # Customers in Europe and the Americas: busy from 07:00 to 22:00 UTC, quiet at night.
    daytime = 1.0 if 7 <= hour_of_day <= 21 else 0.15
    weekend = 0.3 if weekday >= 5 else 1.0
    # Usage grows over the weeks, as a product finding its users does.
    growth = 1.0 + 0.6 * day / WINDOW_DAYS
    return daytime * weekend * growth


HOURS = range(WINDOW_DAYS * 24)
"""The hours of the window, counted from its start."""

HOUR_CUM = tuple(accumulate(_hour_weight(hour) for hour in HOURS))
"""Cumulative weights of :data:`HOURS`: how likely a job is submitted in each."""
