"""``stepgraph keys``: issue, list and revoke API keys."""

from __future__ import annotations

import argparse
import re
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

from stepgraph.auth.viewer import KNOWN_SCOPES, READ_STEP_RESULTS
from stepgraph.timestamps import format_instant, parse_instant

_DURATION = re.compile(r"^(?P<amount>[1-9][0-9]*)(?P<unit>[mhdw])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_expiry(text: str, *, now: datetime | None = None) -> datetime:
    """``30d``/``12h``/``90m``/``2w`` from now, or an RFC 3339 instant."""
    now = now or datetime.now(UTC)
    match = _DURATION.match(text.strip())
    if match is not None:
        return now + timedelta(**{_UNITS[match["unit"]]: int(match["amount"])})
    try:
        return parse_instant(text.strip(), allow_date=True)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a duration such as 30d, 12h or 90m, or an RFC 3339 instant; got {text!r}"
        ) from None


def add_keys_parser(commands: Any) -> argparse.ArgumentParser:
    """Register ``keys create|list|revoke`` under the main parser's sub-commands."""
    keys: argparse.ArgumentParser = commands.add_parser(
        "keys", help="issue, list and revoke API keys"
    )
    actions = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")

    create = actions.add_parser("create", help="issue a key (printed once, stored as a hash)")
    create.add_argument("--org", required=True, help="organization the key reads for")
    create.add_argument("--user", required=True, help="user the key acts as")
    create.add_argument(
        "--scope",
        action="append",
        choices=KNOWN_SCOPES,
        help=f"a scope to grant; repeat for several (default {READ_STEP_RESULTS})",
    )
    create.add_argument("--expires", type=parse_expiry, help="30d, 12h, 90m or an RFC 3339 instant")
    create.add_argument("--label", help="a note to recognise the key by in `keys list`")

    listing = actions.add_parser("list", help="list keys (never shows a key)")
    listing.add_argument("--org", help="only this organization's keys")

    revoke = actions.add_parser("revoke", help="revoke keys; effective on the next request")
    revoke.add_argument("ids", nargs="+", metavar="ID")
    return keys


def _status(row: Any, now: datetime) -> str:
    if row["revoked_at"] is not None:
        return "revoked " + format_instant(row["revoked_at"])
    if row["expires_at"] is not None and row["expires_at"] <= now:
        return "expired"
    return "active"


async def run_keys_command(engine: Any, args: argparse.Namespace) -> int:
    """Carry out one ``keys`` action against the store behind ``engine``."""
    from stepgraph.auth.api_keys import issue_api_key
    from stepgraph.store import api_keys

    now = datetime.now(UTC)
    if args.keys_command == "create":
        try:
            async with engine.begin() as connection:
                issued = await issue_api_key(
                    connection,
                    organization_id=args.org,
                    user_id=args.user,
                    scopes=args.scope or [READ_STEP_RESULTS],
                    expires_at=args.expires,
                    label=args.label,
                )
        except ValueError as exc:
            print(f"stepgraph keys create: {exc}", file=sys.stderr)
            return 2
        expiry = format_instant(issued.expires_at) if issued.expires_at else "never"
        print(
            f"stepgraph: key {issued.id} for {issued.user_id} of {issued.organization_id}, "
            f"scopes {' '.join(issued.scopes)}, expires {expiry}. It is shown only now:",
            file=sys.stderr,
        )
        print(issued.key)
        return 0
    if args.keys_command == "list":
        async with engine.connect() as connection:
            rows = await api_keys.list_api_keys(connection, organization_id=args.org)
        print("id\torganization\tuser\tscopes\tcreated\texpires\tstatus\tlabel")
        for row in rows:
            expires = format_instant(row["expires_at"]) if row["expires_at"] else "never"
            print(
                f"{row['id']}\t{row['organization_id']}\t{row['user_id']}\t"
                f"{','.join(row['scopes'])}\t{format_instant(row['created_at'])}\t{expires}\t"
                f"{_status(row, now)}\t{row['label'] or ''}"
            )
        return 0
    async with engine.begin() as connection:
        known = {
            row["id"]: row
            for row in await api_keys.list_api_keys(connection)
            if row["id"] in set(args.ids)
        }
        unknown = [key_id for key_id in args.ids if key_id not in known]
        if unknown:
            print(f"stepgraph keys revoke: no key with id {', '.join(unknown)}", file=sys.stderr)
            return 1
        changed = await api_keys.revoke_api_keys(connection, args.ids, at=now)
    print(
        f"stepgraph: revoked {changed} key(s); already revoked: {len(args.ids) - changed}",
        file=sys.stderr,
    )
    return 0
