"""The GraphiQL page, served entirely from the package so it works without internet access.

The page template lives in ``stepgraph/templates/graphiql.html``; the React, GraphiQL and
explorer bundles it loads are pinned copies in ``stepgraph/static/graphiql`` (see the
``MANIFEST.json`` there and ``scripts/fetch_graphiql_assets.py``).
"""

from __future__ import annotations

import functools
import html
import json
import re
from collections.abc import Mapping
from importlib import resources
from pathlib import Path

from starlette.staticfiles import StaticFiles

__all__ = ["ASSETS_PATH", "graphiql_assets_app", "graphiql_html"]

ASSETS_PATH = "/graphiql/assets"
"""URL prefix under which :func:`graphiql_assets_app` is mounted and the page loads assets."""

_PACKAGE = "stepgraph"
_TEMPLATE = "templates/graphiql.html"
_ASSETS_DIR = "static/graphiql"

_PLACEHOLDER = re.compile(r"__STEPGRAPH_([A-Z_]+)__")

# JSON leaves these characters alone, but inside <script> they could end the element
# ("</script>") or start an HTML comment ("<!--"); their \u escapes mean the same to JSON and JS.
_SCRIPT_UNSAFE = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"})


@functools.cache
def _template() -> str:
    return resources.files(_PACKAGE).joinpath(_TEMPLATE).read_text(encoding="utf-8")


def _script_json(value: object) -> str:
    """Encode ``value`` as JSON that is safe to place verbatim inside an HTML ``<script>``.

    The result is ASCII-only (so U+2028/U+2029 are escaped too) and contains no ``<``, ``>``
    or ``&``; ``json.loads`` of it gives back ``value``.
    """
    return json.dumps(value, ensure_ascii=True).translate(_SCRIPT_UNSAFE)


def graphiql_html(
    *,
    example_query: str,
    default_headers: Mapping[str, str] | None = None,
    assets_path: str = ASSETS_PATH,
) -> str:
    """Render the offline GraphiQL page.

    ``example_query`` fills the query editor when the URL carries no shared query (``?q=``).
    ``default_headers`` is shown, as a JSON object, in the headers pane when the user has no
    headers stored from an earlier visit. ``assets_path`` is the URL prefix where
    :func:`graphiql_assets_app` is mounted.
    """
    values = {
        "ASSETS": html.escape(assets_path.rstrip("/"), quote=True),
        "EXAMPLE_QUERY": _script_json(example_query),
        "DEFAULT_HEADERS": _script_json(dict(default_headers or {})),
    }

    def substitute(match: re.Match[str]) -> str:
        return values[match.group(1)]

    # One pass, so placeholder-like text inside a value is never substituted again.
    return _PLACEHOLDER.sub(substitute, _template())


def _assets_directory() -> Path:
    directory = resources.files(_PACKAGE).joinpath(_ASSETS_DIR)
    # StaticFiles serves from the file system; an import from a zip archive has no such
    # folder, and failing here beats a page whose scripts all answer 404.
    if not isinstance(directory, Path) or not directory.is_dir():
        raise RuntimeError(
            f"GraphiQL assets not found as a folder on disk ({directory}); "
            f"install {_PACKAGE} from a wheel or source tree, not a zip archive"
        )
    return directory


def graphiql_assets_app() -> StaticFiles:
    """Return an ASGI app serving the pinned GraphiQL assets; mount it at :data:`ASSETS_PATH`."""
    return StaticFiles(directory=_assets_directory())
