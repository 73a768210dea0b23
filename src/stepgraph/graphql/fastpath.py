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

from collections.abc import Awaitable, Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from graphql import GraphQLObjectType
from graphql.execution.values import VariableValues, get_argument_values
from strawberry.schema import Schema
from strawberry.types import ExecutionResult
from strawberry.types.arguments import convert_arguments
from strawberry.types.base import StrawberryObjectDefinition

from stepgraph.auth.viewer import READ_STEP_RESULTS
from stepgraph.graphql.arguments import build_query
from stepgraph.graphql.context import Context
from stepgraph.graphql.documents import DocumentCache
from stepgraph.graphql.plans import (
    PAGE_FIELD,
    ROW_TYPE,
    OperationPlan,
    PageSelection,
    RowSchema,
    Unrenderable,
    compile_operation,
    row_schema,
)
from stepgraph.query import StepResultQuery
from stepgraph.store import reads

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
        plan = None
        if self.enabled and isinstance(query, str) and isinstance(operation_name, str | None):
            plan = self.plan(query, operation_name)
        viewer = context.viewer
        if (
            plan is None
            or viewer is None
            or context.auth_error is not None
            or READ_STEP_RESULTS not in viewer.scopes
            or not isinstance(variables, dict | None)
        ):
            return await self._executor(executor)
        coerced = plan.coerce_variables(variables or {})
        if coerced is None:
            return await self._executor(executor)
        shape = plan.shape(coerced)
        if shape is None:
            return await self._executor(executor)
        try:
            selections = [(s, self._query(s, coerced, context)) for s in shape.pages]
        except Exception:
            # Invalid arguments are the executor's to report, with their codes and paths.
            return await self._executor(executor)
        fetched: dict[str, tuple[StepResultQuery, reads.JsonPage]] = {}
        for selection, page_query in selections:
            try:
                async with context.engine.connect() as connection:
                    page = await reads.fetch_json_page(
                        connection, page_query, organization_id=viewer.organization_id
                    )
            except Exception as failure:
                self.stats.replayed_failures += 1
                replay = PAGE_FAILURES.set(MappingProxyType({page_query: failure}))
                try:
                    return await self._executor(executor)
                finally:
                    PAGE_FAILURES.reset(replay)
            fetched[selection.key] = (page_query, page)
        data: dict[str, Any] = {}
        try:
            for key, value in shape.root:
                data[key] = (
                    value.render(*fetched[key]) if isinstance(value, PageSelection) else value
                )
        except Unrenderable:
            return await self._executor(executor)
        self.stats.compiled += 1
        return ExecutionResult(data=data, errors=None)

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
