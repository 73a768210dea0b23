"""StepResultQuery: the arguments of a step-results page, validated once.

Both transports build it, GraphQL from typed arguments and REST from query
strings, so they accept and refuse exactly the same things. No I/O here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

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
        lower = _instant("from", created_from)
        upper = _instant("to", created_to)
        if lower is not None and upper is not None and lower > upper:
            raise InvalidArgument("from", "`from` must not be after `to`")
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
            flow_id=_identifier(flow_argument, flow_id),
            record_id=_optional_identifier("recordId", record_id),
            batch_id=_optional_identifier("batchId", batch_id),
            status=status,
            step_id=_optional_identifier("stepId", step_id),
            created_from=lower,
            created_to=upper,
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


def _identifier(argument: str, value: str) -> str:
    if value == "":
        raise InvalidArgument(argument, f"`{argument}` must not be empty")
    return value


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
