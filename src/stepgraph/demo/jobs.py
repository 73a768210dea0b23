"""Jobs: the seed-determined stream of batches and single runs that yields the rows.

Jobs are either batches (one flow over many records, a few records at a time) or single
runs (one record, no batch). Several jobs are in progress at once and their runs are
interleaved, so any prefix spans several organizations and flows. Flow popularity and
batch sizes are skewed, so a few flows hold most rows.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import accumulate, islice
from typing import Any

from stepgraph.demo.organizations import DEMO_ORGANIZATIONS, FLOWS
from stepgraph.demo.plans import PLANS, RUN_MS
from stepgraph.demo.runs import Record, Run, run_rows
from stepgraph.demo.sampling import between, random_hex
from stepgraph.demo.timeline import (
    ANCHOR_MS,
    HOUR_CUM,
    HOUR_MS,
    HOURS,
    WINDOW_DAYS,
    WINDOW_START_MS,
    day_stamp,
)

DEMO_SEED = 7
"""The seed of the demo data loaded by ``stepgraph seed --demo`` and ``make serve``."""

# Jobs in progress at once; their runs are interleaved in the stream.
_ACTIVE_JOBS = 8
# The first jobs are far more often still in flight at the anchor, or cancelled, so
# that even a small demo shows every status (running and pending ones at the top of
# a newest-first page).
_EARLY_JOBS = 60
_EARLY_LIVE_RATE = 0.2
_LIVE_RATE = 0.01
_EARLY_CANCEL_RATE = 0.12
_BATCH_CANCEL_RATE = 0.025
_RUN_CANCEL_RATE = 0.015
_EDITOR_RUN_RATE = 0.05
_RERUN_RATE = 0.3
_RECENT_RECORDS = 32

_FLOW_INDEXES = range(len(FLOWS))
# A flow's share is of rows; a job of a flow with big batches and many steps yields many rows.
_FLOW_CUM = tuple(
    accumulate(
        flow.share / (flow.batching.expected_runs() * len(plans[-1]))
        for flow, plans in zip(FLOWS, PLANS, strict=True)
    )
)
_USERS = {org.id: org.user_ids for org in DEMO_ORGANIZATIONS}
_USER_CUM = {
    org_id: tuple(accumulate(1.0 / (rank + 1) for rank in range(len(users))))
    for org_id, users in _USERS.items()
}
_VERSION_BY_DAY = tuple(
    tuple(
        max(i for i, (_, first) in enumerate(flow.versions) if first <= day)
        for day in range(WINDOW_DAYS)
    )
    for flow in FLOWS
)


@dataclass(frozen=True, slots=True)
class Job:
    """One batch or single run of a flow, as submitted by a person."""

    # Indexes into FLOWS and into the flow's versions.
    flow: int
    version: int
    user_id: str
    batch_id: str | None
    # Records, and how many of them are run at a time.
    size: int
    workers: int
    submitted: int
    # The anchor, or the moment the job was cancelled (then cancel_message is set).
    cutoff: int
    cancel_message: str | None


class JobStream:
    """The endless, seed-determined sequence of jobs, interleaved run by run."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.jobs = 0
        self.batches_per_day: dict[str, int] = {}
        self.recent: dict[int, list[Record]] = {}

    def rows(self) -> Iterator[dict[str, Any]]:
        """The rows of the stream, run by run, without end."""
        rng = self.rng
        active = [self.runs(self.job()) for _ in range(_ACTIVE_JOBS)]
        while True:
            slot = between(rng, 0, _ACTIVE_JOBS)
            run = next(active[slot], None)
            if run is None:
                active[slot] = self.runs(self.job())
            else:
                yield from run

    def job(self) -> Job:
        """The next job: its flow and version, who submitted it when, and its size."""
        rng = self.rng
        early = self.jobs < _EARLY_JOBS
        self.jobs += 1
        f = rng.choices(_FLOW_INDEXES, cum_weights=_FLOW_CUM)[0]
        flow = FLOWS[f]
        users = _USERS[flow.organization_id]
        user_id = rng.choices(users, cum_weights=_USER_CUM[flow.organization_id])[0]
        batching = flow.batching
        batch = rng.random() < batching.share
        size = min(batching.cap, int(batching.size * rng.paretovariate(batching.alpha)))
        size = size if batch else 1
        workers = min(size, batching.workers)
        live = rng.random() < (_EARLY_LIVE_RATE if early else _LIVE_RATE)
        hour = HOURS[-1] if live else rng.choices(HOURS, cum_weights=HOUR_CUM)[0]
        version = _VERSION_BY_DAY[f][hour // 24]
        expected = -(-size // workers) * RUN_MS[f][version]
        if live:
            # Submitted recently enough that part of it is still going on at the anchor.
            submitted = ANCHOR_MS - int(expected * rng.uniform(0.05, 0.9))
        else:
            submitted = WINDOW_START_MS + hour * HOUR_MS + between(rng, 0, HOUR_MS)
        cutoff, cancel_message = ANCHOR_MS, None
        cancel_rate = _BATCH_CANCEL_RATE if batch else _RUN_CANCEL_RATE
        if rng.random() < (_EARLY_CANCEL_RATE if early else cancel_rate):
            cutoff = min(cutoff, submitted + int(expected * rng.uniform(0.1, 0.85)))
            cancel_message = "Batch cancelled by user" if batch else "Run cancelled by user"
        batch_id = None
        if batch:
            day = day_stamp(submitted)
            number = self.batches_per_day[day] = self.batches_per_day.get(day, 0) + 1
            batch_id = f"batch_{day}_{number:03d}"
        return Job(f, version, user_id, batch_id, size, workers, submitted, cutoff, cancel_message)

    def runs(self, job: Job) -> Iterator[list[dict[str, Any]]]:
        """The rows of ``job``, one run at a time, as its workers take its records."""
        rng = self.rng
        flow = FLOWS[job.flow]
        plan = PLANS[job.flow][job.version]
        # When each worker is next free; a batch enqueues all its records at submission.
        free = [job.submitted] * job.workers
        for _ in range(job.size):
            record = self.record(job.flow, single=job.batch_id is None)
            worker = free.index(min(free))
            start = free[worker] + between(rng, 20, 1500)
            base = {
                "userId": job.user_id,
                "organizationId": flow.organization_id,
                "batchExecutionId": job.batch_id,
                "executionSessionId": f"session_{day_stamp(start)}_{random_hex(rng, 12)}",
                "flowId": flow.flow_id,
                "flowVersionId": flow.versions[job.version][0],
                "recordId": record.record_id,
                "recordName": record.name,
            }
            run = Run(base, record, plan, job.submitted, start, job.cutoff, job.cancel_message)
            rows, free[worker] = run_rows(rng, run)
            yield rows

    def record(self, f: int, *, single: bool) -> Record:
        """The record of the next run of flow ``f``.

        A single run may rerun a record seen recently, or be a test run without one.
        """
        rng = self.rng
        recent = self.recent.setdefault(f, [])
        if single and recent and rng.random() < _RERUN_RATE:
            # Someone runs the flow again on a record it has already seen.
            return rng.choice(recent)
        flow = FLOWS[f]
        ctx = flow.make_record(rng)
        # Ids of what the run creates elsewhere, for output previews.
        ctx.update(
            ref=random_hex(rng, 10), task_ref=random_hex(rng, 10), message_ref=random_hex(rng, 16)
        )
        if single and rng.random() < _EDITOR_RUN_RATE:
            # A test run from the flow editor: sample input, no stored record.
            return Record(None, None, None, ctx)
        metadata = None
        if rng.random() < flow.metadata_rate:
            metadata = {key: ctx[key] for key in flow.metadata}
        record = Record(
            f"record_{random_hex(rng, 12)}", flow.record_name.format_map(ctx), metadata, ctx
        )
        if len(recent) < _RECENT_RECORDS:
            recent.append(record)
        else:
            recent[between(rng, 0, _RECENT_RECORDS)] = record
        return record


def generate_demo_step_results(rows: int, *, seed: int = 0) -> Iterator[dict[str, Any]]:
    """Yield exactly ``rows`` demo step results in the contract's JSON shape.

    The same ``(rows, seed)`` always gives the same rows, and a shorter stream is
    a prefix of a longer one with the same seed. Rows are made one run at a time,
    so millions can be streamed into a store in constant memory. Every row passes
    :func:`stepgraph.records.parse_step_result` and renders back to itself through
    :func:`stepgraph.records.step_result_json`. The demo store uses :data:`DEMO_SEED`.
    """
    if rows < 0:
        raise ValueError(f"rows must be zero or more, got {rows}")
    return islice(JobStream(seed).rows(), rows)
