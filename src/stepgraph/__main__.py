"""``python -m stepgraph``."""

from __future__ import annotations

from stepgraph.cli import main

raise SystemExit(main())
