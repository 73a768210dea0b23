"""Cursors: opaque positions that round-trip, and refusals that name the argument."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from stepgraph.cursors import (
    MalformedCursor,
    Position,
    SortValue,
    decode_cursor,
    encode_cursor,
    fingerprint,
)
from stepgraph.domain import SortField, SortOrder, StepStatus
from stepgraph.query import InvalidArgument, PageLimits, StepResultCursorQuery

LIMITS = PageLimits()
FINGERPRINT = fingerprint(["flow_1", None])


def raw_cursor(payload: Any) -> str:
    text = json.dumps(payload, ensure_ascii=False).encode()
    return base64.urlsafe_b64encode(text).rstrip(b"=").decode()


def build(**arguments: Any) -> StepResultCursorQuery:
    return StepResultCursorQuery.build(flow_id="flow_1", limits=LIMITS, **arguments)


def refusal(**arguments: Any) -> str:
    with pytest.raises(InvalidArgument) as caught:
        build(**arguments)
    return caught.value.argument


@pytest.mark.parametrize(
    ("sort_by", "key"),
    [
        (SortField.CREATED_AT, datetime(2024, 6, 15, 10, 0, 0, 1, tzinfo=UTC)),
        (SortField.STARTED_AT, None),
        (SortField.COMPLETED_AT, datetime(1999, 12, 31, 23, 59, 59, tzinfo=UTC)),
        (SortField.DURATION_MS, 0),
        (SortField.ORDER, -(2**31)),
        (SortField.TOTAL_TOKENS, 2**31 - 1),
        (SortField.ESTIMATED_COST, Decimal("-0.0000000001")),
        (SortField.ESTIMATED_COST, Decimal("12.5000")),
    ],
)
@pytest.mark.parametrize("row_id", ["sr_1", "é/ü:Z 1", "x" * 255])
def test_a_cursor_round_trips(sort_by: SortField, key: SortValue, row_id: str) -> None:
    cursor = encode_cursor(Position(key, row_id), FINGERPRINT)
    decoded = decode_cursor(cursor, sort_by)
    assert decoded.fingerprint == FINGERPRINT
    assert decoded.position == Position(key, row_id)
    assert type(decoded.position.key) is type(key)


def test_a_cursor_is_urlsafe_text_without_padding() -> None:
    cursor = encode_cursor(Position(Decimal("0.0045"), "sr_?&/+"), FINGERPRINT)
    assert cursor.isascii()
    assert not set(cursor) & set("+/=")


def test_an_instant_keeps_its_offset_and_microseconds() -> None:
    instant = datetime(2024, 6, 15, 12, 0, 0, 250, tzinfo=timezone(timedelta(hours=2)))
    decoded = decode_cursor(
        encode_cursor(Position(instant, "a"), FINGERPRINT), SortField.STARTED_AT
    )
    assert decoded.position.key == instant


@pytest.mark.parametrize(
    "text",
    [
        "",
        "not a cursor",
        "!!!!",
        "YWJj",  # base64 of "abc"
        raw_cursor({"v": 1}),
        raw_cursor([1, FINGERPRINT, 5]),
        raw_cursor([2, FINGERPRINT, 5, "sr_1"]),  # unknown version
        raw_cursor([True, FINGERPRINT, 5, "sr_1"]),
        raw_cursor([1, "short", 5, "sr_1"]),
        raw_cursor([1, FINGERPRINT, 5, ""]),
        raw_cursor([1, FINGERPRINT, 5, 7]),
        raw_cursor([1, FINGERPRINT, 5, "x" * 256]),
        raw_cursor([1, FINGERPRINT, "5", "sr_1"]),  # a string where durationMs is a number
        raw_cursor([1, FINGERPRINT, 5.0, "sr_1"]),
        raw_cursor([1, FINGERPRINT, True, "sr_1"]),
        raw_cursor([1, FINGERPRINT, 2**31, "sr_1"]),  # past the 32-bit column
        "A" * 5000,
        raw_cursor([[[[[[[[1]]]]]]]]),
    ],
)
def test_malformed_cursors_are_refused(text: str) -> None:
    with pytest.raises(MalformedCursor):
        decode_cursor(text, SortField.DURATION_MS)


@pytest.mark.parametrize(
    ("sort_by", "key"),
    [
        (SortField.CREATED_AT, None),  # createdAt is never NULL
        (SortField.ORDER, None),
        (SortField.CREATED_AT, "2024-06-15T10:00:00"),  # no offset
        (SortField.CREATED_AT, "yesterday"),
        (SortField.CREATED_AT, 1718445600),
        (SortField.ESTIMATED_COST, "0.00000000001"),  # finer than the store keeps
        (SortField.ESTIMATED_COST, "1e20"),
        (SortField.ESTIMATED_COST, "NaN"),
        (SortField.ESTIMATED_COST, "Infinity"),
        (SortField.ESTIMATED_COST, "cheap"),
        (SortField.ESTIMATED_COST, 1),
    ],
)
def test_keys_that_do_not_fit_the_sort_are_refused(sort_by: SortField, key: Any) -> None:
    with pytest.raises(MalformedCursor):
        decode_cursor(raw_cursor([1, FINGERPRINT, key, "sr_1"]), sort_by)


def test_a_cursor_of_this_list_is_accepted_as_after_and_before() -> None:
    query = build(sort_by=SortField.DURATION_MS, status=StepStatus.FAILED)
    cursor = query.cursor(Position(1500, "sr_9"))
    placed = build(sort_by=SortField.DURATION_MS, status=StepStatus.FAILED, after=cursor)
    assert placed.after == Position(1500, "sr_9")
    placed = build(sort_by=SortField.DURATION_MS, status=StepStatus.FAILED, before=cursor)
    assert placed.before == Position(1500, "sr_9")


def test_equal_filters_spelled_differently_share_cursors() -> None:
    query = build(created_from="2024-06-15T12:00:00+02:00")
    cursor = query.cursor(Position(datetime(2024, 6, 15, tzinfo=UTC), "a"))
    assert build(created_from="2024-06-15T10:00:00Z", after=cursor).after is not None


# Integer sorts, so that one key fits both lists and only the fingerprint differs.
BASE: dict[str, Any] = {"flow_id": "flow_1", "sort_by": SortField.TOTAL_TOKENS}


@pytest.mark.parametrize(
    "other",
    [
        {"flow_id": "flow_2"},
        {"sort_by": SortField.DURATION_MS},
        {"sort_order": SortOrder.ASC},
        {"record_id": "rec_1"},
        {"batch_id": "batch_1"},
        {"status": StepStatus.COMPLETED},
        {"step_id": "step_1"},
        {"created_from": "2024-06-15"},
        {"created_to": "2024-06-16"},
    ],
    ids=lambda other: next(iter(other)),
)
@pytest.mark.parametrize("argument", ["after", "before"])
def test_a_cursor_of_another_list_is_refused(other: dict[str, Any], argument: str) -> None:
    made = StepResultCursorQuery.build(limits=LIMITS, **{**BASE, **other})
    cursor = made.cursor(Position(7, "sr_1"))
    with pytest.raises(InvalidArgument) as caught:
        StepResultCursorQuery.build(limits=LIMITS, **BASE, **{argument: cursor})
    assert caught.value.argument == argument
    assert "another list" in caught.value.message


def test_a_cursor_with_a_forged_fingerprint_is_refused() -> None:
    query = build()
    payload = [1, "0" * 16, datetime(2024, 6, 15, tzinfo=UTC).isoformat(), "sr_1"]
    assert query.fingerprint != payload[1]
    assert refusal(after=raw_cursor(payload)) == "after"


@pytest.mark.parametrize("argument", ["after", "before"])
def test_a_malformed_cursor_names_its_argument(argument: str) -> None:
    assert refusal(**{argument: "bm90IGEgY3Vyc29y"}) == argument


@pytest.mark.parametrize(
    ("arguments", "named"),
    [
        ({"first": 0}, "first"),
        ({"first": -1}, "first"),
        ({"first": 101}, "first"),
        ({"last": 0}, "last"),
        ({"last": 101}, "last"),
        ({"first": 5, "last": 5}, "last"),
    ],
)
def test_page_sizes_are_bounded_like_limit(arguments: dict[str, int], named: str) -> None:
    assert refusal(**arguments) == named


CURSOR = build().cursor(Position(datetime(2024, 6, 15, tzinfo=UTC), "sr_1"))


@pytest.mark.parametrize(
    ("arguments", "size", "backward"),
    [
        ({}, 25, False),
        ({"first": 1}, 1, False),
        ({"last": 100}, 100, True),
        ({"after": CURSOR}, 25, False),
        ({"before": CURSOR}, 25, True),  # the page just before the cursor
        ({"first": 3, "before": CURSOR}, 3, False),
        ({"after": CURSOR, "before": CURSOR}, 25, False),
    ],
)
def test_page_size_and_direction(arguments: dict[str, Any], size: int, backward: bool) -> None:
    query = build(**arguments)
    assert (query.size, query.fetch_size, query.backward) == (size, size + 1, backward)


def test_filters_are_validated_as_for_the_offset_page() -> None:
    assert refusal(created_from="2024-06-16", created_to="2024-06-15") == "from"
    assert refusal(record_id="") == "recordId"
