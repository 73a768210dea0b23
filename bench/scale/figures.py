"""Timings over the large datasets, through the store functions the API itself calls.

Every figure is one call of a product store function (``reads.fetch_page``,
``keyset.fetch_cursor_page``, ``reads.count_matching``, ``stats.fetch_stats``,
``stats.fetch_step_stats``) on a connection checked out for it, as a request does,
scoped to the organization owning the flow. All figures are about the dataset's
largest flow. After one unrecorded warm-up pass, the runs are interleaved: each run
times every figure once on every store, starting at a different figure each run, so
that a burst of load on the machine spreads over all figures instead of one.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from bench.scale.common import median, say
from bench.scale.datasets import Dataset
from stepgraph.cursors import Position
from stepgraph.domain import SortField, SortOrder, StepStatus
from stepgraph.query import StepResultCursorQuery, StepResultFilter, StepResultQuery
from stepgraph.store import keyset, reads, stats

PAGE = 25
# Deep pages keep at least this many rows after them, so that a page is always full.
_TAIL = 1000


@dataclass(frozen=True, slots=True)
class Target:
    """What the figures of one store are about: the largest flow and a deep position in it."""

    flow_id: str
    organization_id: str
    flow_rows: int
    completed_rows: int
    depth: int
    position: Position


Figure = Callable[[AsyncEngine, Target], Awaitable[object]]


def _query(target: Target, **changes: Any) -> StepResultQuery:
    return StepResultQuery(flow_id=target.flow_id, limit=PAGE, **changes)


def _cursor_query(target: Target, after: Position | None) -> StepResultCursorQuery:
    return StepResultCursorQuery(
        filter=StepResultFilter(flow_id=target.flow_id),
        sort_by=SortField.CREATED_AT,
        sort_order=SortOrder.DESC,
        size=PAGE,
        after=after,
    )


async def _page(engine: AsyncEngine, target: Target, query: StepResultQuery) -> int:
    async with engine.connect() as connection:
        page = await reads.fetch_page(connection, query, organization_id=target.organization_id)
    return len(page.rows)


async def first_page_filtered(engine: AsyncEngine, target: Target) -> object:
    """First page of the largest flow filtered by status, newest first."""
    return await _page(engine, target, _query(target, status=StepStatus.COMPLETED))


async def first_page(engine: AsyncEngine, target: Target) -> object:
    """First page of the largest flow, no filter, newest first."""
    return await _page(engine, target, _query(target))


async def first_page_tokens_asc(engine: AsyncEngine, target: Target) -> object:
    """First page sorted by a nullable column (totalTokens), ascending, NULLs last."""
    return await _page(
        engine, target, _query(target, sort_by=SortField.TOTAL_TOKENS, sort_order=SortOrder.ASC)
    )


async def first_page_tokens_desc(engine: AsyncEngine, target: Target) -> object:
    """First page sorted by a nullable column (totalTokens), descending, NULLs last."""
    return await _page(
        engine, target, _query(target, sort_by=SortField.TOTAL_TOKENS, sort_order=SortOrder.DESC)
    )


async def offset_deep(engine: AsyncEngine, target: Target) -> object:
    """The offset page at ``depth``, newest first."""
    return await _page(engine, target, _query(target, offset=target.depth))


async def _cursor_page(engine: AsyncEngine, target: Target, after: Position | None) -> object:
    async with engine.connect() as connection:
        page = await keyset.fetch_cursor_page(
            connection, _cursor_query(target, after), organization_id=target.organization_id
        )
    return [row["id"] for row in page.rows]


async def cursor_first(engine: AsyncEngine, target: Target) -> object:
    """The first cursor page (no ``after``), newest first."""
    return await _cursor_page(engine, target, None)


async def cursor_deep(engine: AsyncEngine, target: Target) -> object:
    """The cursor page after the row at ``depth``, newest first."""
    return await _cursor_page(engine, target, target.position)


async def count_flow(engine: AsyncEngine, target: Target) -> object:
    """``totalCount`` of the whole largest flow."""
    async with engine.connect() as connection:
        return await reads.count_matching(
            connection,
            StepResultFilter(flow_id=target.flow_id),
            organization_id=target.organization_id,
        )


async def count_completed(engine: AsyncEngine, target: Target) -> object:
    """``totalCount`` of the largest flow filtered by status (completed: most of its rows)."""
    async with engine.connect() as connection:
        return await reads.count_matching(
            connection,
            StepResultFilter(flow_id=target.flow_id, status=StepStatus.COMPLETED),
            organization_id=target.organization_id,
        )


async def stats_flow(engine: AsyncEngine, target: Target) -> object:
    """``stepResultStats`` of the whole largest flow (counts, sums, duration percentiles)."""
    async with engine.connect() as connection:
        measures = await stats.fetch_stats(
            connection,
            StepResultFilter(flow_id=target.flow_id),
            organization_id=target.organization_id,
        )
    return measures.count


async def stats_by_step(engine: AsyncEngine, target: Target) -> object:
    """The same measures per step of the largest flow."""
    async with engine.connect() as connection:
        steps = await stats.fetch_step_stats(
            connection,
            StepResultFilter(flow_id=target.flow_id),
            organization_id=target.organization_id,
        )
    return len(steps)


FIGURES: dict[str, Figure] = {
    "first page, status filter": first_page_filtered,
    "first page, no filter": first_page,
    "first page, sortBy totalTokens asc": first_page_tokens_asc,
    "first page, sortBy totalTokens desc": first_page_tokens_desc,
    "cursor page, first": cursor_first,
    "cursor page, at depth": cursor_deep,
    "offset page, at depth": offset_deep,
    "totalCount, whole flow": count_flow,
    "totalCount, status filter": count_completed,
    "stats, whole flow": stats_flow,
    "stats by step, whole flow": stats_by_step,
}


async def target_of(engine: AsyncEngine, dataset: Dataset, depth: int) -> Target:
    """The largest flow of ``dataset`` and the position ``depth`` rows into it."""
    flow_id = dataset.manifest.largest_flow
    flow_rows = dataset.manifest.flows[flow_id]
    async with engine.connect() as connection:
        owner = await reads.fetch_flows(connection, [flow_id])
        organization_id = str(owner[flow_id]["organization_id"])
        completed = await reads.count_matching(
            connection, StepResultFilter(flow_id=flow_id, status=StepStatus.COMPLETED)
        )
        # Round deep positions to ten thousand rows; a small flow is read as deep as it goes.
        reachable = max(0, flow_rows - _TAIL) // 10_000 * 10_000
        deepest = min(depth, reachable)
        # The cursor of the row just before the deep page, as a client paging there holds it.
        before = await reads.fetch_page(
            connection, StepResultQuery(flow_id=flow_id, limit=1, offset=deepest - 1)
        )
    row = before.rows[0]
    return Target(
        flow_id=flow_id,
        organization_id=organization_id,
        flow_rows=flow_rows,
        completed_rows=completed,
        depth=deepest,
        position=keyset.position_of(row, SortField.CREATED_AT),
    )


async def _check_same_rows(engine: AsyncEngine, target: Target) -> None:
    # The deep cursor page and the deep offset page are the same rows: else the figures
    # would compare different work.
    by_cursor = await cursor_deep(engine, target)
    async with engine.connect() as connection:
        page = await reads.fetch_page(connection, _query(target, offset=target.depth))
    by_offset = [row["id"] for row in page.rows]
    if by_cursor != by_offset:
        raise AssertionError("the deep cursor page and the deep offset page differ")


async def measure(datasets: Mapping[str, Dataset], *, runs: int, depth: int) -> dict[str, Any]:
    """Time every figure ``runs`` times on every dataset, interleaved; medians in ms."""
    engines = {kind: dataset.store.engine() for kind, dataset in datasets.items()}
    try:
        targets = {
            kind: await target_of(engines[kind], dataset, depth)
            for kind, dataset in datasets.items()
        }
        for kind, target in targets.items():
            await _check_same_rows(engines[kind], target)
        samples: dict[str, dict[str, list[float]]] = {
            kind: {name: [] for name in FIGURES} for kind in datasets
        }
        answers: dict[str, dict[str, object]] = {kind: {} for kind in datasets}
        names = list(FIGURES)
        for run in range(-1, runs):
            started = time.perf_counter()
            # Each run starts one figure later: no figure always follows the same one.
            shift = max(run, 0) % len(names)
            for name in names[shift:] + names[:shift]:
                for kind, engine in engines.items():
                    began = time.perf_counter()
                    answer = await FIGURES[name](engine, targets[kind])
                    seconds = time.perf_counter() - began
                    if run >= 0:
                        samples[kind][name].append(seconds * 1000)
                    answers[kind][name] = answer
            label = "warm-up" if run < 0 else f"run {run + 1}/{runs}"
            say(f"figures: {label} in {time.perf_counter() - started:,.1f} s")
    finally:
        for engine in engines.values():
            await engine.dispose()
    return {
        "runs": runs,
        "page_size": PAGE,
        "stores": {
            kind: {
                "flow_id": targets[kind].flow_id,
                "flow_rows": targets[kind].flow_rows,
                "completed_rows": targets[kind].completed_rows,
                "depth": targets[kind].depth,
                "dataset_rows": datasets[kind].manifest.rows,
                "figures": {
                    name: {
                        "median_ms": median(values),
                        "min_ms": min(values),
                        "max_ms": max(values),
                        "samples_ms": values,
                        "answer": _describe(answers[kind][name]),
                    }
                    for name, values in samples[kind].items()
                },
            }
            for kind in datasets
        },
    }


def _describe(answer: object) -> object:
    return len(answer) if isinstance(answer, list) else answer


# Reporting -----------------------------------------------------------------------------

_RATIOS = (
    ("cursor page at depth / first cursor page", "cursor page, at depth", "cursor page, first"),
    ("offset page at depth / first page", "offset page, at depth", "first page, no filter"),
    (
        "offset page at depth / cursor page at depth",
        "offset page, at depth",
        "cursor page, at depth",
    ),
)


def _ms(value: float) -> str:
    return f"{value:,.1f}" if value < 100 else f"{value:,.0f}"


def figures_table(measured: Mapping[str, Any]) -> str:
    """Markdown: one row per figure, one column group per store; then the ratios."""
    stores = measured["stores"]
    kinds = list(stores)
    header = ["figure", *(f"{k} median ms (min–max)" for k in kinds)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name in [n for n in FIGURES if all(n in stores[k]["figures"] for k in kinds)]:
        cells = [name]
        for kind in kinds:
            figure = stores[kind]["figures"][name]
            cells.append(
                f"{_ms(figure['median_ms'])} ({_ms(figure['min_ms'])}–{_ms(figure['max_ms'])})"
            )
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "| ratio of medians | " + " | ".join(kinds) + " |"]
    lines.append("|" + "---|" * (len(kinds) + 1))
    for label, top, bottom in _RATIOS:
        cells = [label]
        for kind in kinds:
            figures = stores[kind]["figures"]
            cells.append(f"{figures[top]['median_ms'] / figures[bottom]['median_ms']:.2f}x")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _load_line(step: Mapping[str, Any]) -> str:
    def rounded(load: Any) -> str:
        return " / ".join(f"{value:.1f}" for value in load)

    start = step.get("load_average_at_start")
    end = rounded(step["machine"]["load_average"])
    at_start = f"{rounded(start)} at the start, " if start else ""
    code = step["machine"]["code"]
    return f"Load average (1 / 5 / 15 min): {at_start}{end} at the end; code {code}."


def markdown(results: Mapping[str, Any]) -> str:
    """The tables of ``results.json`` as Markdown, for RESULTS.md."""
    parts = ["# Scale benchmark tables (generated by `python -m bench.scale`)", ""]
    datasets = results.get("datasets", {})
    if datasets:
        parts += [
            "| store | rows | largest flow (rows) | build s (load + indexes) |",
            "|---|---|---|---|",
        ]
        for kind, d in datasets.items():
            largest = max(d["flows"], key=lambda f: d["flows"][f])
            parts.append(
                f"| {kind} | {d['rows']:,} | {largest} ({d['flows'][largest]:,}) | "
                f"{d['build_seconds']:,.0f} ({d['load_seconds']:,.0f} + "
                f"{d['index_seconds']:,.0f}) |"
            )
        parts.append("")
    if "figures" in results:
        measured = results["figures"]
        parts.append(f"Figures: median of {measured['runs']} interleaved runs, page size 25.")
        for kind, store in measured["stores"].items():
            parts.append(
                f"- {kind}: flow {store['flow_id']} ({store['flow_rows']:,} rows, "
                f"{store['completed_rows']:,} completed), depth {store['depth']:,}"
            )
        parts += ["", figures_table(measured), ""]
        parts.append(_load_line(measured))
        parts.append("")
    if "import" in results:
        imported = results["import"]
        parts.append(
            f"Import: {imported['rows']:,} rows per run, median of {imported['runs']} runs."
        )
        parts += ["", imported["table"], ""]
        parts.append(_load_line(imported))
        parts.append("")
    if "explain" in results:
        problems = results["explain"]["problems"]
        parts.append(f"EXPLAIN check: {len(problems)} problem(s).")
        parts += [f"- {p}" for p in problems]
        parts.append("")
    return "\n".join(parts)
