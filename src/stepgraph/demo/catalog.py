"""What the demo's catalog is made of: organizations, the flows they own, and batching."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from stepgraph.demo.steps import Step


@dataclass(frozen=True, slots=True)
class DemoOrganization:
    """One organization of the demo data: its people and the flows it owns."""

    id: str
    name: str
    user_ids: tuple[str, ...]
    flow_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Batching:
    """How a flow's jobs are sized: how many are batches, how big, how parallel."""

    # Share of jobs that are batches; a batch has size * Pareto(alpha) records, up to cap,
    # processed by `workers` records at a time.
    share: float
    size: int
    alpha: float
    cap: int
    workers: int

    def expected_runs(self) -> float:
        """The mean number of runs in a job of the flow."""
        # E[min(cap, size * X)] for X ~ Pareto(alpha); single runs count one.
        k = self.cap / self.size
        batch = self.size * (self.alpha - float(k ** (1 - self.alpha))) / (self.alpha - 1)
        return self.share * batch + (1 - self.share)


@dataclass(frozen=True, slots=True)
class Flow:
    """One flow of an organization: its versions, the records it runs on, and its steps."""

    flow_id: str
    organization_id: str
    # Relative share of all rows.
    share: float
    # (version id, first day it ran, counted from the window start; negative: before it).
    versions: tuple[tuple[str, int], ...]
    make_record: Callable[[random.Random], dict[str, Any]]
    record_name: str
    # Record fields kept as recordMetadata, for this share of records.
    metadata: tuple[str, ...]
    metadata_rate: float
    batching: Batching
    # Every step of every version; a step's since and until say which versions have it.
    steps: tuple[Step, ...]
