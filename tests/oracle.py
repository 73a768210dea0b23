"""The contract in plain Python: filter and sort contract-shaped rows, no store involved."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from stepgraph.records import parse_step_result, step_result_json
from stepgraph.timestamps import parse_instant

_FILTERS = {
    "recordId": "recordId",
    "batchId": "batchExecutionId",
    "status": "status",
    "stepId": "stepId",
}


def _sort_value(row: Mapping[str, Any], field: str) -> Any:
    value = row[field]
    if value is None:
        return None
    if field in {"createdAt", "startedAt", "completedAt"}:
        return parse_instant(value)
    if field == "estimatedCost":
        return Decimal(str(value))
    return value


def expected_page(
    rows: Sequence[Mapping[str, Any]], flow_id: str, params: Mapping[str, Any]
) -> tuple[list[dict[str, Any]], bool]:
    """The rows of one page and ``hasMore``, as the contract defines them."""
    selected = [r for r in rows if r["flowId"] == flow_id]
    for argument, field in _FILTERS.items():
        if params.get(argument) is not None:
            selected = [r for r in selected if r[field] == params[argument]]
    if params.get("from") is not None:
        lower = parse_instant(params["from"], allow_date=True)
        selected = [r for r in selected if parse_instant(r["createdAt"]) >= lower]
    if params.get("to") is not None:
        upper = parse_instant(params["to"], allow_date=True)
        selected = [r for r in selected if parse_instant(r["createdAt"]) < upper]

    field = params.get("sortBy") or "createdAt"
    descending = (params.get("sortOrder") or "desc") == "desc"
    present = [r for r in selected if r[field] is not None]
    missing = [r for r in selected if r[field] is None]
    present.sort(key=lambda r: (_sort_value(r, field), r["id"]), reverse=descending)
    missing.sort(key=lambda r: r["id"], reverse=descending)
    ordered = present + missing

    limit = int(params.get("limit") or 25)
    offset = int(params.get("offset") or 0)
    page = [normalised(r) for r in ordered[offset : offset + limit]]
    return page, len(ordered) > offset + limit


def normalised(row: Mapping[str, Any]) -> dict[str, Any]:
    """A row as the API renders it: UTC `Z` timestamps, costs without trailing zeros."""
    return step_result_json(parse_step_result(dict(row)))
