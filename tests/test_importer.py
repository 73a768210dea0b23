"""Importing step results from files: formats, validation, all-or-nothing, idempotence."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import orjson
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from stepgraph.importer import (
    ImportFormat,
    ImportProgress,
    InvalidImportFile,
    RowProblem,
    import_file,
    import_files,
)
from stepgraph.records import step_result_json
from stepgraph.store.tables import flows, step_results
from tests.conftest import insert
from tests.factories import make_step_result

Rows = list[dict[str, Any]]


def envelope(rows: Rows) -> bytes:
    pagination = {"limit": 25, "offset": 0, "returned": len(rows), "hasMore": False}
    return orjson.dumps({"data": rows, "pagination": pagination})


def envelope_indented(rows: Rows) -> bytes:
    return json.dumps({"data": rows, "pagination": {}}, indent=2).encode()


def array(rows: Rows) -> bytes:
    return orjson.dumps(rows)


def array_indented(rows: Rows) -> bytes:
    return json.dumps(rows, indent=2).encode()


def ndjson(rows: Rows) -> bytes:
    return b"".join(orjson.dumps(row) + b"\n" for row in rows)


WRITERS: dict[ImportFormat, Callable[[Rows], bytes]] = {
    ImportFormat.RESPONSE: envelope,
    ImportFormat.ARRAY: array,
    ImportFormat.NDJSON: ndjson,
}
FORMATS = list(WRITERS)


def write(tmp_path: Path, content: bytes, name: str = "steps.data") -> Path:
    # A neutral extension: the format must be recognised from the content.
    path = tmp_path / name
    path.write_bytes(content)
    return path


async def stored(engine: AsyncEngine) -> Rows:
    async with engine.connect() as connection:
        result = await connection.execute(select(step_results).order_by(step_results.c.id))
        return [step_result_json(row) for row in result.mappings()]


async def count(engine: AsyncEngine, table: Any = step_results) -> int:
    async with engine.connect() as connection:
        return (await connection.scalar(select(func.count()).select_from(table))) or 0


async def rejected(engine: AsyncEngine, path: Path | str, **kwargs: Any) -> InvalidImportFile:
    with pytest.raises(InvalidImportFile) as caught:
        await import_file(engine, path, **kwargs)
    return caught.value


def where(problems: list[RowProblem]) -> list[tuple[str | None, str | None]]:
    return [(p.location, p.field) for p in problems]


@pytest.mark.parametrize(
    ("writer", "file_format"),
    [
        (envelope, ImportFormat.RESPONSE),
        (envelope_indented, ImportFormat.RESPONSE),
        (array, ImportFormat.ARRAY),
        (array_indented, ImportFormat.ARRAY),
        (ndjson, ImportFormat.NDJSON),
    ],
)
async def test_round_trip(
    engine: AsyncEngine,
    tmp_path: Path,
    writer: Callable[[Rows], bytes],
    file_format: ImportFormat,
) -> None:
    plain = make_step_result()
    rich = make_step_result(
        startedAt="2024-06-15T12:15:30+02:00",
        completedAt="2024-06-15T12:15:45.123456+02:00",
        estimatedCost="0.00450",
        recordMetadata={"tags": ["a", 1], "nested": {"ok": True}},
        stepConfig={"model": "m-1"},
        inputVariables={"name": None},
        promptTokens=10,
        completionTokens=5,
        totalTokens=15,
        status="failed",
        errorMessage="boom",
        retryCount=2,
    )
    numeric_cost = make_step_result(estimatedCost=0.5)

    report = await import_file(engine, write(tmp_path, writer([plain, rich, numeric_cost])))

    assert (report.format, report.rows, report.inserted, report.updated, report.unchanged) == (
        file_format,
        3,
        3,
        0,
        0,
    )
    assert await stored(engine) == [
        plain,
        {
            **rich,
            "startedAt": "2024-06-15T10:15:30Z",
            "completedAt": "2024-06-15T10:15:45.123456Z",
            "estimatedCost": "0.0045",
        },
        {**numeric_cost, "estimatedCost": "0.5"},
    ]


@pytest.mark.parametrize("file_format", FORMATS)
async def test_importing_the_same_file_again_changes_nothing(
    engine: AsyncEngine, tmp_path: Path, file_format: ImportFormat
) -> None:
    path = write(tmp_path, WRITERS[file_format]([make_step_result() for _ in range(3)]))
    await import_file(engine, path)

    again = await import_file(engine, path)

    assert (again.rows, again.inserted, again.updated, again.unchanged) == (3, 0, 0, 3)
    assert await count(engine) == 3


@pytest.mark.parametrize("file_format", FORMATS)
async def test_a_changed_row_counts_as_updated(
    engine: AsyncEngine, tmp_path: Path, file_format: ImportFormat
) -> None:
    rows = [make_step_result() for _ in range(3)]
    await import_file(engine, write(tmp_path, WRITERS[file_format](rows)))
    rows[1] = {**rows[1], "status": "failed", "errorMessage": "timeout"}

    report = await import_file(engine, write(tmp_path, WRITERS[file_format](rows)))

    assert (report.inserted, report.updated, report.unchanged) == (0, 1, 2)
    assert await stored(engine) == rows


@pytest.mark.parametrize(
    ("file_format", "second", "fourth"),
    [
        (ImportFormat.RESPONSE, "index 1 (data[1])", "index 3 (data[3])"),
        (ImportFormat.ARRAY, "index 1", "index 3"),
        (ImportFormat.NDJSON, "line 2", "line 4"),
    ],
)
async def test_every_invalid_row_is_reported_and_nothing_is_imported(
    engine: AsyncEngine, tmp_path: Path, file_format: ImportFormat, second: str, fourth: str
) -> None:
    rows = [make_step_result() for _ in range(6)]
    rows[1]["status"] = "done"
    rows[3]["order"] = -1
    del rows[3]["stepId"]
    path = write(tmp_path, WRITERS[file_format](rows))

    # One row per batch, so that the rows before the first bad one were already written.
    error = await rejected(engine, path, progress_every=1)

    assert where(error.problems) == [(second, "status"), (fourth, "stepId"), (fourth, "order")]
    assert str(error).splitlines()[0].startswith(f"{path} {second}: status: must be one of")
    assert (error.path, error.format, error.rows) == (str(path), file_format, 6)
    assert await count(engine) == 0
    assert await count(engine, flows) == 0


@pytest.mark.parametrize(
    ("file_format", "first", "third"),
    [
        (ImportFormat.RESPONSE, "index 0 (data[0])", "index 2 (data[2])"),
        (ImportFormat.ARRAY, "index 0", "index 2"),
        (ImportFormat.NDJSON, "line 1", "line 3"),
    ],
)
async def test_a_duplicate_id_names_both_rows(
    engine: AsyncEngine, tmp_path: Path, file_format: ImportFormat, first: str, third: str
) -> None:
    original = make_step_result()
    rows = [original, make_step_result(), make_step_result(id=original["id"])]

    error = await rejected(engine, write(tmp_path, WRITERS[file_format](rows)))

    message = f"{original['id']!r} is also the id at {first}"
    assert error.problems == [RowProblem(third, "id", message)]
    assert await count(engine) == 0


@pytest.mark.parametrize(
    ("file_format", "first", "second"),
    [
        (ImportFormat.RESPONSE, "index 0 (data[0])", "index 1 (data[1])"),
        (ImportFormat.ARRAY, "index 0", "index 1"),
        (ImportFormat.NDJSON, "line 1", "line 2"),
    ],
)
async def test_a_flow_of_another_organization_in_the_store_is_refused(
    engine: AsyncEngine, tmp_path: Path, file_format: ImportFormat, first: str, second: str
) -> None:
    await insert(engine, [make_step_result(flowId="flow_x", organizationId="org_1")])
    rows = [
        make_step_result(flowId="flow_y", organizationId="org_2"),
        make_step_result(flowId="flow_x", organizationId="org_2"),
    ]

    error = await rejected(engine, write(tmp_path, WRITERS[file_format](rows)))

    message = "flow 'flow_x' belongs to 'org_1' in the store"
    assert error.problems == [RowProblem(second, "organizationId", message)]
    assert await count(engine) == 1
    assert await count(engine, flows) == 1


@pytest.mark.parametrize(
    ("file_format", "first", "third"),
    [
        (ImportFormat.RESPONSE, "index 0 (data[0])", "index 2 (data[2])"),
        (ImportFormat.ARRAY, "index 0", "index 2"),
        (ImportFormat.NDJSON, "line 1", "line 3"),
    ],
)
async def test_one_flow_with_two_organizations_in_a_file_is_refused(
    engine: AsyncEngine, tmp_path: Path, file_format: ImportFormat, first: str, third: str
) -> None:
    rows = [
        make_step_result(flowId="flow_z", organizationId="org_1"),
        make_step_result(flowId="flow_z", organizationId="org_1"),
        make_step_result(flowId="flow_z", organizationId="org_2"),
    ]

    error = await rejected(engine, write(tmp_path, WRITERS[file_format](rows)))

    message = f"flow 'flow_z' belongs to 'org_1' at {first}"
    assert error.problems == [RowProblem(third, "organizationId", message)]
    assert await count(engine, flows) == 0


async def test_unknown_flows_are_created_for_their_organization(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    rows = [
        make_step_result(flowId="flow_new", organizationId="org_a"),
        make_step_result(flowId="flow_new", organizationId="org_a"),
        make_step_result(flowId="flow_other", organizationId="org_b"),
    ]

    await import_file(engine, write(tmp_path, ndjson(rows)))

    async with engine.connect() as connection:
        result = await connection.execute(select(flows.c.id, flows.c.organization_id))
        assert sorted(tuple(row) for row in result) == [
            ("flow_new", "org_a"),
            ("flow_other", "org_b"),
        ]


@pytest.fixture
def pipe() -> Iterator[Callable[[bytes], BinaryIO]]:
    """Standard input stand-in: a real pipe, which cannot seek."""
    opened: list[BinaryIO] = []

    def feed(content: bytes) -> BinaryIO:
        read_end, write_end = os.pipe()
        os.write(write_end, content)
        os.close(write_end)
        stream = os.fdopen(read_end, "rb")
        opened.append(stream)
        return stream

    yield feed
    for stream in opened:
        stream.close()


@pytest.mark.parametrize("file_format", FORMATS)
async def test_dash_reads_standard_input(
    engine: AsyncEngine, pipe: Callable[[bytes], BinaryIO], file_format: ImportFormat
) -> None:
    rows = [make_step_result(), make_step_result()]

    report = await import_file(engine, "-", stdin=pipe(WRITERS[file_format](rows)))

    assert (report.path, report.format, report.inserted) == ("<stdin>", file_format, 2)
    assert await stored(engine) == rows


@pytest.mark.parametrize("content", [b"", b"\n  \n\t\r\n"])
async def test_an_empty_file_is_refused(
    engine: AsyncEngine, tmp_path: Path, content: bytes
) -> None:
    path = write(tmp_path, content)

    error = await rejected(engine, path)

    assert error.problems == [RowProblem(None, None, "the file is empty")]
    assert str(error) == f"{path}: the file is empty"


async def test_a_json_syntax_error_names_line_and_column(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    content = b'{\n  "data": [\n    {"id": "a",}\n  ]\n}\n'

    error = await rejected(engine, write(tmp_path, content))

    [problem] = error.problems
    assert problem.location is not None
    assert problem.location.startswith("line 3, column ")
    assert problem.message.startswith("not valid JSON")


async def test_text_that_is_not_json_is_refused(engine: AsyncEngine, tmp_path: Path) -> None:
    error = await rejected(engine, write(tmp_path, b"\nid,status\nsr_1,completed\n"))

    assert where(error.problems) == [("line 2, column 1", None)]
    assert "expected a JSON array" in error.problems[0].message


async def test_ndjson_lines_that_are_not_json_are_reported_with_the_other_problems(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    good, bad = make_step_result(), make_step_result(status="done")
    content = ndjson([good]) + b'{"id": "sr_x",\n' + ndjson([bad])

    error = await rejected(engine, write(tmp_path, content))

    assert where(error.problems) == [("line 2", "(row)"), ("line 3", "status")]
    assert error.problems[0].message.startswith("not valid JSON")


async def test_ndjson_blank_lines_are_skipped_but_counted(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    good, bad = make_step_result(), make_step_result(order="first")
    content = b"\n" + ndjson([good]) + b"\r\n\n" + ndjson([bad]) + b"\n\n"

    error = await rejected(engine, write(tmp_path, content))

    assert where(error.problems) == [("line 5", "order")]


@pytest.mark.parametrize(
    ("content", "location"),
    [
        (ndjson([make_step_result()]) + b'{"id": "caf\xe9"}\n', "line 2, column 12"),
        (b'[\n  {\n    "id": "caf\xe9"\n  }\n]\n', "line 3, column 15"),
    ],
    ids=["ndjson", "json"],
)
async def test_bytes_that_are_not_utf8_are_refused(
    engine: AsyncEngine, tmp_path: Path, content: bytes, location: str
) -> None:
    error = await rejected(engine, write(tmp_path, content))

    assert where(error.problems) == [(location, None)]
    assert error.problems[0].message.startswith("not UTF-8 text")
    assert await count(engine) == 0


async def test_a_utf8_byte_order_mark_is_accepted(engine: AsyncEngine, tmp_path: Path) -> None:
    rows = [make_step_result(recordName="Café")]

    report = await import_file(engine, write(tmp_path, b"\xef\xbb\xbf" + array(rows)))

    assert report.inserted == 1
    assert await stored(engine) == rows


async def test_a_response_with_an_unknown_key_is_refused(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    content = orjson.dumps({"data": [make_step_result()], "pagination": {}, "total": 1})

    error = await rejected(engine, write(tmp_path, content))

    assert where(error.problems) == [(None, "total")]
    assert await count(engine) == 0


@pytest.mark.parametrize("content", [b'{\n  "rows": []\n}\n', b"{}"])
async def test_an_object_without_data_is_refused(
    engine: AsyncEngine, tmp_path: Path, content: bytes
) -> None:
    error = await rejected(engine, write(tmp_path, content))

    assert where(error.problems) == [(None, None)]
    assert "REST response" in error.problems[0].message


async def test_a_missing_file_is_refused(engine: AsyncEngine, tmp_path: Path) -> None:
    error = await rejected(engine, tmp_path / "absent.ndjson")

    assert error.problems[0].message.startswith("cannot read the file")


async def test_each_file_is_imported_on_its_own(engine: AsyncEngine, tmp_path: Path) -> None:
    first = write(tmp_path, ndjson([make_step_result()]), "first.ndjson")
    broken = write(tmp_path, ndjson([make_step_result(), make_step_result(status="?")]), "b.json")
    last = write(tmp_path, array([make_step_result(), make_step_result()]), "last.json")

    reports = await import_files(engine, [first, broken, last])

    assert [(r.path, r.ok, r.inserted) for r in reports] == [
        (str(first), True, 1),
        (str(broken), False, 0),
        (str(last), True, 2),
    ]
    assert reports[1].error is not None
    assert where(reports[1].error.problems) == [("line 2", "status")]
    assert await count(engine) == 3


async def test_progress_is_reported_per_batch_and_at_the_end(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    path = write(tmp_path, ndjson([make_step_result() for _ in range(5)]))
    seen: list[ImportProgress] = []

    await import_file(engine, path, progress=seen.append, progress_every=2)

    assert [(p.validated, p.written, p.invalid, p.done) for p in seen] == [
        (2, 2, 0, False),
        (4, 4, 0, False),
        (5, 5, 0, True),
    ]
    assert {(p.path, p.format) for p in seen} == {(str(path), ImportFormat.NDJSON)}


def test_problems_read_one_per_line_and_can_be_capped() -> None:
    problems = [RowProblem(f"line {n}", "status", "bad") for n in (1, 2, 3)]
    error = InvalidImportFile("steps.ndjson", problems)

    assert str(error) == (
        "steps.ndjson line 1: status: bad\nsteps.ndjson line 2: status: bad\n"
        "steps.ndjson line 3: status: bad"
    )
    assert error.lines(limit=1) == [
        "steps.ndjson line 1: status: bad",
        "steps.ndjson: ... and 2 more problem(s)",
    ]
