"""Runs: one record through the steps of a flow version, one row per step.

A step's row is created when the step is enqueued and it starts a little later; a failed
step stops the run and the remaining steps are skipped. Whatever is still going on at the
run's cutoff (the anchor, or the moment its job was cancelled) is left running, pending or
cancelled.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any

from stepgraph.demo.failures import with_retries_ms
from stepgraph.demo.language_models import call_cost
from stepgraph.demo.plans import PlanStep
from stepgraph.demo.sampling import between, lognormal, random_uuid
from stepgraph.demo.timeline import iso

# Rare stalls (cold starts, slow upstreams) give the durations their long tail.
_STALL_RATE = 0.01
_MAX_STALL = 60.0
# Share of model calls that first wait for a slot under the provider's rate limit.
_THROTTLE_RATE = 0.15
_THROTTLE_MU = math.log(2500)


@dataclass(frozen=True, slots=True)
class Record:
    """The record a run works on; editor test runs have no id, name or metadata."""

    record_id: str | None
    name: str | None
    metadata: dict[str, Any] | None
    # The record's fields, which the templates of its flow's steps are filled from.
    ctx: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Run:
    """One run: a record, the plan it follows, and when it may start and must stop."""

    # The run's fields that sit between id and stepId in every row, in contract order.
    base: dict[str, Any]
    record: Record
    plan: tuple[PlanStep, ...]
    enqueued: int
    start: int
    # The anchor, or the moment the run was cancelled (then cancel_message is set).
    cutoff: int
    cancel_message: str | None


def _attempt_ms(rng: random.Random, p: PlanStep, completion: int) -> float:
    duration = lognormal(rng, p.mu, p.step.sigma)
    if completion:
        duration += completion * p.ms_per_token * lognormal(rng, 0.0, 0.25)
    if rng.random() < _STALL_RATE:
        duration *= 1.0 + 4.0 * min(rng.paretovariate(1.2), _MAX_STALL)
        # A configured timeout would end the attempt: timeouts are failures of their own.
        if p.timeout_ms is not None:
            duration = min(duration, p.timeout_ms * 0.98)
    return duration


def run_rows(rng: random.Random, run: Run) -> tuple[list[dict[str, Any]], int]:
    """The rows of one run, and when it finished (``cutoff`` if it was cut short)."""
    rows: list[dict[str, Any]] = []
    ctx, metadata, cutoff = run.record.ctx, run.record.metadata, run.cutoff
    created, start, end = run.enqueued, run.start, run.start
    failed_at: int | None = None
    for p in run.plan:
        step = p.step
        if p.throttled and failed_at is None and rng.random() < _THROTTLE_RATE:
            # Waiting for a slot under the model provider's rate limit.
            start += int(lognormal(rng, _THROTTLE_MU, 0.8))
        started_at = completed_at = output = error = prompt_text = cost = None
        duration = prompt_tokens = completion_tokens = total_tokens = None
        variables: dict[str, Any] | None = None
        retries = 0
        stop = False
        created_at = created
        if failed_at is not None:
            status, created_at = "skipped", failed_at
        elif start >= cutoff:
            # Enqueued, not yet started when the anchor (or the cancellation) came.
            status = "pending" if run.cancel_message is None else "cancelled"
            error, stop = run.cancel_message, True
        elif step.skip_unless is not None and ctx[step.skip_unless] != "true":
            status = "skipped"
            start = created + between(rng, 1, 40)
        else:
            failure, retries = p.failures.draw(rng, step.fail_rate)
            completion = 0
            if step.prompt is not None:
                prompt_text = step.prompt.format_map(ctx)
                variables = {name: ctx[name] for name in p.variables}
                prompt_tokens = p.prompt_overhead + len(prompt_text) // 4
                if step.context_tokens:
                    prompt_tokens += int(lognormal(rng, math.log(step.context_tokens), 0.5))
                if step.completion_tokens:
                    median = math.log(step.completion_tokens)
                    completion = max(1, int(lognormal(rng, median, 0.45)))
            attempt_ms = _attempt_ms(rng, p, completion)
            duration = with_retries_ms(rng, attempt_ms, failure, retries)
            step_end = start + duration
            started_at = iso(start)
            if step_end > cutoff:
                stop, prompt_tokens = True, None
                if run.cancel_message is None:
                    status, duration = "running", None
                else:
                    status, error, duration = "cancelled", run.cancel_message, cutoff - start
                    completed_at = iso(cutoff)
            else:
                completed_at = iso(step_end)
                if failure is None:
                    status, output = "completed", step.output.format_map(ctx)
                else:
                    status, error, failed_at = "failed", failure.message, step_end
                    if not failure.billed:
                        prompt_tokens = None
                if prompt_tokens is not None and step.model is not None:
                    completion_tokens = completion
                    total_tokens = prompt_tokens + completion
                    cost = call_cost(step.model, prompt_tokens, completion)
                created = end = step_end
                start = step_end + between(rng, 5, 300)
        rows.append(
            {
                "id": random_uuid(rng),
                **run.base,
                "stepId": step.step_id,
                "stepType": step.kind,
                "stepName": step.name,
                "order": p.order,
                "status": status,
                "startedAt": started_at,
                "completedAt": completed_at,
                "durationMs": duration,
                "outputPreview": output,
                "createdAt": iso(created_at),
                # Copies: a caller editing one row must not change another.
                "recordMetadata": dict(metadata) if metadata is not None else None,
                "stepConfig": dict(step.config) if step.config is not None else None,
                "inputVariables": variables,
                "resolvedPrompt": prompt_text,
                "modelUsed": step.model,
                "promptTokens": prompt_tokens,
                "completionTokens": completion_tokens,
                "totalTokens": total_tokens,
                "estimatedCost": cost,
                "errorMessage": error,
                "retryCount": retries,
            }
        )
        if stop:
            return rows, cutoff
    return rows, end
