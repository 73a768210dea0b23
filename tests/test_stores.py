"""Every store holds the same schema and gives back exactly what it was given.

These run on each store (``[sqlite]``, ``[postgres]``): the migrations produce the
tables the code declares, ``prepare`` creates or refuses a store as documented, and
extreme values survive a round trip and sort the same way everywhere.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, func, inspect, select
from sqlalchemy.ext.asyncio import AsyncEngine

from stepgraph.domain import SortField, SortOrder
from stepgraph.query import PageLimits, StepResultQuery
from stepgraph.records import parse_step_result, step_result_json
from stepgraph.settings import Settings
from stepgraph.store import migrate, reads
from stepgraph.store.api_keys import insert_api_key, list_api_keys
from stepgraph.store.engine import UnstorableText, create_engine
from stepgraph.store.tables import metadata, step_results
from stepgraph.store.types import IDENTIFIER_LENGTH
from stepgraph.store.writes import upsert_step_results
from stepgraph.timestamps import parse_instant
from tests.conftest import insert
from tests.factories import make_step_result

# --- the schema -------------------------------------------------------------------------------


def _differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, metadata))


async def test_migrations_create_exactly_the_declared_schema(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        differences = await connection.run_sync(_differences)
    assert differences == []


def _table_names(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


def _previous_revision() -> str:
    """The revision before the newest one: where a store of the previous release stands."""
    head = ScriptDirectory.from_config(migrate._config()).get_revision("head")
    assert head is not None
    assert isinstance(head.down_revision, str), "no earlier revision to stand for an old store"
    return head.down_revision


async def test_prepare_creates_the_schema_in_an_empty_store(settings: Settings) -> None:
    engine = create_engine(settings)
    try:
        async with engine.connect() as connection:
            assert await connection.run_sync(_table_names) == set()
        await migrate.prepare(engine)
        async with engine.connect() as connection:
            tables = await connection.run_sync(_table_names)
            differences = await connection.run_sync(_differences)
        assert tables == {*metadata.tables, "alembic_version"}
        assert differences == []
        assert await migrate.is_up_to_date(engine)
        await migrate.prepare(engine)  # a second start finds it ready
    finally:
        await engine.dispose()


async def test_prepare_refuses_a_store_of_an_older_release(settings: Settings) -> None:
    # A real older store, migrated up to the revision before the newest one as the previous
    # release left it (rather than a made-up revision number in alembic_version): serving
    # must wait for ``stepgraph migrate``, which then brings it up to date.
    previous = _previous_revision()

    def upgrade_to_previous(connection: Connection) -> None:
        command.upgrade(migrate._config(connection), previous)

    def current_revision(connection: Connection) -> str | None:
        return MigrationContext.configure(connection).get_current_revision()

    engine = create_engine(settings)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(upgrade_to_previous)
        assert not await migrate.is_up_to_date(engine)

        with pytest.raises(migrate.StoreOutOfDate, match="stepgraph migrate"):
            await migrate.prepare(engine)
        async with engine.connect() as connection:
            assert await connection.run_sync(current_revision) == previous  # left untouched

        await migrate.upgrade(engine)
        await migrate.prepare(engine)
        async with engine.connect() as connection:
            assert await connection.run_sync(_differences) == []
    finally:
        await engine.dispose()


# --- round trips ------------------------------------------------------------------------------

# Offsets at both ends of the range, microseconds at both ends, the first and last instants
# a timestamp can hold, and one before the Unix epoch.
INSTANTS = [
    "2024-06-15T10:00:00.000001+14:00",
    "2024-06-15T10:00:00.999999-12:00",
    "2024-02-29T23:59:59.5+05:45",
    "1969-12-31T23:59:59.999999Z",
    "0001-01-01T00:00:00Z",
    "9999-12-31T23:59:59.999999Z",
]

COSTS = {
    # input -> rendered
    "99999999.9999999999": "99999999.9999999999",
    "-99999999.9999999999": "-99999999.9999999999",
    "0.0000000001": "0.0000000001",
    "-0.0000000001": "-0.0000000001",
    "1E-10": "0.0000000001",
    "12.5000000000": "12.5",
    0.1: "0.1",
    "0": "0",
}

NESTED: dict[str, Any] = {
    "zeta": 1,
    "alpha": {"deep": [{"deeper": [[], {}, [None, True, False]]}]},
    "ünïcødé ключ 鍵": "値 — “quotes” 'single' \\ backslash \n newline \t tab",
    "emoji 😀": ["👩‍💻", "🇳🇵"],
    "escapes": "\u0000 \u001f \u2028 \u2029 </script>",
    "numbers": [0, -1, 2**53 + 1, 2**64, 1.5, -0.25, 1e308, 5e-324],
    "": "empty key",
}

IDS = [
    "a",
    "A",
    "b",
    "B",
    "_",
    "-",
    "~",
    "0",
    "9",
    "é",
    "e\u0301",  # e + combining acute: a different id from "é"
    "É",
    "z",
    "ä",
    "ß",
    "ss",
    "日本",
    "😀",
    "\U0010ffff",
    "a b",
    "aB",
    "ab",
    "Ab",
]


def _byte_order(ids: list[str]) -> list[str]:
    return sorted(ids, key=lambda value: value.encode("utf-8"))


async def _stored(engine: AsyncEngine, ids: list[str]) -> dict[str, dict[str, Any]]:
    async with engine.connect() as connection:
        found = await reads.fetch_step_results(connection, ids)
    return {key: step_result_json(row) for key, row in found.items()}


async def test_timestamps_keep_microseconds_and_come_back_in_utc(engine: AsyncEngine) -> None:
    rows = [
        make_step_result(id=f"t{i}", createdAt=given, startedAt=given, completedAt=given)
        for i, given in enumerate(INSTANTS)
    ]
    await insert(engine, rows)

    async with engine.connect() as connection:
        stored = await reads.fetch_step_results(connection, [row["id"] for row in rows])
    for row, given in zip(rows, INSTANTS, strict=True):
        got = stored[row["id"]]
        for column in ("created_at", "started_at", "completed_at"):
            assert got[column] == parse_instant(given), (given, column)
            assert got[column].utcoffset() == timedelta(0), (given, column)

    # Filters and sorts compare instants, not text: both bounds fall on rows of other offsets.
    page = await _page(
        engine,
        created_from=parse_instant("1969-12-31T23:59:59.999999Z"),
        created_to=parse_instant("2024-06-15T10:00:00.999999-12:00"),
        sort_by=SortField.CREATED_AT,
        sort_order=SortOrder.ASC,
    )
    assert [row["createdAt"] for row in page] == [
        "1969-12-31T23:59:59.999999Z",
        "2024-02-29T18:14:59.500000Z",
        "2024-06-14T20:00:00.000001Z",
    ]
    page = await _page(engine, sort_by=SortField.STARTED_AT, sort_order=SortOrder.DESC)
    assert [row["id"] for row in page] == ["t5", "t1", "t0", "t2", "t3", "t4"]


async def test_costs_are_exact_at_every_scale_and_sort_numerically(engine: AsyncEngine) -> None:
    rows = [make_step_result(id=f"c{i}", estimatedCost=cost) for i, cost in enumerate(COSTS)]
    await insert(engine, rows)

    stored = await _stored(engine, [row["id"] for row in rows])
    assert [stored[row["id"]]["estimatedCost"] for row in rows] == list(COSTS.values())

    async with engine.connect() as connection:
        total = (await connection.execute(select(func.sum(step_results.c.estimated_cost)))).scalar()
    assert Decimal(total) == sum(Decimal(text) for text in COSTS.values())

    page = await _page(engine, sort_by=SortField.ESTIMATED_COST, sort_order=SortOrder.ASC)
    costs = [Decimal(row["estimatedCost"]) for row in page]
    assert costs == sorted(costs)


async def test_json_objects_come_back_unchanged(engine: AsyncEngine) -> None:
    row = make_step_result(
        id="json",
        recordMetadata=NESTED,
        stepConfig={"nested": NESTED, "list": [NESTED, NESTED]},
        inputVariables={},
    )
    await insert(engine, [row])

    stored = (await _stored(engine, ["json"]))["json"]
    assert stored["recordMetadata"] == NESTED
    assert list(stored["recordMetadata"]) == list(NESTED)  # key order kept
    assert stored["stepConfig"] == {"nested": NESTED, "list": [NESTED, NESTED]}
    assert stored["inputVariables"] == {}
    assert stored == step_result_json(parse_step_result(row))


@pytest.mark.parametrize("sort_order", [SortOrder.ASC, SortOrder.DESC])
async def test_ids_compare_and_sort_byte_wise(engine: AsyncEngine, sort_order: SortOrder) -> None:
    # Every row ties on the sort column, so the order is the id order alone.
    rows = [make_step_result(id=id_, recordId=id_, createdAt="2024-06-15T10:00:00Z") for id_ in IDS]
    await insert(engine, rows)

    page = await _page(engine, sort_order=sort_order, limit=100)
    expected = _byte_order(IDS)
    assert [row["id"] for row in page] == (
        expected if sort_order is SortOrder.ASC else expected[::-1]
    )
    # Equality is exact too: no case folding, no Unicode normalization.
    for id_ in ("A", "é", "e\u0301", "ß", "ss"):
        assert [row["id"] for row in await _page(engine, record_id=id_)] == [id_]
    assert await _page(engine, record_id="AB") == []


async def test_flow_ids_are_byte_wise_too(engine: AsyncEngine) -> None:
    await insert(engine, [make_step_result(id=f"f{i}", flowId=id_) for i, id_ in enumerate(IDS)])
    async with engine.connect() as connection:
        for id_ in IDS:
            assert await reads.flow_exists(connection, id_)
        assert not await reads.flow_exists(connection, "AB")
        assert not await reads.flow_exists(connection, "E\u0301")


@pytest.mark.parametrize("column", ["id", "flow_id", "record_name", "step_type", "output_preview"])
async def test_text_with_a_nul_character_is_refused_by_every_store(
    engine: AsyncEngine, column: str
) -> None:
    # PostgreSQL text cannot hold U+0000; SQLite could, but a store must be able to move.
    # Validation refuses it first; the store refuses it too, whoever writes or matches it.
    row = {**parse_step_result(make_step_result()), column: "a\x00b"}
    with pytest.raises(UnstorableText):
        async with engine.begin() as connection:
            await upsert_step_results(connection, [row])
    async with engine.connect() as connection:
        assert await reads.count_step_results(connection) == 0
        with pytest.raises(UnstorableText):
            await reads.flow_exists(connection, "a\x00b")


async def test_json_strings_may_hold_a_nul_character(engine: AsyncEngine) -> None:
    row = make_step_result(id="nul", stepConfig={"key\x00": "value\x00"})
    await insert(engine, [row])
    assert (await _stored(engine, ["nul"]))["nul"]["stepConfig"] == {"key\x00": "value\x00"}


@pytest.mark.parametrize("attribute", ["organization_id", "user_id"])
async def test_ids_longer_than_a_store_keeps_are_refused_by_every_store(
    engine: AsyncEngine, attribute: str
) -> None:
    # PostgreSQL enforces VARCHAR(255); SQLite would keep a longer id that could not move.
    key = {
        "key_id": "k1",
        "secret_hash": "0" * 64,
        "organization_id": "org",
        "user_id": "user",
        "scopes": ["read"],
        "label": None,
        "created_at": parse_instant("2024-06-15T10:00:00Z"),
        "expires_at": None,
    }
    async with engine.begin() as connection:
        await insert_api_key(connection, **{**key, attribute: "é" * IDENTIFIER_LENGTH})
        with pytest.raises(ValueError, match=f"longer than {IDENTIFIER_LENGTH}"):
            await insert_api_key(
                connection, **{**key, "key_id": "k2", attribute: "é" * (IDENTIFIER_LENGTH + 1)}
            )
        assert [row["id"] for row in await list_api_keys(connection)] == ["k1"]


# --- helpers ----------------------------------------------------------------------------------


async def _page(engine: AsyncEngine, **arguments: Any) -> list[dict[str, Any]]:
    query = StepResultQuery(flow_id="flow_1", **{"limit": 100, **arguments})
    async with engine.connect() as connection:
        page = await reads.fetch_page(connection, query)
    return [step_result_json(row) for row in page.rows]


ON_POSTGRES = pytest.mark.parametrize(
    "store_kind", [pytest.param("postgres", id="postgres", marks=pytest.mark.postgres)]
)


def _sorted_scans(plan: dict[str, Any], under_sort: bool = False) -> list[str]:
    """Scans of step_results whose rows all reach a Sort (no Limit in between)."""
    kind = plan["Node Type"]
    found = [kind] if under_sort and plan.get("Relation Name") == "step_results" else []
    below = (under_sort or kind in ("Sort", "Incremental Sort")) and kind != "Limit"
    for child in plan.get("Plans", ()):
        found += _sorted_scans(child, below)
    return found


@ON_POSTGRES
@pytest.mark.parametrize("sort_by", [SortField.TOTAL_TOKENS, SortField.STARTED_AT])
async def test_postgres_reads_descending_nullable_pages_in_index_order(
    engine: AsyncEngine, sort_by: SortField
) -> None:
    # DESC NULLS LAST matches no index order on PostgreSQL; as one ORDER BY the store sorts
    # every row of the flow for one page. Read as values then NULLs, only pages are sorted.
    rows = [make_step_result(id=f"sr_{i:03}", flowId="flow_1") for i in range(60)]
    await insert(engine, rows)
    query = StepResultQuery.build(
        flow_id="flow_1",
        limits=PageLimits(),
        sort_by=sort_by,
        sort_order=SortOrder.DESC,
        limit=5,
        offset=10,
    )
    statement = reads.page_statement(query, dialect="postgresql")
    sql = statement.compile(engine.sync_engine, compile_kwargs={"literal_binds": True})
    async with engine.connect() as connection:
        await connection.exec_driver_sql("SET enable_seqscan = off")
        plan = (await connection.exec_driver_sql(f"EXPLAIN (FORMAT JSON) {sql}")).scalar_one()
        page = await reads.fetch_page(connection, query, organization_id=None)
    assert _sorted_scans(plan[0]["Plan"]) == [], plan
    assert len(page.rows) == 5
