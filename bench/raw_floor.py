"""The floor: the page's SELECT through plain ``sqlite3``, rendered with orjson.

It runs the very SQL the store builds for the page (same filters, order, limit + 1)
on a ``sqlite3`` connection and renders the REST twin's exact bytes with the least
Python there is: no ASGI, no authentication, no SQLAlchemy. Anything the gateway
does beyond this is its overhead.
"""

from __future__ import annotations

import sqlite3
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy.dialects import sqlite as sqlite_dialect

from stepgraph.query import PageLimits, StepResultQuery
from stepgraph.records import COLUMNS, format_cost
from stepgraph.store.reads import page_statement
from stepgraph.store.tables import step_results

_COST_SCALE = 10
_TIMESTAMPS = {"startedAt", "completedAt", "createdAt"}
_JSON = {"recordMetadata", "stepConfig", "inputVariables"}


def _instant(text: str | None) -> str | None:
    # SQLAlchemy keeps SQLite timestamps as "YYYY-MM-DD HH:MM:SS.ffffff", in UTC.
    if text is None:
        return None
    fraction = text[20:26]
    tail = f".{fraction}Z" if fraction and fraction != "000000" else "Z"
    return f"{text[:10]}T{text[11:19]}{tail}"


def _cost(value: int | None) -> str | None:
    return None if value is None else format_cost(Decimal(value).scaleb(-_COST_SCALE))


def _json(text: str | None) -> Any:
    return None if text is None else orjson.loads(text)


class RawFloor:
    """The page of one flow, read and rendered as directly as Python allows."""

    def __init__(self, path: Path, flow_id: str, organization_id: str, rows: int) -> None:
        self.connection = sqlite3.connect(path, check_same_thread=False)
        query = StepResultQuery.build(
            flow_id=flow_id, limits=PageLimits(maximum=max(rows, 100)), limit=rows
        )
        compiled = page_statement(query, organization_id).compile(
            dialect=sqlite_dialect.dialect()  # type: ignore[no-untyped-call]
        )
        parameters = compiled.construct_params()
        self.sql = str(compiled)
        self.parameters = tuple(parameters[name] for name in compiled.positiontup or ())
        self.limit = rows
        index = {column.name: i for i, column in enumerate(step_results.c)}
        plan: list[tuple[str, int, Any]] = []
        for name, column in COLUMNS.items():
            convert = (
                _instant
                if name in _TIMESTAMPS
                else _json
                if name in _JSON
                else _cost
                if name == "estimatedCost"
                else None
            )
            plan.append((name, index[column], convert))
        self.plan = tuple(plan)

    def page(self) -> bytes:
        """The REST body of the page."""
        rows = self.connection.execute(self.sql, self.parameters).fetchall()
        page = rows[: self.limit]
        plan = self.plan
        data = [
            {name: row[i] if convert is None else convert(row[i]) for name, i, convert in plan}
            for row in page
        ]
        return orjson.dumps(
            {
                "data": data,
                "pagination": {
                    "limit": self.limit,
                    "offset": 0,
                    "returned": len(page),
                    "hasMore": len(rows) > self.limit,
                },
            }
        )
