"""Answering list pages without the executor, and falling back to it for everything else.

The view offers every HTTP operation to :meth:`FastPath.execute` first. It answers
only when all of this holds, and otherwise hands the request, untouched, to
Strawberry's executor:

* the query text is in the document cache and validated without errors (so the
  first request of a text always runs the normal way, which parses and validates
  it under every limit, and records the outcome);
* the operation compiles to an :class:`~stepgraph.graphql.plans.OperationPlan` and
  the outcome of its ``@skip``/``@include`` conditions to a shape;
* the caller is authenticated and holds the read scope (the executor is the one
  that answers 401, 403 and 503);
* the variables and the page arguments coerce and validate (errors are the
  executor's to report);
* every page reads without error and every row renders exactly.

A page read that fails (NOT_FOUND, a statement timeout, an outage) is not read
again: the executor runs with that failure replayed to ``load_page`` through
:data:`PAGE_FAILURES`, so it reports it as it would have, without a second query.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from graphql import GraphQLError, GraphQLObjectType
from graphql.execution.values import VariableValues, get_argument_values
from strawberry.schema import Schema
from strawberry.types import ExecutionResult
from strawberry.types.arguments import convert_arguments
from strawberry.types.base import StrawberryObjectDefinition

from stepgraph.graphql.arguments import build_query
from stepgraph.graphql.context import Context
from stepgraph.graphql.documents import DocumentCache
from stepgraph.graphql.plans import (
    PAGE_FIELD,
    OperationPlan,
    PageSelection,
    Shape,
    compile_operation,
)
from stepgraph.graphql.row_renderers import ROW_TYPE, RowSchema, Unrenderable, row_schema
from stepgraph.query import InvalidArgument, StepResultQuery
from stepgraph.store import reads
from stepgraph.store.engine import reading

logger = logging.getLogger("stepgraph.graphql")

# Page reads that failed on the compiled path of the running request, by query; set
# only while the executor answers that request instead (see ``types.load_page``).
PAGE_FAILURES: ContextVar[Mapping[StepResultQuery, Exception]] = ContextVar(
    "stepgraph_page_failures", default=MappingProxyType({})
)


def page_failure(query: StepResultQuery) -> Exception | None:
    """The failure the compiled path met reading ``query`` in this request, if any."""
    return PAGE_FAILURES.get().get(query)


@dataclass(slots=True)
class FastPathStats:
    """How requests were answered, for tests and benchmarks."""

    compiled: int = 0
    executor: int = 0
    replayed_failures: int = 0


Executor = Callable[[], Awaitable[ExecutionResult]]
_ABSENT = object()


def _plain_fields(schema: Schema, type_name: str) -> frozenset[str]:
    """GraphQL names of the fields of ``type_name`` that read an attribute and nothing else."""
    graphql_type = schema._schema.type_map[type_name]
    assert isinstance(graphql_type, GraphQLObjectType)
    definition = graphql_type.extensions[schema.schema_converter.DEFINITION_BACKREF]
    assert isinstance(definition, StrawberryObjectDefinition)
    converter = schema.config.name_converter
    return frozenset(
        converter.get_graphql_name(field)
        for field in definition.fields
        if field.base_resolver is None and not field.extensions and not field.permission_classes
    )


@dataclass(frozen=True, slots=True)
class _Failure:
    """A page read that failed, for the executor to report."""

    query: StepResultQuery
    error: Exception


class FastPath:
    """The compiled path of one schema, over that schema's document cache."""

    def __init__(self, schema: Schema, documents: DocumentCache) -> None:
        self.schema = schema
        self.documents = documents
        self.stats = FastPathStats()
        self.rows: RowSchema = row_schema(schema._schema, _plain_fields(schema, ROW_TYPE))
        field = schema.get_field_for_type(PAGE_FIELD, "Query")
        assert field is not None
        assert "status" in self.rows.fields
        self._page_field = field
        self._page_definition = schema._schema.query_type.fields[PAGE_FIELD]  # type: ignore[union-attr]
        self._argument_defaults = {a.python_name: a.default for a in field.arguments}
        # An extension that wraps resolvers would be bypassed: then nothing is compiled.
        self.enabled = not field.extensions and not any(
            extension._implements_resolve() for extension in schema.get_extensions()
        )

    def plan(self, text: str, operation_name: str | None) -> OperationPlan | None:
        """The compiled plan of a validated, cached query text; None for the executor."""
        entry = self.documents.get(text)
        if entry is None or not entry.is_valid:
            return None
        key = ("plan", operation_name)
        if key not in entry.derived:
            entry.derived[key] = compile_operation(
                self.schema._schema, entry.document, operation_name, self.rows
            )
        plan: OperationPlan | None = entry.derived[key]
        return plan

    async def execute(
        self,
        *,
        query: Any,
        variables: Any,
        operation_name: Any,
        context: Context,
        executor: Executor,
    ) -> ExecutionResult:
        """Answer an operation on the compiled path, or have ``executor`` answer it."""
        planned = self._plan_request(query, variables, operation_name, context)
        if planned is None:
            return await self._executor(executor)
        shape, pages = planned
        read = await self._read(pages, context)
        if read is None:
            # Refusing a caller (401, 403, 503) is the executor's, with its extensions.
            return await self._executor(executor)
        if isinstance(read, _Failure):
            self.stats.replayed_failures += 1
            replay = PAGE_FAILURES.set(MappingProxyType({read.query: read.error}))
            try:
                return await self._executor(executor)
            finally:
                PAGE_FAILURES.reset(replay)
        fetched = read
        data: dict[str, Any] = {}
        try:
            for key, value in shape.root:
                data[key] = (
                    value.render(*fetched[key]) if isinstance(value, PageSelection) else value
                )
        except Unrenderable:
            return await self._executor(executor)
        except Exception:
            logger.exception("compiled page failed to render; the executor answers instead")
            return await self._executor(executor)
        self.stats.compiled += 1
        return ExecutionResult(data=data, errors=None)

    async def _read(
        self, pages: list[tuple[PageSelection, StepResultQuery]], context: Context
    ) -> dict[str, tuple[StepResultQuery, reads.JsonPage]] | _Failure | None:
        """The pages by response key, once the caller is authenticated; None when the caller
        may not read them; the first failed read, which ends the reading."""
        # An API key is checked on the connection the pages are read with, as the REST
        # twin does; any other token before, holding no connection meanwhile.
        lend = context.lends_connection()
        if not lend:
            await context.authenticate()
            if context.refusal() is not None:
                return None
        fetched: dict[str, tuple[StepResultQuery, reads.JsonPage]] = {}
        async with reading(context.engine) as connection:
            if lend:
                await context.authenticate(connection)
                if context.refusal() is not None:
                    return None
            organization_id = context.organization_id
            for selection, page_query in pages:
                try:
                    page = await reads.fetch_json_page(
                        connection, page_query, organization_id=organization_id
                    )
                except Exception as error:
                    return _Failure(page_query, error)
                fetched[selection.key] = (page_query, page)
        return fetched

    def _plan_request(
        self, query: Any, variables: Any, operation_name: Any, context: Context
    ) -> tuple[Shape, list[tuple[PageSelection, StepResultQuery]]] | None:
        """The shape and page queries of a request the compiled path answers, else None."""
        if (
            not self.enabled
            or not isinstance(query, str)
            or not isinstance(operation_name, str | None)
            or not isinstance(variables, dict | None)
        ):
            return None
        try:
            plan = self.plan(query, operation_name)
            if plan is None:
                return None
            coerced = plan.coerce_variables(variables or {})
            if coerced is None:
                return None
            shape = plan.shape(coerced)
            if shape is None:
                return None
            return shape, [(page, self._query(page, coerced, context)) for page in shape.pages]
        except (InvalidArgument, GraphQLError):
            # Invalid arguments are the executor's to report, with their codes and paths.
            return None
        except Exception:
            logger.exception("planning a compiled page failed; the executor answers instead")
            return None

    async def _executor(self, executor: Executor) -> ExecutionResult:
        self.stats.executor += 1
        return await executor()

    def _query(
        self, selection: PageSelection, variables: VariableValues, context: Context
    ) -> StepResultQuery:
        """The page's query object, built as ``Query.step_results`` builds it.

        It depends only on the arguments, so on the values of the variables they use.
        """
        coerced = variables.coerced
        key: tuple[Any, ...] | None = (
            context.limits,
            # A variable sent as null and one not sent can mean different arguments.
            *(coerced.get(name, _ABSENT) for name in selection.argument_variables),
        )
        try:
            known = selection.queries.get(key)
        except TypeError:  # a list or object value: nothing to look up
            known, key = None, None
        if known is not None:
            return known
        query = self._build_query(selection, variables, context)
        if key is not None:
            selection.remember(key, query)
        return query

    def _build_query(
        self, selection: PageSelection, variables: VariableValues, context: Context
    ) -> StepResultQuery:
        arguments = get_argument_values(self._page_definition, selection.node, variables)
        kwargs: dict[str, Any] = dict(self._argument_defaults)
        kwargs.update(
            convert_arguments(
                arguments,
                self._page_field.arguments,
                scalar_registry=self.schema.schema_converter.scalar_registry,
                config=self.schema.config,
            )
        )
        flow_id = kwargs.pop("flow_id")
        return build_query(flow_id=str(flow_id), limits=context.limits, **kwargs)
