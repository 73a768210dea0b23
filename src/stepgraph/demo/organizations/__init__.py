"""The organizations of the demo data, one module each, and the flows they own.

The order of :data:`FLOWS` is part of what a seed means: jobs pick flows by index, so
reordering the flows changes the stream as much as editing them does.
"""

from __future__ import annotations

from stepgraph.demo.catalog import DemoOrganization, Flow
from stepgraph.demo.organizations import brightcart, helpwise, ledgerly, northwind

DEMO_ORGANIZATIONS: tuple[DemoOrganization, ...] = (
    northwind.ORGANIZATION,
    ledgerly.ORGANIZATION,
    helpwise.ORGANIZATION,
    brightcart.ORGANIZATION,
)
"""The organizations of the demo data; every flow belongs to exactly one of them."""

FLOWS: tuple[Flow, ...] = (*northwind.FLOWS, *ledgerly.FLOWS, *helpwise.FLOWS, *brightcart.FLOWS)
"""Every flow of the demo data, organization by organization."""
