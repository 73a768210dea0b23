"""Importing step results from files into the store.

Three formats are accepted, recognised from the content rather than the file
name: the REST response ``{"data": [...], "pagination": {...}}``, a JSON array
of step results, and NDJSON (one step result per line, blank lines skipped).

Each file is all or nothing: every row is checked against the contract, ids
must be unique within the file, and a flow belongs to one organization (in the
file and in the store). A file with any problem writes nothing and reports
every problem with its location; a valid file is written in one transaction.
Importing the same file again changes nothing.
"""

from __future__ import annotations

import enum
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any, BinaryIO

import orjson
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from stepgraph.domain import STEP_RESULT_FIELDS
from stepgraph.records import FieldError, InvalidStepResult, parse_step_result
from stepgraph.store.writes import UpsertSummary, flow_owners, upsert_step_results

STDIN = "-"
STDIN_NAME = "<stdin>"
# Rows are checked and written in batches of this size, with a progress report after each.
PROGRESS_EVERY = 10_000

_BOM = b"\xef\xbb\xbf"
_ENVELOPE_KEYS = frozenset({"data", "pagination"})
_ROW_KEYS = frozenset(STEP_RESULT_FIELDS)


class ImportFormat(enum.Enum):
    """How a file lays out its step results."""

    RESPONSE = "rest-response"
    ARRAY = "json-array"
    NDJSON = "ndjson"


@dataclass(frozen=True, slots=True)
class RowProblem:
    """One problem in a file: at a row (``location``) and field, or in the file as a whole.

    ``location`` is ``line N`` for NDJSON, ``index N`` for a JSON array,
    ``index N (data[N])`` for a REST response, ``line N, column C`` for text
    that is not JSON or not UTF-8, and ``None`` for the file as a whole.
    ``field`` is a contract field name, ``(row)`` for the row as a whole,
    or ``None``.
    """

    location: str | None
    field: str | None
    message: str

    def __str__(self) -> str:
        where = f"{self.location}: " if self.location else ""
        what = f"{self.field}: " if self.field else ""
        return f"{where}{what}{self.message}"


class InvalidImportFile(ValueError):
    """A file that was not imported, with every problem found in it."""

    def __init__(
        self,
        path: str,
        problems: list[RowProblem],
        *,
        format: ImportFormat | None = None,
        rows: int = 0,
    ) -> None:
        self.path = path
        self.problems = problems
        self.format = format
        self.rows = rows
        super().__init__("\n".join(self.lines()))

    def lines(self, limit: int | None = None) -> list[str]:
        """One line per problem, naming the file; past ``limit`` problems, a count of the rest."""
        shown = self.problems if limit is None else self.problems[:limit]
        lines = [_problem_line(self.path, problem) for problem in shown]
        hidden = len(self.problems) - len(shown)
        if hidden:
            lines.append(f"{self.path}: ... and {hidden} more problem(s)")
        return lines


def _problem_line(path: str, problem: RowProblem) -> str:
    # "steps.ndjson line 3: status: ..." but "steps.json: the file is empty".
    separator = " " if problem.location else ": "
    return f"{path}{separator}{problem}"


@dataclass(frozen=True, slots=True)
class ImportProgress:
    """How far the import of one file has got.

    ``validated`` rows were read and checked, ``written`` were stored (in the
    file's open transaction), ``invalid`` had problems; ``done`` is true for
    the last report of the file.
    """

    path: str
    format: ImportFormat
    validated: int
    written: int
    invalid: int
    done: bool


ProgressCallback = Callable[[ImportProgress], None]


@dataclass(frozen=True, slots=True)
class ImportReport:
    """The outcome of importing one file: counts, or the error that rejected it."""

    path: str
    format: ImportFormat | None
    rows: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    error: InvalidImportFile | None = None

    @property
    def ok(self) -> bool:
        """True when the file was imported."""
        return self.error is None


async def import_file(
    engine: AsyncEngine,
    source: str | Path,
    *,
    progress: ProgressCallback | None = None,
    progress_every: int = PROGRESS_EVERY,
    stdin: BinaryIO | None = None,
) -> ImportReport:
    """Import one file of step results in one transaction; ``"-"`` reads ``stdin``.

    ``stdin`` defaults to the process's standard input. ``progress`` is called
    after every ``progress_every`` rows and once at the end. Raises
    :class:`InvalidImportFile` (and writes nothing) when the file cannot be
    read, is not one of the formats, or has any invalid row.
    """
    if progress_every < 1:
        raise ValueError("progress_every must be at least 1")
    name = display_name(source)
    with _open_source(name, source, stdin) as stream:
        try:
            file_format, rows = _read_rows(stream)
        except _Unreadable as exc:
            raise InvalidImportFile(name, exc.problems) from None
        async with engine.begin() as connection:
            tally = await _import_rows(
                connection, _Batches(name, file_format, rows, progress, progress_every)
            )
    return ImportReport(
        name,
        file_format,
        rows=tally.validated,
        inserted=tally.summary.inserted,
        updated=tally.summary.updated,
        unchanged=tally.summary.unchanged,
    )


async def import_files(
    engine: AsyncEngine,
    sources: Iterable[str | Path],
    *,
    progress: ProgressCallback | None = None,
    progress_every: int = PROGRESS_EVERY,
    stdin: BinaryIO | None = None,
) -> list[ImportReport]:
    """Import each file in turn, independently; one report per file, in order.

    An invalid file does not stop the others: its report carries the
    :class:`InvalidImportFile` in ``error`` and nothing of it is written.
    Callers decide what a failure means (the CLI exits non-zero).
    """
    reports: list[ImportReport] = []
    for source in sources:
        try:
            report = await import_file(
                engine, source, progress=progress, progress_every=progress_every, stdin=stdin
            )
        except InvalidImportFile as exc:
            report = ImportReport(exc.path, exc.format, rows=exc.rows, error=exc)
        reports.append(report)
    return reports


def display_name(source: str | Path) -> str:
    """How a source is named in reports: as given, or ``<stdin>`` for ``-``."""
    return STDIN_NAME if str(source) == STDIN else str(source)


# Reading ---------------------------------------------------------------------


class _Unreadable(Exception):
    """The file as a whole is not importable; turned into InvalidImportFile by the caller."""

    def __init__(self, problems: list[RowProblem]) -> None:
        super().__init__(problems)
        self.problems = problems


@dataclass(frozen=True, slots=True)
class _Unparsable:
    """An NDJSON line that is not JSON: a row problem, so the other lines are still checked."""

    message: str


# A row's position (NDJSON line number, or index in the array) and its decoded JSON value.
_Row = tuple[int, Any]


@contextmanager
def _open_source(name: str, source: str | Path, stdin: BinaryIO | None) -> Iterator[BinaryIO]:
    if str(source) == STDIN:
        yield stdin if stdin is not None else sys.stdin.buffer
        return
    with _open_file(name, Path(source)) as stream:
        yield stream


def _open_file(name: str, path: Path) -> BinaryIO:
    try:
        return path.open("rb")
    except OSError as exc:
        problem = RowProblem(None, None, f"cannot read the file: {exc.strerror or exc}")
        raise InvalidImportFile(name, [problem]) from None


def _read_rows(stream: BinaryIO) -> tuple[ImportFormat, Iterator[_Row]]:
    """Recognise the format from the first line and return the rows to check."""
    line_number, first = _first_content_line(stream)
    start = first.lstrip()[:1]
    if start == b"{":
        value = _loads_or_none(first)
        # A complete step result on the first line means NDJSON; anything else
        # starting with "{" (a REST response, compact or pretty-printed) is one document.
        if isinstance(value, dict) and _looks_like_row(value):
            return ImportFormat.NDJSON, _ndjson_rows(stream, line_number, value)
    elif start != b"[":
        problem = _utf8_problem(first, line_number) or RowProblem(
            f"line {line_number}, column {len(first) - len(first.lstrip()) + 1}",
            None,
            "expected a JSON array, a REST response object or NDJSON lines of step results",
        )
        raise _Unreadable([problem])
    # Blank lines stand in for the skipped ones so that syntax errors name the right line.
    document = _load_document(b"\n" * (line_number - 1) + first + stream.read())
    return _document_rows(document)


def _first_content_line(stream: BinaryIO) -> tuple[int, bytes]:
    for line_number, line in enumerate(stream, start=1):
        if line_number == 1:
            line = line.removeprefix(_BOM)
        if line.strip():
            return line_number, line
    raise _Unreadable([RowProblem(None, None, "the file is empty")])


def _loads_or_none(line: bytes) -> Any:
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError:
        return None


def _looks_like_row(value: dict[Any, Any]) -> bool:
    keys = value.keys()
    return not keys & _ENVELOPE_KEYS and bool(keys & _ROW_KEYS)


def _ndjson_rows(stream: BinaryIO, line_number: int, first: Any) -> Iterator[_Row]:
    yield line_number, first
    for number, line in enumerate(stream, start=line_number + 1):
        if line.strip():
            yield number, _parse_line(line, number)


def _parse_line(line: bytes, line_number: int) -> Any:
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        # orjson reports bad UTF-8 at column 1; locate it precisely, and reject
        # the whole file, as one bad byte usually means a wrong encoding throughout.
        utf8 = _utf8_problem(line, line_number)
        if utf8 is not None:
            raise _Unreadable([utf8]) from None
        return _Unparsable(f"not valid JSON: {exc.msg} (column {exc.colno})")


def _load_document(content: bytes) -> Any:
    try:
        return orjson.loads(content)
    except orjson.JSONDecodeError as exc:
        problem = _utf8_problem(content) or RowProblem(
            f"line {exc.lineno}, column {exc.colno}", None, f"not valid JSON: {exc.msg}"
        )
        raise _Unreadable([problem]) from None


def _utf8_problem(data: bytes, first_line: int = 1) -> RowProblem | None:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line_start = data.rfind(b"\n", 0, exc.start) + 1
        line = first_line + data.count(b"\n", 0, exc.start)
        column = len(data[line_start : exc.start].decode("utf-8")) + 1
        message = f"not UTF-8 text: {exc.reason} 0x{data[exc.start]:02x}"
        return RowProblem(f"line {line}, column {column}", None, message)
    return None


def _document_rows(document: Any) -> tuple[ImportFormat, Iterator[_Row]]:
    if isinstance(document, list):
        return ImportFormat.ARRAY, enumerate(document)
    if not isinstance(document, dict) or "data" not in document:
        message = 'expected a REST response {"data": [...]}, an array or NDJSON lines'
        if isinstance(document, dict) and document:
            message += f"; this object has keys {', '.join(map(repr, document))}"[:300]
        raise _Unreadable([RowProblem(None, None, message)])
    problems = [
        RowProblem(None, key, 'is not a key of a REST response (only "data" and "pagination")')
        for key in document
        if key not in _ENVELOPE_KEYS
    ]
    data = document["data"]
    if not isinstance(data, list):
        problems.append(RowProblem(None, "data", "expected an array of step results"))
    if problems:
        raise _Unreadable(problems)
    return ImportFormat.RESPONSE, enumerate(data)


# Checking and writing ----------------------------------------------------------


class _Checker:
    """Checks rows against the contract and against each other, across batches."""

    def __init__(self, file_format: ImportFormat) -> None:
        self.format = file_format
        self.problems: list[RowProblem] = []
        self.invalid_rows = 0
        self._ids: dict[str, int] = {}
        # flow id -> (organization, position of the row that claimed it; None: the store)
        self._owners: dict[str, tuple[str, int | None]] = {}

    async def check(self, connection: AsyncConnection, batch: list[_Row]) -> list[dict[str, Any]]:
        """The store rows of the valid rows of ``batch``; problems of the others are kept."""
        await self._learn_owners(connection, batch)
        rows: list[dict[str, Any]] = []
        for position, value in batch:
            row, errors = self._check_row(position, value)
            if errors:
                self.invalid_rows += 1
                location = self.location(position)
                self.problems.extend(RowProblem(location, e.field, e.message) for e in errors)
            elif row is not None:
                rows.append(row)
        return rows

    def location(self, position: int) -> str:
        """Where a row is, in the words of its format."""
        if self.format is ImportFormat.NDJSON:
            return f"line {position}"
        if self.format is ImportFormat.RESPONSE:
            return f"index {position} (data[{position}])"
        return f"index {position}"

    async def _learn_owners(self, connection: AsyncConnection, batch: list[_Row]) -> None:
        # Flows already in the store keep their organization, whatever the file says first.
        new_flows = dict.fromkeys(
            flow
            for _, value in batch
            if isinstance(value, dict)
            and isinstance(flow := value.get("flowId"), str)
            and flow not in self._owners
        )
        for flow, organization in (await flow_owners(connection, list(new_flows))).items():
            self._owners[flow] = (organization, None)

    def _check_row(
        self, position: int, value: Any
    ) -> tuple[dict[str, Any] | None, list[FieldError]]:
        if isinstance(value, _Unparsable):
            return None, [FieldError("(row)", value.message)]
        errors: list[FieldError] = []
        row: dict[str, Any] | None = None
        try:
            row = parse_step_result(value)
        except InvalidStepResult as exc:
            errors.extend(exc.errors)
        if isinstance(value, dict):
            # Checked on the raw values too, so that one run reports a row's every problem.
            errors.extend(self._duplicate_id(position, value.get("id")))
            errors.extend(
                self._other_owner(position, value.get("flowId"), value.get("organizationId"))
            )
        return (None if errors else row), errors

    def _duplicate_id(self, position: int, step_result_id: Any) -> list[FieldError]:
        if not isinstance(step_result_id, str):
            return []
        first = self._ids.setdefault(step_result_id, position)
        if first == position:
            return []
        message = f"{step_result_id!r} is also the id at {self.location(first)}"
        return [FieldError("id", message)]

    def _other_owner(self, position: int, flow: Any, organization: Any) -> list[FieldError]:
        if not (isinstance(flow, str) and isinstance(organization, str)):
            return []
        owner, origin = self._owners.setdefault(flow, (organization, position))
        if owner == organization:
            return []
        where = "in the store" if origin is None else f"at {self.location(origin)}"
        return [FieldError("organizationId", f"flow {flow!r} belongs to {owner!r} {where}")]


@dataclass(slots=True)
class _Batches:
    """The rows of one file, cut into batches, and whom to tell about progress."""

    name: str
    format: ImportFormat
    rows: Iterator[_Row]
    progress: ProgressCallback | None
    size: int

    def __iter__(self) -> Iterator[list[_Row]]:
        while batch := list(islice(self.rows, self.size)):
            yield batch


@dataclass(slots=True)
class _Tally:
    validated: int = 0
    written: int = 0
    summary: UpsertSummary = field(default_factory=UpsertSummary)


async def _import_rows(connection: AsyncConnection, batches: _Batches) -> _Tally:
    """Check and write every batch; raise InvalidImportFile at the end if any row failed.

    Writing stops at the first problem but checking goes on, so that every
    problem is reported; the caller's transaction then discards what was written.
    """
    checker = _Checker(batches.format)
    tally = _Tally()
    try:
        for batch in batches:
            rows = await checker.check(connection, batch)
            tally.validated += len(batch)
            if not checker.problems:
                tally.summary += await upsert_step_results(connection, rows)
                tally.written += len(rows)
            if len(batch) == batches.size:
                _report(batches, tally, checker, done=False)
    except _Unreadable as exc:
        raise InvalidImportFile(
            batches.name, exc.problems, format=batches.format, rows=tally.validated
        ) from None
    _report(batches, tally, checker, done=True)
    if checker.problems:
        raise InvalidImportFile(
            batches.name, checker.problems, format=batches.format, rows=tally.validated
        )
    return tally


def _report(batches: _Batches, tally: _Tally, checker: _Checker, *, done: bool) -> None:
    if batches.progress is not None:
        batches.progress(
            ImportProgress(
                batches.name,
                batches.format,
                tally.validated,
                tally.written,
                checker.invalid_rows,
                done,
            )
        )
