#!/usr/bin/env python3
"""Fetch the pinned GraphiQL browser assets into ``src/stepgraph/static/graphiql``.

The GraphiQL page must work without internet access, so the React, GraphiQL and explorer
bundles it loads are shipped inside the package. This script makes that copy reproducible:
each package is downloaded with ``npm pack`` at an exact version, checked against a pinned
``sha512`` integrity value, and only the files the page needs (plus licence texts) are
copied out under flat, self-describing names. ``MANIFEST.json`` records where every file
came from and its sha256.

Usage::

    python scripts/fetch_graphiql_assets.py          # (re)write the committed assets
    python scripts/fetch_graphiql_assets.py --check  # fail if they differ from a fresh fetch

Needs ``npm`` on PATH and access to the npm registry.
"""

from __future__ import annotations

import argparse
import base64
import filecmp
import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
ASSETS_DIR = REPO_ROOT / "src" / "stepgraph" / "static" / "graphiql"
MANIFEST_NAME = "MANIFEST.json"


@dataclass(frozen=True)
class Package:
    """One npm package version and the files taken from its tarball."""

    name: str
    version: str
    integrity: str
    # (path inside the tarball, file name in the assets folder)
    files: tuple[tuple[str, str], ...]
    # Why a file is shipped when it is not obvious from the package alone.
    note: str | None = None


# Same versions as the page Strawberry ships, so behaviour matches the upstream GraphiQL view.
# Integrity values come from `npm view <name>@<version> dist.integrity`.
PACKAGES: tuple[Package, ...] = (
    Package(
        name="react",
        version="18.2.0",
        integrity=(
            "sha512-/3IjMdb2L9QbBdWiW5e3P2/npwMBaU9mHCSCUzNln0ZCYbcfTsGbTJrU/kGemdH2IWmB2ioZ"
            "+zkxtmq6g09fGQ=="
        ),
        files=(
            ("package/umd/react.production.min.js", "react.production.min.js"),
            ("package/LICENSE", "react.LICENSE.txt"),
        ),
    ),
    Package(
        name="react-dom",
        version="18.2.0",
        integrity=(
            "sha512-6IMTriUmvsjHUjNtEDudZfuDQUoWXVxKHhlEGSk81n4YFS+r/Kl99wXiwlVXtPBtJenozv2P"
            "+hxDsw9eA7Xo6g=="
        ),
        files=(
            ("package/umd/react-dom.production.min.js", "react-dom.production.min.js"),
            ("package/LICENSE", "react-dom.LICENSE.txt"),
        ),
    ),
    Package(
        name="graphiql",
        version="3.8.3",
        integrity=(
            "sha512-cuPDYtXVKV86Pu5PHBX642Odi/uVEE2y1Jxq5rGO/Qy1G2lRp7ZZ7a/T30RzxhuLSWo9zUbz"
            "q0P3U49//H0Ugw=="
        ),
        files=(
            ("package/graphiql.min.js", "graphiql.min.js"),
            ("package/graphiql.min.css", "graphiql.min.css"),
            ("package/LICENSE", "graphiql.LICENSE.txt"),
        ),
    ),
    Package(
        name="@graphiql/plugin-explorer",
        version="1.0.2",
        integrity=(
            "sha512-9j+kg2UjtLZD5EBmGjeWHkoVVxtbShYg2DzbUVebibnZYZM/iMBEF4vaccXJIAm5KaomIPLx"
            "0aoNs4LbODyc3Q=="
        ),
        files=(
            ("package/dist/index.umd.js", "graphiql-plugin-explorer.umd.js"),
            ("package/dist/style.css", "graphiql-plugin-explorer.css"),
        ),
        note=(
            "The tarball ships no LICENSE file; package.json declares MIT. Its UMD bundle "
            "includes graphiql-explorer, whose licence text is shipped alongside."
        ),
    ),
    Package(
        # Bundled inside the explorer plugin's UMD build; fetched only for its licence text.
        name="graphiql-explorer",
        version="0.9.0",
        integrity=(
            "sha512-fZC/wsuatqiQDO2otchxriFO0LaWIo/ovF/CQJ1yOudmY0P7pzDiP+l9CEHUiWbizk3e99x6"
            "DQG4XG1VxA+d6A=="
        ),
        files=(("package/LICENSE", "graphiql-explorer.LICENSE.txt"),),
        note="Bundled into graphiql-plugin-explorer.umd.js; only its licence is shipped.",
    ),
    Package(
        name="js-cookie",
        version="3.0.5",
        integrity=(
            "sha512-cEiJEAEoIbWfCZYKWhVwFuvPX1gETRYPw6LlaTKoxD3s2AkXzkCjnp6h0V77ozyqj0jakteJ"
            "4YqDJT830+lVGw=="
        ),
        files=(
            ("package/dist/js.cookie.min.js", "js.cookie.min.js"),
            ("package/LICENSE", "js-cookie.LICENSE.txt"),
        ),
    ),
)


class AssetError(RuntimeError):
    """A download, integrity or drift problem that should stop the script."""


def sri_sha512(data: bytes) -> str:
    """Return ``data``'s digest in npm's Subresource Integrity form (``sha512-<base64>``)."""
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode("ascii")


def npm_pack(package: Package, workdir: Path) -> Path:
    """Download ``package`` with ``npm pack`` into ``workdir`` and return the tarball path."""
    spec = f"{package.name}@{package.version}"
    result = subprocess.run(
        ["npm", "pack", "--json", "--ignore-scripts", "--pack-destination", str(workdir), spec],
        cwd=workdir,
        check=False,
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise AssetError(f"npm pack {spec} failed:\n{result.stderr.strip()}")
    try:
        filename = json.loads(result.stdout)[0]["filename"]
    except (ValueError, LookupError, TypeError) as exc:
        raise AssetError(f"npm pack {spec}: unexpected output {result.stdout!r}") from exc
    # Scoped packages come back as "@scope/name-1.0.0.tgz" but land as "scope-name-1.0.0.tgz".
    tarball = workdir / str(filename).lstrip("@").replace("/", "-")
    if not tarball.is_file():
        raise AssetError(f"npm pack {spec}: expected {tarball} to exist")
    return tarball


def extract(package: Package, tarball: Path, dest: Path) -> tuple[str, dict[str, dict[str, str]]]:
    """Verify ``tarball`` and copy the package's selected files into ``dest``.

    Returns the licence declared in the package's ``package.json`` and the manifest entries
    for the copied files, keyed by their file name.
    """
    data = tarball.read_bytes()
    actual = sri_sha512(data)
    if actual != package.integrity:
        raise AssetError(
            f"{package.name}@{package.version}: integrity mismatch\n"
            f"  pinned: {package.integrity}\n  got:    {actual}"
        )
    entries: dict[str, dict[str, str]] = {}
    with tarfile.open(tarball, mode="r:gz") as archive:
        metadata = archive.extractfile("package/package.json")
        if metadata is None:
            raise AssetError(f"{package.name}@{package.version}: no package.json")
        declared = json.loads(metadata.read())
        if (declared.get("name"), declared.get("version")) != (package.name, package.version):
            raise AssetError(f"{package.name}@{package.version}: tarball is for another package")
        license_id = str(declared.get("license", "UNKNOWN"))
        for source, target in package.files:
            # Members are read as bytes and written under names chosen here, so archive
            # paths can never place files outside the assets folder.
            member = archive.extractfile(source)
            if member is None:
                raise AssetError(f"{package.name}@{package.version}: {source} is not a file")
            content = member.read()
            (dest / target).write_bytes(content)
            entries[target] = {
                "package": package.name,
                "version": package.version,
                "source": source,
                "sha256": hashlib.sha256(content).hexdigest(),
            }
    return license_id, entries


def build(dest: Path, workdir: Path) -> None:
    """Fetch every pinned package and write the assets plus ``MANIFEST.json`` into ``dest``."""
    files: dict[str, dict[str, str]] = {}
    packages: list[dict[str, str]] = []
    for package in PACKAGES:
        print(f"fetching {package.name}@{package.version}", file=sys.stderr)
        tarball = npm_pack(package, workdir)
        license_id, entries = extract(package, tarball, dest)
        for target, entry in entries.items():
            if target in files:
                raise AssetError(f"two packages write {target}")
            files[target] = entry
        described = {
            "name": package.name,
            "version": package.version,
            "integrity": package.integrity,
            "license": license_id,
        }
        if package.note is not None:
            described["note"] = package.note
        packages.append(described)
    manifest = {
        "generated_by": "scripts/fetch_graphiql_assets.py",
        "packages": packages,
        "files": dict(sorted(files.items())),
    }
    text = json.dumps(manifest, indent=2, sort_keys=False) + "\n"
    (dest / MANIFEST_NAME).write_text(text, encoding="utf-8")


def differences(expected: Path, actual: Path) -> list[str]:
    """Describe how the files in ``actual`` differ from those in ``expected``."""
    want = {p.name for p in expected.iterdir() if p.is_file()}
    have = {p.name for p in actual.iterdir() if p.is_file()} if actual.is_dir() else set()
    problems = [f"missing: {name}" for name in sorted(want - have)]
    problems += [f"unexpected: {name}" for name in sorted(have - want)]
    problems += [
        f"differs: {name}"
        for name in sorted(want & have)
        if not filecmp.cmp(expected / name, actual / name, shallow=False)
    ]
    return problems


def main(argv: list[str] | None = None) -> int:
    """Entry point: write the assets, or with ``--check`` compare them with a fresh fetch."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--check",
        action="store_true",
        help="re-fetch into a temporary folder and fail if the committed assets differ",
    )
    parser.add_argument(
        "--dest",
        type=Path,
        default=ASSETS_DIR,
        help=f"assets folder (default: {ASSETS_DIR.relative_to(REPO_ROOT)})",
    )
    args = parser.parse_args(argv)
    dest: Path = args.dest

    with tempfile.TemporaryDirectory(prefix="graphiql-assets-") as tmp:
        workdir = Path(tmp) / "npm"
        fresh = Path(tmp) / "assets"
        workdir.mkdir()
        fresh.mkdir()
        try:
            build(fresh, workdir)
        except AssetError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1

        if args.check:
            problems = differences(fresh, dest)
            if problems:
                print(f"{dest} is out of date:", file=sys.stderr)
                for problem in problems:
                    print(f"  {problem}", file=sys.stderr)
                print("run scripts/fetch_graphiql_assets.py to refresh it", file=sys.stderr)
                return 1
            print(f"{dest} matches the pinned packages", file=sys.stderr)
            return 0

        # Replace the folder wholesale so files dropped from the pin list do not linger.
        if dest.exists():
            shutil.rmtree(dest)
        shutil.copytree(fresh, dest)
        print(f"wrote {len(list(dest.iterdir()))} files to {dest}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
