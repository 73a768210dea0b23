"""Errors every transport maps the same way (GraphQL codes, REST statuses)."""

from __future__ import annotations


class NotFound(LookupError):
    """Nothing with this id exists for the caller (or it belongs to someone else)."""

    def __init__(self, kind: str, identifier: str) -> None:
        super().__init__(f"{kind} {identifier!r} not found")
        self.kind = kind
        self.identifier = identifier


class SettingsError(ValueError):
    """A setting holds a value stepgraph cannot use; the message names the variable."""
