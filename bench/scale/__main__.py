"""``python -m bench.scale``: see :mod:`bench.scale.run`."""

from __future__ import annotations

import sys

from bench.scale.run import main

sys.exit(main())
