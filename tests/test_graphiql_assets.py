"""The offline GraphiQL page: pinned assets, a page that loads only them, and safe embedding."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from importlib import resources
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from stepgraph.graphiql import ASSETS_PATH, graphiql_assets_app, graphiql_html

ASSETS_DIR = Path(str(resources.files("stepgraph").joinpath("static/graphiql")))
TEMPLATE = resources.files("stepgraph").joinpath("templates/graphiql.html").read_text("utf-8")
MANIFEST: dict[str, Any] = json.loads((ASSETS_DIR / "MANIFEST.json").read_text("utf-8"))

# Any absolute URL, whatever the case of its scheme, plus protocol-relative ones in attributes.
EXTERNAL_URL = re.compile(r"(?i)\b(?:https?|wss?|ftp)://|(?:src|href)\s*=\s*[\"']?//")
ATTRIBUTE_URL = re.compile(r"""\b(?:src|href)\s*=\s*["']([^"']*)["']""")
SCRIPT_OR_LINK = re.compile(r"<(?:script|link)\b[^>]*>", re.DOTALL)
TRICKY_QUERY = (
    '{ stepResults(flowId: "a\\"b") { data { id } } }\n'
    "# </script><script>alert(1)</script> <!-- --> & ' ` ${x} \u2028 \u2029 é 🚀\n"
    "# __STEPGRAPH_ASSETS__ __STEPGRAPH_DEFAULT_HEADERS__\n"
)


def js_literal(page: str, name: str) -> Any:
    """Return the JSON value the page assigns to the JavaScript constant ``name``."""
    match = re.search(rf"^\s*const {name} = (.*);$", page, re.MULTILINE)
    assert match is not None, f"const {name} not found in the page"
    return json.loads(match.group(1))


def render(**kwargs: Any) -> str:
    kwargs.setdefault("example_query", "{ __typename }")
    return graphiql_html(**kwargs)


def sha384_sri(path: Path) -> str:
    return "sha384-" + base64.b64encode(hashlib.sha384(path.read_bytes()).digest()).decode()


def test_manifest_files_exist_and_match_their_sha256() -> None:
    files: dict[str, dict[str, str]] = MANIFEST["files"]
    assert files, "MANIFEST.json lists no files"
    for name, entry in files.items():
        path = ASSETS_DIR / name
        assert path.is_file(), f"{name} is listed in MANIFEST.json but missing"
        assert hashlib.sha256(path.read_bytes()).hexdigest() == entry["sha256"], name
        assert entry["source"].startswith("package/"), name


def test_assets_folder_holds_only_listed_files() -> None:
    on_disk = {p.name for p in ASSETS_DIR.iterdir()}
    assert on_disk == {*MANIFEST["files"], "MANIFEST.json"}


def test_every_package_is_pinned_and_licensed() -> None:
    packages = {p["name"]: p for p in MANIFEST["packages"]}
    expected = {
        "react": "18.2.0",
        "react-dom": "18.2.0",
        "graphiql": "3.8.3",
        "@graphiql/plugin-explorer": "1.0.2",
        "js-cookie": "3.0.5",
    }
    for name, version in expected.items():
        assert packages[name]["version"] == version
    for package in packages.values():
        assert package["integrity"].startswith("sha512-")
        assert package["license"] == "MIT"
        licence_files = [
            name
            for name, entry in MANIFEST["files"].items()
            if entry["package"] == package["name"] and entry["source"] == "package/LICENSE"
        ]
        # A package whose tarball has no LICENSE must say why in the manifest.
        assert licence_files or package.get("note"), package["name"]
    for name, entry in MANIFEST["files"].items():
        assert packages[entry["package"]]["version"] == entry["version"], name


def test_template_and_page_reference_no_external_host() -> None:
    page = render(default_headers={"Authorization": "Bearer demo"})
    for text in (TEMPLATE, page):
        assert EXTERNAL_URL.search(text) is None, EXTERNAL_URL.search(text)
        for word in ("unpkg", "cdn", "googleapis", "jsdelivr", "fonts."):
            assert word not in text.lower(), word


def test_page_loads_only_listed_assets_with_matching_integrity() -> None:
    page = render()
    tags = SCRIPT_OR_LINK.findall(page)
    referenced: list[str] = []
    for tag in tags:
        url_match = ATTRIBUTE_URL.search(tag)
        if url_match is None:
            continue  # an inline <script>
        url = url_match.group(1)
        if url.startswith("data:"):
            continue
        assert url.startswith(ASSETS_PATH + "/"), url
        name = url.removeprefix(ASSETS_PATH + "/")
        assert name in MANIFEST["files"], name
        integrity = re.search(r'integrity="([^"]+)"', tag)
        assert integrity is not None, f"{name} is loaded without an integrity value"
        assert integrity.group(1) == sha384_sri(ASSETS_DIR / name), name
        referenced.append(name)
    assert set(referenced) >= {
        "react.production.min.js",
        "react-dom.production.min.js",
        "graphiql.min.js",
        "graphiql.min.css",
        "graphiql-plugin-explorer.umd.js",
        "graphiql-plugin-explorer.css",
    }
    # Every URL in the page, not only those in <script> and <link>, stays local.
    for url in ATTRIBUTE_URL.findall(page):
        assert url.startswith((ASSETS_PATH + "/", "data:")), url


def test_assets_are_the_files_strawberry_loads_for_the_same_versions() -> None:
    stock = resources.files("strawberry").joinpath("static/graphiql.html").read_text("utf-8")
    pairs = re.findall(
        r'src="https://unpkg\.com/([^"]+)"\s+integrity="([^"]+)"'
        r'|href="https://unpkg\.com/([^"]+)"\s+integrity="([^"]+)"',
        stock,
    )
    by_source = {
        f"{entry['package']}@{entry['version']}/{entry['source'].removeprefix('package/')}": name
        for name, entry in MANIFEST["files"].items()
    }
    compared = 0
    for src_url, src_sri, href_url, href_sri in pairs:
        url, sri = (src_url, src_sri) if src_url else (href_url, href_sri)
        if url in by_source:
            assert sha384_sri(ASSETS_DIR / by_source[url]) == sri, url
            compared += 1
    if compared == 0:
        pytest.skip("Strawberry's page now pins other versions; nothing to compare")


def test_example_query_is_embedded_safely() -> None:
    page = render(example_query=TRICKY_QUERY)
    assert js_literal(page, "EXAMPLE_QUERY") == TRICKY_QUERY
    # The query cannot add or close elements: the page has exactly the template's tags.
    for marker in ("</script", "<script", "<!--"):
        assert page.count(marker) == TEMPLATE.count(marker), marker
    # Placeholder-like text inside the query is left alone.
    assert "__STEPGRAPH_ASSETS__ __STEPGRAPH_DEFAULT_HEADERS__" in js_literal(page, "EXAMPLE_QUERY")


def test_no_placeholder_is_left_unsubstituted() -> None:
    assert re.search(r"__STEPGRAPH_[A-Z_]+__", render()) is None


def test_default_headers_appear_in_the_page() -> None:
    headers = {"Authorization": "Bearer </script>", "X-Org": "acme & co"}
    page = render(default_headers=headers)
    assert js_literal(page, "DEFAULT_HEADERS") == headers
    assert "</script>" not in page.split("const DEFAULT_HEADERS", 1)[1].split("\n", 1)[0]


@pytest.mark.parametrize("headers", [None, {}])
def test_no_default_headers_leaves_an_empty_object(headers: dict[str, str] | None) -> None:
    assert js_literal(render(default_headers=headers), "DEFAULT_HEADERS") == {}


def test_assets_path_is_configurable() -> None:
    page = render(assets_path="/prefix/static/")
    assert '"/prefix/static/graphiql.min.js"' in page
    assert ASSETS_PATH not in page


def test_title_names_the_product() -> None:
    assert "<title>stepgraph GraphiQL</title>" in render()


async def test_assets_app_serves_javascript_and_css() -> None:
    app = Starlette(routes=[Mount(ASSETS_PATH, app=graphiql_assets_app())])
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        script = await client.get(f"{ASSETS_PATH}/graphiql.min.js")
        assert script.status_code == 200
        assert "javascript" in script.headers["content-type"]
        assert (
            hashlib.sha256(script.content).hexdigest()
            == (MANIFEST["files"]["graphiql.min.js"]["sha256"])
        )
        style = await client.get(f"{ASSETS_PATH}/graphiql.min.css")
        assert style.status_code == 200
        assert style.headers["content-type"].startswith("text/css")
        assert (await client.get(f"{ASSETS_PATH}/missing.js")).status_code == 404
        # Only the assets folder is exposed, not the rest of the package.
        assert (await client.get(f"{ASSETS_PATH}/../../graphiql.py")).status_code == 404
        assert (await client.get(f"{ASSETS_PATH}/%2e%2e/%2e%2e/graphiql.py")).status_code == 404
