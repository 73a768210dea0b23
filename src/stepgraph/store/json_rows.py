"""Step results as the contract's JSON values, read with as little work per value as possible.

A typed row costs twice: SQLAlchemy turns stored text into aware datetimes and
JSON text into objects, then rendering turns the datetimes back into text. For
rows that are only going to be sent, :func:`codec_for` gives the columns to select
and a renderer that makes each row the contract's JSON object, taking each value from
what the store keeps to its JSON form in one step.

Each value comes out exactly as ``records.step_result_json`` renders the typed
row. The shortcuts apply only where they provably agree: on SQLite, an instant
kept as naive UTC text (what :class:`~stepgraph.store.types.UTCDateTime` writes)
from year 1000 on, and JSON text without a run of 19 digits (orjson reads integers
beyond 64 bits as floats where ``json.loads`` keeps them). Anything else takes the
typed route through SQLAlchemy's own processors and the contract's renderers,
errors included.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import ColumnElement, Dialect, type_coerce
from sqlalchemy.types import NullType

from stepgraph.records import COLUMNS, format_cost
from stepgraph.store.tables import step_results
from stepgraph.timestamps import format_instant

_INSTANTS = frozenset({"started_at", "completed_at", "created_at"})
_JSON_OBJECTS = frozenset({"record_metadata", "step_config", "input_variables"})
_COST = "estimated_cost"
# A run of 19 ASCII digits, looked for in bytes where every digit reads "0" and every
# other byte " ": three passes in C, several times faster than a regular expression.
_LONG_NUMBER = b"0" * 19
_DIGITS_ONLY = bytes(0x30 if 0x30 <= byte <= 0x39 else 0x20 for byte in range(256))

Render = Callable[[Any], Any]
# Stored rows (columns in the contract's field order) to the contract's JSON objects.
PageRenderer = Callable[[Sequence[Sequence[Any]]], list[dict[str, Any]]]


def render_instant(value: datetime) -> str:
    """Exactly ``timestamps.format_instant(value)``, without ``strftime`` for UTC values.

    For a UTC datetime from year 1000 on, ``isoformat`` writes the same digits as
    ``strftime`` (microseconds only when non-zero) followed by ``+00:00``; other
    offsets and earlier years (which ``strftime`` does not pad) take ``format_instant``.
    """
    if type(value) is datetime and value.tzinfo is UTC and value.year >= 1000:
        return value.isoformat()[:-6] + "Z"
    return format_instant(value)


@dataclass(frozen=True, slots=True)
class JsonRowCodec:
    """How one dialect's rows become JSON objects: the columns to select and the renderer."""

    columns: tuple[ColumnElement[Any], ...]
    render: PageRenderer


def _renderer(conversions: Sequence[tuple[int, Render]]) -> PageRenderer:
    """A function from stored rows to JSON objects: one dict display per row, each value
    taken as stored or through its column's conversion (None stays None).

    Generated once per codec from the contract's field names: in CPython a dict display
    with constant keys is the cheapest way to build each object, in the contract's order.
    """
    converting = dict(conversions)
    namespace: dict[str, Any] = {f"convert_{i}": convert for i, convert in converting.items()}
    items = [
        f"{name!r}: row[{i}]"
        if i not in converting
        else f"{name!r}: None if row[{i}] is None else convert_{i}(row[{i}])"
        for i, name in enumerate(COLUMNS)
    ]
    source = "def render(rows):\n    return [{" + ", ".join(items) + "} for row in rows]\n"
    exec(compile(source, "<stored rows to JSON objects>", "exec"), namespace)
    render: PageRenderer = namespace["render"]
    return render


def _stored_instant(typed: Render) -> Render:
    """A SQLite instant from its stored text, parsed as SQLAlchemy parses it."""

    def convert(text: Any) -> str:
        if type(text) is str:
            try:
                parsed = datetime.fromisoformat(text)
            except ValueError:
                parsed = None  # the typed route raises SQLAlchemy's own error
            # Naive text is UTC by UTCDateTime's contract: it reads it back with
            # tzinfo=UTC, and format_instant of that is this text.
            if parsed is not None and parsed.tzinfo is None and parsed.year >= 1000:
                if len(text) == 26 and text[10] == " " and text[19] == ".":
                    # The form UTCDateTime writes, now known to be a valid instant:
                    # isoformat's digits, cut from the text (microseconds when non-zero).
                    if text.endswith(".000000"):
                        return f"{text[:10]}T{text[11:19]}Z"
                    return f"{text[:10]}T{text[11:]}Z"
                return parsed.isoformat() + "Z"
        return render_instant(typed(text))

    return convert


def _digits_only(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass").translate(_DIGITS_ONLY)


def _stored_json(typed: Render) -> Render:
    """A JSON value from its stored text: orjson where it provably agrees with json.loads."""

    def convert(text: Any) -> Any:
        if type(text) is str and _LONG_NUMBER not in _digits_only(text):
            try:
                return orjson.loads(text)
            except orjson.JSONDecodeError:
                pass
        return typed(text)

    return convert


def _typed_processor(name: str, dialect: Dialect) -> Render:
    column = step_results.c[name]
    processor = column.type.dialect_impl(dialect).result_processor(dialect, None)
    assert processor is not None, name
    return processor


def _sqlite_codec(dialect: Dialect) -> JsonRowCodec:
    columns: list[ColumnElement[Any]] = []
    conversions: list[tuple[int, Render]] = []
    for index, name in enumerate(COLUMNS.values()):
        column = step_results.c[name]
        if name in _INSTANTS or name in _JSON_OBJECTS:
            # Read the stored text as it is; the conversion falls back to the typed route.
            columns.append(type_coerce(column, NullType()).label(name))
            typed = _typed_processor(name, dialect)
            convert = _stored_instant(typed) if name in _INSTANTS else _stored_json(typed)
            conversions.append((index, convert))
        elif name == _COST:
            # The stored integer, converted and rendered in one step (no row pass between).
            columns.append(type_coerce(column, NullType()).label(name))
            conversions.append((index, _stored_cost(_typed_processor(name, dialect))))
        else:
            columns.append(column)
    return JsonRowCodec(tuple(columns), _renderer(conversions))


def _stored_cost(typed: Render) -> Render:
    """A cost from its stored form: exactly ``format_cost`` of what SQLAlchemy reads."""

    def convert(stored: Any) -> str:
        return format_cost(typed(stored))

    return convert


def _typed_codec() -> JsonRowCodec:
    # Drivers such as asyncpg return datetimes and decoded JSON: only rendering is left.
    conversions: list[tuple[int, Render]] = []
    for index, name in enumerate(COLUMNS.values()):
        if name in _INSTANTS:
            conversions.append((index, render_instant))
        elif name == _COST:
            conversions.append((index, format_cost))
    columns = tuple(step_results.c[name] for name in COLUMNS.values())
    return JsonRowCodec(columns, _renderer(conversions))


_CODECS: weakref.WeakKeyDictionary[Dialect, JsonRowCodec] = weakref.WeakKeyDictionary()


def codec_for(dialect: Dialect) -> JsonRowCodec:
    """The codec of a dialect (built once per dialect object)."""
    codec = _CODECS.get(dialect)
    if codec is None:
        codec = _sqlite_codec(dialect) if dialect.name == "sqlite" else _typed_codec()
        _CODECS[dialect] = codec
    return codec
