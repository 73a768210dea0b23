"""The demo's fixed data is written as plain text: word lists and fixed-width tables."""

from __future__ import annotations

import re


def words(text: str) -> tuple[str, ...]:
    """The whitespace-separated words of ``text``."""
    return tuple(text.split())


def table(text: str) -> tuple[tuple[str, ...], ...]:
    """Rows of a fixed-width table: columns are separated by two or more spaces."""
    return tuple(tuple(re.split(r"\s{2,}", line.strip())) for line in text.strip().splitlines())
