"""Bringing a store's schema up to date with Alembic, on SQLite and PostgreSQL alike."""

from __future__ import annotations

from importlib.resources import files
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect
from sqlalchemy.ext.asyncio import AsyncEngine


def _config(connection: Connection | None = None) -> Config:
    config = Config(str(files("stepgraph.store") / "alembic.ini"))
    config.set_main_option("script_location", str(files("stepgraph.store") / "migrations"))
    config.attributes["connection"] = connection
    return config


def _upgrade(connection: Connection) -> None:
    command.upgrade(_config(connection), "head")


def _pending(connection: Connection) -> list[str]:
    head = ScriptDirectory.from_config(_config()).get_current_head()
    current = MigrationContext.configure(connection).get_current_revision()
    return [] if current == head else [str(head)]


async def upgrade(engine: AsyncEngine) -> None:
    """Apply every migration the store has not seen yet."""
    async with engine.begin() as connection:
        await connection.run_sync(_upgrade)


async def is_up_to_date(engine: AsyncEngine) -> bool:
    """True when the store's schema is at the newest migration."""
    async with engine.connect() as connection:
        pending: Any = await connection.run_sync(_pending)
    return not pending


class StoreOutOfDate(RuntimeError):
    """The store holds an older schema; ``stepgraph migrate`` brings it up to date."""


def _has_tables(connection: Connection) -> bool:
    return bool(inspect(connection).get_table_names())


async def prepare(engine: AsyncEngine) -> None:
    """Create the schema in an empty store; refuse to serve an outdated one.

    Upgrading a store that holds data is left to ``stepgraph migrate`` so that
    several replicas starting together never race to migrate it.
    """
    async with engine.connect() as connection:
        empty = not await connection.run_sync(_has_tables)
    if empty:
        await upgrade(engine)
    elif not await is_up_to_date(engine):
        raise StoreOutOfDate(
            "the store's schema is older than this version of stepgraph; "
            "run `stepgraph migrate` first"
        )
