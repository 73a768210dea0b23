"""stepgraph: a GraphQL gateway over flow step results."""

from __future__ import annotations

__version__ = "0.1.0"
