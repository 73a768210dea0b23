"""Plans: the steps a version of a flow runs, with what a run needs worked out up front.

A run looks at each step's plan in the hot loop, so everything that depends only on the
flow version (failure modes, the prompt's variables, log-medians, speeds) is computed once.
"""

from __future__ import annotations

import math
import string
from dataclasses import dataclass

from stepgraph.demo.catalog import Flow
from stepgraph.demo.failures import FAILURES, FailureModes
from stepgraph.demo.language_models import MS_PER_TOKEN
from stepgraph.demo.organizations import FLOWS
from stepgraph.demo.steps import Step


@dataclass(frozen=True, slots=True)
class PlanStep:
    """One step as a version of its flow runs it."""

    step: Step
    order: int
    variables: tuple[str, ...]
    failures: FailureModes
    mu: float
    ms_per_token: float
    # Tokens of the system prompt wrapped around the template.
    prompt_overhead: int
    timeout_ms: int | None
    throttled: bool


def _variables(template: str | None) -> tuple[str, ...]:
    if template is None:
        return ()
    names = (name for _, name, _, _ in string.Formatter().parse(template) if name)
    return tuple(dict.fromkeys(names))


def plan(flow: Flow, version: int) -> tuple[PlanStep, ...]:
    """The steps that version ``version`` (an index into ``flow.versions``) runs, in order."""
    steps = [s for s in flow.steps if s.since <= version and (s.until is None or version < s.until)]
    planned = []
    for order, step in enumerate(steps, 1):
        variables = _variables(step.prompt)
        planned.append(
            PlanStep(
                step=step,
                order=order,
                variables=variables,
                failures=FAILURES[step.kind],
                mu=math.log(step.median_ms),
                ms_per_token=MS_PER_TOKEN.get(step.model or "", 0.0),
                prompt_overhead=40 + 20 * len(variables),
                timeout_ms=(step.config or {}).get("timeoutMs"),
                throttled=step.model is not None,
            )
        )
    return tuple(planned)


def _typical_run_ms(steps: tuple[PlanStep, ...]) -> int:
    # Medians plus the hand-off between steps: good enough to place live and cancelled jobs.
    return int(
        sum(p.step.median_ms + p.step.completion_tokens * p.ms_per_token + 150 for p in steps)
    )


PLANS = tuple(tuple(plan(flow, v) for v in range(len(flow.versions))) for flow in FLOWS)
"""The plan of every version of every flow: ``PLANS[flow index][version index]``."""

RUN_MS = tuple(tuple(_typical_run_ms(steps) for steps in plans) for plans in PLANS)
"""How long a run of each version of each flow typically takes, indexed as :data:`PLANS`."""
