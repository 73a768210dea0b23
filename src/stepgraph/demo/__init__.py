"""Demo step results: a deterministic, realistic stream of flow runs.

``generate_demo_step_results(rows, seed=...)`` yields contract-shaped step
results (the REST row: camelCase keys in the contract's order, JSON-ready
values) for four organizations and their flows over the six weeks before
:data:`DEMO_ANCHOR`. The stream depends only on the seed, so the first ``n``
rows of a longer stream are exactly the rows of a shorter one.

How the data is shaped:

* Jobs are either batches (one flow over many records, a few records at a
  time) or single runs (one record, no batch). Several jobs are in progress at
  once and their runs are interleaved, so any prefix spans several
  organizations and flows. Flow popularity and batch sizes are skewed, so a few
  flows hold most rows.
* A run executes its flow version's steps in order. A step's row is created
  when the step is enqueued and it starts a little later, so createdAt <=
  startedAt <= completedAt. A failed step stops the run and the remaining
  steps are skipped; condition steps skip the step they guard.
* The anchor is "now": whatever would still be going on then is ``running`` or
  ``pending``; cancelled batches and runs leave ``cancelled`` rows behind.

Where things are:

* :mod:`~stepgraph.demo.organizations`: the four organizations, one module each, with
  their people and flows; :mod:`~stepgraph.demo.catalog` says what those are made of.
* :mod:`~stepgraph.demo.steps`, :mod:`~stepgraph.demo.language_models`,
  :mod:`~stepgraph.demo.failures`: kinds of steps, the models they call, how they fail.
* :mod:`~stepgraph.demo.record_fields`: the records flows run on and the words they are
  drawn from.
* :mod:`~stepgraph.demo.jobs` schedules jobs; :mod:`~stepgraph.demo.runs` turns each run
  into rows, following its :mod:`~stepgraph.demo.plans` plan over the
  :mod:`~stepgraph.demo.timeline`.
"""

from __future__ import annotations

from stepgraph.demo.catalog import DemoOrganization
from stepgraph.demo.jobs import DEMO_SEED, generate_demo_step_results
from stepgraph.demo.organizations import DEMO_ORGANIZATIONS
from stepgraph.demo.timeline import DEMO_ANCHOR

__all__ = [
    "DEMO_ANCHOR",
    "DEMO_ORGANIZATIONS",
    "DEMO_SEED",
    "DemoOrganization",
    "generate_demo_step_results",
]
