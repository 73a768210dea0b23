"""Step-result stats in plain Python: what ``stepResultStats`` must return, no store involved.

Rows are selected by the page oracle (the contract's filters, in the default order:
latest first), then measured with ``statistics``, ``Fraction`` and ``Decimal``: exact
sums, exact means and percentiles rounded as the schema documents.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from decimal import Decimal, localcontext
from fractions import Fraction
from typing import Any

from stepgraph.records import format_cost
from tests.oracle import expected_page

STATUSES = ("pending", "running", "completed", "failed", "skipped", "cancelled")
# Decimal places of means and percentiles, as the schema's descriptions promise.
ROUNDING = 3


def expected_stats(
    rows: Sequence[Mapping[str, Any]], flow_id: str, filters: Mapping[str, Any]
) -> dict[str, Any]:
    """``stepResultStats`` (every field, ``byStep`` included) in the GraphQL JSON shape."""
    selected, _ = expected_page(rows, flow_id, {**filters, "limit": max(len(rows), 1)})
    latest_first: dict[str, list[dict[str, Any]]] = {}
    for row in selected:
        latest_first.setdefault(row["stepId"], []).append(row)
    by_step = [
        {
            "stepId": step_id,
            "stepName": step_rows[0]["stepName"],
            "order": step_rows[0]["order"],
            **measures(step_rows),
        }
        for step_id, step_rows in latest_first.items()
    ]
    by_step.sort(key=lambda step: (step["order"], step["stepId"]))
    return {**measures(selected), "byStep": by_step}


def measures(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The measures of ``rows`` (contract-shaped) as the API renders them."""
    return {
        "count": len(rows),
        "byStatus": [
            {"status": status.upper(), "count": sum(1 for r in rows if r["status"] == status)}
            for status in STATUSES
        ],
        "promptTokens": _sum(r["promptTokens"] for r in rows),
        "completionTokens": _sum(r["completionTokens"] for r in rows),
        "totalTokens": _sum(r["totalTokens"] for r in rows),
        "estimatedCost": _cost_sum(r["estimatedCost"] for r in rows),
        "durationMs": durations([r["durationMs"] for r in rows]),
    }


def durations(values: Sequence[int | None]) -> dict[str, Any]:
    """``DurationStats`` of ``values``: NULLs left out, all measures null when none is left."""
    known = sorted(Fraction(v) for v in values if v is not None)
    if not known:
        return {"count": 0, "min": None, "max": None, "avg": None, "p50": None, "p95": None}
    return {
        "count": len(known),
        "min": int(known[0]),
        "max": int(known[-1]),
        "avg": _rounded(statistics.mean(known)),
        "p50": _rounded(statistics.median(known)),
        "p95": _rounded(percentile_cont(known, 95)),
    }


def percentile_cont(ordered: Sequence[Fraction], percent: int) -> Fraction:
    """PostgreSQL's ``percentile_cont(percent / 100)``, exactly.

    It is the "inclusive" method of ``statistics.quantiles`` (Excel's PERCENTILE.INC):
    the minimum is the 0th percentile and the maximum the 100th.
    """
    if len(ordered) == 1:
        return ordered[0]
    value: Fraction = statistics.quantiles(ordered, n=100, method="inclusive")[percent - 1]
    return value


def _rounded(value: Fraction) -> float:
    return float(round(value, ROUNDING))


def _sum(values: Any) -> int | None:
    known = [v for v in values if v is not None]
    return sum(known) if known else None


def _cost_sum(values: Any) -> str | None:
    known = [Decimal(v) for v in values if v is not None]
    if not known:
        return None
    with localcontext() as context:
        context.prec = 60  # exact: far more digits than any sum of NUMERIC(30, 10) holds
        return format_cost(sum(known, Decimal(0)))
