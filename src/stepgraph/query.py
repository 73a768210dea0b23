"""StepResultQuery: the arguments of a step-results page, validated once.

Both transports build it, GraphQL from typed arguments and REST from query
strings, so they accept and refuse exactly the same things. No I/O here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime
from typing import Any, TypeVar

from stepgraph.cursors import MalformedCursor, Position, decode_cursor, encode_cursor, fingerprint
from stepgraph.domain import SortField, SortOrder, StepStatus
from stepgraph.timestamps import parse_instant


class InvalidArgument(ValueError):
    """An argument the contract refuses; ``argument`` names it as the client spelled it."""

    def __init__(self, argument: str, message: str) -> None:
        super().__init__(message)
        self.argument = argument
        self.message = message


@dataclass(frozen=True, slots=True)
class PageLimits:
    """Page-size bounds from settings: default 25, at most 100 unless configured."""

    default: int = 25
    maximum: int = 100


# REST query parameters this endpoint understands, in documentation order.
REST_PARAMETERS = (
    "recordId",
    "batchId",
    "status",
    "stepId",
    "from",
    "to",
    "sortBy",
    "sortOrder",
    "limit",
    "offset",
)
_INTEGER = re.compile(r"^-?[0-9]{1,18}$")


@dataclass(frozen=True, slots=True)
class StepResultFilter:
    """Which of one flow's step results a request is about: the contract's filters alone.

    Stats take this; a page (:class:`StepResultQuery`) adds sort and window to the same filters.
    """

    flow_id: str
    record_id: str | None = None
    batch_id: str | None = None
    status: StepStatus | None = None
    step_id: str | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None

    @classmethod
    def build(
        cls,
        *,
        flow_id: str,
        flow_argument: str = "flowId",
        record_id: str | None = None,
        batch_id: str | None = None,
        status: StepStatus | None = None,
        step_id: str | None = None,
        created_from: str | datetime | None = None,
        created_to: str | datetime | None = None,
    ) -> StepResultFilter:
        """Validate the filters; raises :class:`InvalidArgument` naming the first bad one."""
        lower = _instant("from", created_from)
        upper = _instant("to", created_to)
        if lower is not None and upper is not None and lower > upper:
            raise InvalidArgument("from", "`from` must not be after `to`")
        return cls(
            flow_id=_identifier(flow_argument, flow_id),
            record_id=_optional_identifier("recordId", record_id),
            batch_id=_optional_identifier("batchId", batch_id),
            status=status,
            step_id=_optional_identifier("stepId", step_id),
            created_from=lower,
            created_to=upper,
        )


def filter_fields(selection: StepResultFilter) -> dict[str, Any]:
    """The filters of ``selection`` by field name, as :class:`StepResultQuery` takes them too."""
    return {field.name: getattr(selection, field.name) for field in fields(StepResultFilter)}


@dataclass(frozen=True, slots=True)
class StepResultQuery:
    """One page of one flow's step results: filters, sort and offset window."""

    flow_id: str
    record_id: str | None = None
    batch_id: str | None = None
    status: StepStatus | None = None
    step_id: str | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None
    sort_by: SortField = SortField.CREATED_AT
    sort_order: SortOrder = SortOrder.DESC
    limit: int = 25
    offset: int = 0

    @classmethod
    def build(
        cls,
        *,
        flow_id: str,
        limits: PageLimits,
        flow_argument: str = "flowId",
        record_id: str | None = None,
        batch_id: str | None = None,
        status: StepStatus | None = None,
        step_id: str | None = None,
        created_from: str | datetime | None = None,
        created_to: str | datetime | None = None,
        sort_by: SortField | None = None,
        sort_order: SortOrder | None = None,
        limit: int | None = None,
        offset: int | None = None,
    ) -> StepResultQuery:
        """Validate typed arguments; raises :class:`InvalidArgument` naming the first bad one."""
        selection = StepResultFilter.build(
            flow_id=flow_id,
            flow_argument=flow_argument,
            record_id=record_id,
            batch_id=batch_id,
            status=status,
            step_id=step_id,
            created_from=created_from,
            created_to=created_to,
        )
        if limit is None:
            limit = limits.default
        if not 1 <= limit <= limits.maximum:
            raise InvalidArgument(
                "limit", f"`limit` must be between 1 and {limits.maximum}, got {limit}"
            )
        if offset is None:
            offset = 0
        if offset < 0:
            raise InvalidArgument("offset", f"`offset` must be 0 or more, got {offset}")
        return cls(
            **filter_fields(selection),
            sort_by=sort_by or SortField.CREATED_AT,
            sort_order=sort_order or SortOrder.DESC,
            limit=limit,
            offset=offset,
        )

    @classmethod
    def from_query_string(
        cls, flow_id: str, params: Sequence[tuple[str, str]], limits: PageLimits
    ) -> StepResultQuery:
        """Validate REST query parameters (as repeated key/value pairs)."""
        values: dict[str, str] = {}
        for key, value in params:
            if key not in REST_PARAMETERS:
                raise InvalidArgument(
                    key,
                    f"unknown query parameter `{key}`; "
                    f"expected one of {', '.join(REST_PARAMETERS)}",
                )
            if key in values:
                raise InvalidArgument(key, f"query parameter `{key}` is given more than once")
            values[key] = value
        return cls.build(
            flow_id=flow_id,
            flow_argument="id",
            limits=limits,
            record_id=values.get("recordId"),
            batch_id=values.get("batchId"),
            status=_choice("status", values, StepStatus),
            step_id=values.get("stepId"),
            created_from=values.get("from"),
            created_to=values.get("to"),
            sort_by=_choice("sortBy", values, SortField),
            sort_order=_choice("sortOrder", values, SortOrder),
            limit=_whole("limit", values),
            offset=_whole("offset", values),
        )

    @property
    def fetch_size(self) -> int:
        """Rows to read: one past the page tells whether more exist."""
        return self.limit + 1


@dataclass(frozen=True, slots=True)
class StepResultCursorQuery:
    """One cursor page of one flow's step results: filters, sort and a keyset window.

    The window holds the rows strictly between ``after`` and ``before`` (either may
    be open). ``size`` rows are taken from its start, or from its end when
    ``backward`` (the client gave ``last``, or only ``before``), as the Relay
    connection spec applies ``first``/``last`` after the cursors.
    """

    filter: StepResultFilter
    sort_by: SortField = SortField.CREATED_AT
    sort_order: SortOrder = SortOrder.DESC
    size: int = 25
    backward: bool = False
    after: Position | None = None
    before: Position | None = None

    @classmethod
    def build(
        cls,
        *,
        flow_id: str,
        limits: PageLimits,
        flow_argument: str = "flowId",
        record_id: str | None = None,
        batch_id: str | None = None,
        status: StepStatus | None = None,
        step_id: str | None = None,
        created_from: str | datetime | None = None,
        created_to: str | datetime | None = None,
        sort_by: SortField | None = None,
        sort_order: SortOrder | None = None,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> StepResultCursorQuery:
        """Validate typed arguments and decode the cursors.

        Raises :class:`InvalidArgument` naming the first bad argument, including a
        cursor that is malformed or was made for another flow, filter set or sort.
        """
        selection = StepResultFilter.build(
            flow_id=flow_id,
            flow_argument=flow_argument,
            record_id=record_id,
            batch_id=batch_id,
            status=status,
            step_id=step_id,
            created_from=created_from,
            created_to=created_to,
        )
        if first is not None and last is not None:
            raise InvalidArgument("last", "give `first` or `last`, not both")
        if last is not None:
            size = _page_size("last", last, limits)
        else:
            size = _page_size("first", first, limits)
        # With no size given, `before` alone asks for the page just before that cursor,
        # as a client scrolling back expects, not for the start of the list.
        backward = last is not None or (first is None and before is not None and after is None)
        unplaced = cls(
            filter=selection,
            sort_by=sort_by or SortField.CREATED_AT,
            sort_order=sort_order or SortOrder.DESC,
            size=size,
            backward=backward,
        )
        return replace(
            unplaced,
            after=unplaced._position("after", after),
            before=unplaced._position("before", before),
        )

    @property
    def flow_id(self) -> str:
        """The flow whose step results are listed."""
        return self.filter.flow_id

    @property
    def fetch_size(self) -> int:
        """Rows to read: one past the page tells whether more exist in the paging direction."""
        return self.size + 1

    @property
    def fingerprint(self) -> str:
        """Identifies the list (flow, filters, sort) so a cursor of another list is refused."""
        f = self.filter
        return fingerprint(
            [
                f.flow_id,
                f.record_id,
                f.batch_id,
                None if f.status is None else f.status.value,
                f.step_id,
                None if f.created_from is None else f.created_from.astimezone(UTC).isoformat(),
                None if f.created_to is None else f.created_to.astimezone(UTC).isoformat(),
                self.sort_by.value,
                self.sort_order.value,
            ]
        )

    def cursor(self, position: Position) -> str:
        """The opaque cursor of a row at ``position`` in this list."""
        return encode_cursor(position, self.fingerprint)

    def _position(self, argument: str, text: str | None) -> Position | None:
        if text is None:
            return None
        try:
            decoded = decode_cursor(text, self.sort_by)
        except MalformedCursor as exc:
            raise InvalidArgument(argument, f"`{argument}` is not a valid cursor ({exc})") from None
        if decoded.fingerprint != self.fingerprint:
            raise InvalidArgument(
                argument,
                f"`{argument}` is a cursor of another list: it was made for a different flow, "
                "filters, sortBy or sortOrder; start again without it",
            )
        return decoded.position


def _page_size(argument: str, value: int | None, limits: PageLimits) -> int:
    if value is None:
        return limits.default
    if not 1 <= value <= limits.maximum:
        raise InvalidArgument(
            argument, f"`{argument}` must be between 1 and {limits.maximum}, got {value}"
        )
    return value


def _identifier(argument: str, value: str) -> str:
    if value == "":
        raise InvalidArgument(argument, f"`{argument}` must not be empty")
    if "\x00" in value:
        # No store can hold or compare it (PostgreSQL text refuses it outright).
        raise InvalidArgument(argument, f"`{argument}` must not contain the NUL character")
    return value


def identifier(argument: str, value: str) -> str:
    """An id argument that can be looked up: non-empty, without NUL characters."""
    return _identifier(argument, value)


def _optional_identifier(argument: str, value: str | None) -> str | None:
    return None if value is None else _identifier(argument, value)


def _instant(argument: str, value: str | datetime | None) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    try:
        return parse_instant(value.strip(), allow_date=True)
    except ValueError as exc:
        raise InvalidArgument(argument, f"`{argument}`: {exc}") from None


_E = TypeVar("_E", StepStatus, SortField, SortOrder)


def _choice(argument: str, values: Mapping[str, str], enum: type[_E]) -> _E | None:
    raw = values.get(argument)
    if raw is None:
        return None
    for member in enum:
        if member.value == raw:
            return member
    allowed = ", ".join(m.value for m in enum)
    raise InvalidArgument(argument, f"`{argument}` must be one of {allowed}; got {raw!r}")


def _whole(argument: str, values: Mapping[str, str]) -> int | None:
    raw = values.get(argument)
    if raw is None:
        return None
    if not _INTEGER.match(raw):
        raise InvalidArgument(argument, f"`{argument}` must be a whole number, got {raw!r}")
    return int(raw)
