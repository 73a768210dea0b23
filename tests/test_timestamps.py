"""RFC 3339 parsing and rendering."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from stepgraph.timestamps import format_instant, parse_instant


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-06-15T10:15:30Z", datetime(2024, 6, 15, 10, 15, 30, tzinfo=UTC)),
        ("2024-06-15T10:15:30", datetime(2024, 6, 15, 10, 15, 30, tzinfo=UTC)),
        ("2024-06-15T12:15:30+02:00", datetime(2024, 6, 15, 10, 15, 30, tzinfo=UTC)),
        ("2024-06-15 10:15:30.25z", datetime(2024, 6, 15, 10, 15, 30, 250000, tzinfo=UTC)),
    ],
)
def test_instants_are_normalised_to_utc(text: str, expected: datetime) -> None:
    assert parse_instant(text) == expected


def test_a_date_alone_is_midnight_utc_only_where_allowed() -> None:
    assert parse_instant("2024-06-15", allow_date=True) == datetime(2024, 6, 15, tzinfo=UTC)
    with pytest.raises(ValueError, match="date-time"):
        parse_instant("2024-06-15")


@pytest.mark.parametrize(
    "text",
    ["", "15/06/2024", "2024-06-15T25:00:00Z", "2024-06-15T10:15:30.1234567Z", "2024-06-15T10:15"],
)
def test_malformed_instants_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"\S"):
        parse_instant(text, allow_date=True)


def test_rendering_is_utc_with_z_and_keeps_microseconds() -> None:
    assert format_instant(datetime(2024, 6, 15, 10, 15, 30, tzinfo=UTC)) == "2024-06-15T10:15:30Z"
    assert (
        format_instant(datetime(2024, 6, 15, 10, 15, 30, 5, tzinfo=UTC))
        == "2024-06-15T10:15:30.000005Z"
    )


def test_early_years_keep_four_digits() -> None:
    assert format_instant(datetime(1, 1, 1, tzinfo=UTC)) == "0001-01-01T00:00:00Z"


def test_an_offset_past_the_first_year_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="outside the years"):
        parse_instant("0001-01-01T00:00:00+01:00")
