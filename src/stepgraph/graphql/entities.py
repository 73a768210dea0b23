"""Checking federation `_entities` representations before they reach the resolvers."""

from __future__ import annotations

from typing import Any

# The entity types of this subgraph and the key fields of their representations.
ENTITY_KEYS = {"Flow": frozenset({"id"}), "StepResult": frozenset({"id"})}


def representation_problem(representation: Any) -> str | None:
    """What is wrong with one representation a router sent, or None when it is usable."""
    if not isinstance(representation, dict):
        return "must be an object"
    typename = representation.get("__typename")
    keys = ENTITY_KEYS.get(typename) if isinstance(typename, str) else None
    if keys is None:
        return f"must have a `__typename` among {', '.join(sorted(ENTITY_KEYS))}"
    if set(representation) - {"__typename"} != keys:
        return f"of a {typename} must have exactly `__typename` and {', '.join(sorted(keys))}"
    for key in keys:
        value = representation[key]
        if isinstance(value, bool) or not isinstance(value, str | int):
            return f"must have a string or integer `{key}`"
        if isinstance(value, str) and (value == "" or "\x00" in value):
            return f"must have a non-empty `{key}` without NUL characters"
    return None
