"""Compiled list pages: a validated operation turned once into a function from rows to data.

A frontend listing step results sends one query text over and over; executing it
field by field costs about 10 µs per field and row. :func:`compile_operation`
looks at a validated operation once. When its root selects only ``stepResults``
(and ``__typename``) and everything under the page is a plain field of
``StepResultConnection``, ``Pagination`` or ``StepResult`` (aliases, fragments,
``@skip``/``@include`` and ``__typename`` included), it yields an
:class:`OperationPlan`; anything else (``flow``, ``totalCount``, other root fields,
fields with resolvers) is left to the executor.

Fields are grouped, merged and ordered by graphql-core's own ``collect_fields``,
once per outcome of the operation's ``@skip``/``@include`` conditions, and the
rows are rendered by a function generated for that :class:`Shape` (see
``graphql.row_renderers``), which hands back to the executor any row it cannot
render exactly as the executor would.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson
from graphql import (
    DirectiveNode,
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    GraphQLField,
    GraphQLObjectType,
    GraphQLSchema,
    OperationDefinitionNode,
    OperationType,
    VariableNode,
    Visitor,
    visit,
)
from graphql.execution.collect_fields import (
    FieldDetails,
    FragmentDetails,
    collect_fields,
    collect_subfields,
)
from graphql.execution.values import VariableValues, get_variable_values

from stepgraph.graphql.row_renderers import ROW_TYPE, RowRenderer, RowSchema, compile_rows
from stepgraph.query import StepResultQuery
from stepgraph.store.reads import JsonPage

PAGE_FIELD = "stepResults"
CONNECTION_TYPE = "StepResultConnection"
PAGINATION_TYPE = "Pagination"
PAGINATION_FIELDS = frozenset({"limit", "offset", "returned", "hasMore"})
# Outcomes of @skip/@include kept per operation; 2**n are possible, a few are used.
MAX_SHAPES = 16
# Query objects kept per page field, by the values of the variables its arguments use.
MAX_QUERIES = 64
# Coerced variables kept per operation, by the JSON text of what the client sent.
MAX_VARIABLE_SETS = 64


# --- shapes ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PageSelection:
    """One root ``stepResults`` field: its arguments and how to render its page."""

    key: str
    node: FieldNode
    # (response key, source): "data", "__typename" or a Pagination field per entry.
    entries: tuple[tuple[str, Any], ...]
    render_rows: RowRenderer | None
    # Variables the arguments use: with the same values, the same query object.
    argument_variables: tuple[str, ...]
    queries: dict[Any, StepResultQuery] = field(default_factory=dict)

    def remember(self, key: Any, query: StepResultQuery) -> None:
        """Keep the query built for ``key``, forgetting the oldest beyond ``MAX_QUERIES``."""
        if len(self.queries) >= MAX_QUERIES:
            del self.queries[next(iter(self.queries))]
        self.queries[key] = query

    def render(self, query: StepResultQuery, page: JsonPage) -> dict[str, Any]:
        """The connection's value for the page read for ``query``."""
        out: dict[str, Any] = {}
        for key, source in self.entries:
            if source == "data":
                assert self.render_rows is not None
                out[key] = self.render_rows(page.rows)
            elif isinstance(source, dict):
                out[key] = _pagination(source, query, page)
            else:
                out[key] = source
        return out


def _pagination(selection: dict[str, str], query: StepResultQuery, page: JsonPage) -> Any:
    values = {
        "limit": query.limit,
        "offset": query.offset,
        "returned": len(page.rows),
        "hasMore": page.has_more,
        "__typename": PAGINATION_TYPE,
    }
    return {key: values[name] for key, name in selection.items()}


@dataclass(frozen=True, slots=True)
class Shape:
    """The root of an operation for one outcome of its conditions: typenames and pages."""

    root: tuple[tuple[str, str | PageSelection], ...]

    @property
    def pages(self) -> list[PageSelection]:
        """The page fields, in response order."""
        return [value for _, value in self.root if isinstance(value, PageSelection)]


class _Unsupported(Exception):
    pass


def _details_name(details: list[FieldDetails]) -> str:
    return details[0].node.name.value


class OperationPlan:
    """A validated query operation whose pages can be rendered without the executor."""

    def __init__(
        self,
        schema: GraphQLSchema,
        operation: OperationDefinitionNode,
        fragments: dict[str, FragmentDetails],
        conditions: tuple[str, ...],
        rows: RowSchema,
    ) -> None:
        self.schema = schema
        self.operation = operation
        self.fragments = fragments
        self.conditions = conditions
        self.rows = rows
        self.page_field: GraphQLField = schema.query_type.fields[PAGE_FIELD]  # type: ignore[union-attr]
        self._shapes: dict[tuple[Any, ...], Shape | None] = {}
        self._variables: dict[bytes, VariableValues] = {}

    def coerce_variables(self, inputs: dict[str, Any]) -> VariableValues | None:
        """The request's variables coerced as the executor coerces them; None on any error.

        Clients send the same variables over and over (the next page, the same filter):
        coercion depends on nothing else, so its outcome is kept by their JSON text.
        """
        try:
            key: bytes | None = orjson.dumps(inputs, option=orjson.OPT_SORT_KEYS)
        except TypeError:  # an integer beyond 64 bits: coerce without keeping it
            key = None
        known = self._variables.get(key) if key is not None else None
        if known is not None:
            return known
        coerced = get_variable_values(
            self.schema, self.operation.variable_definitions or (), inputs
        )
        if isinstance(coerced, list):
            return None
        if key is not None:
            if len(self._variables) >= MAX_VARIABLE_SETS:
                del self._variables[next(iter(self._variables))]
            self._variables[key] = coerced
        return coerced

    def shape(self, variables: VariableValues) -> Shape | None:
        """The shape for these (coerced) variables; None when the executor must answer."""
        key = tuple(variables.coerced.get(name) for name in self.conditions)
        if key in self._shapes:
            return self._shapes[key]
        try:
            shape: Shape | None = self._compile(variables)
        except _Unsupported:
            shape = None
        if len(self._shapes) < MAX_SHAPES:
            self._shapes[key] = shape
        return shape

    def _object_type(self, name: str) -> GraphQLObjectType:
        found = self.schema.type_map[name]
        assert isinstance(found, GraphQLObjectType)
        return found

    def _compile(self, variables: VariableValues) -> Shape:
        query_type = self.schema.query_type
        assert query_type is not None
        collected = collect_fields(
            self.schema, self.fragments, variables, query_type, self.operation
        )
        if collected.new_defer_usages:
            raise _Unsupported
        root: list[tuple[str, str | PageSelection]] = []
        for key, details in collected.grouped_field_set.items():
            name = _details_name(details)
            if name == "__typename":
                root.append((key, query_type.name))
            elif name == PAGE_FIELD:
                root.append((key, self._page(key, details, variables)))
            else:
                raise _Unsupported
        return Shape(tuple(root))

    def _subfields(
        self, type_name: str, details: list[FieldDetails], variables: VariableValues
    ) -> dict[str, list[FieldDetails]]:
        collected = collect_subfields(
            self.schema,
            self.fragments,
            variables,
            self.operation,
            self._object_type(type_name),
            details,
        )
        if collected.new_defer_usages:
            raise _Unsupported
        return collected.grouped_field_set

    def _page(
        self, key: str, details: list[FieldDetails], variables: VariableValues
    ) -> PageSelection:
        entries: list[tuple[str, Any]] = []
        render_rows = None
        for sub_key, sub in self._subfields(CONNECTION_TYPE, details, variables).items():
            name = _details_name(sub)
            if name == "__typename":
                entries.append((sub_key, CONNECTION_TYPE))
            elif name == "data":
                selections: list[tuple[str, str]] = []
                for row_key, row_details in self._subfields(ROW_TYPE, sub, variables).items():
                    row_name = _details_name(row_details)
                    if row_name != "__typename" and row_name not in self.rows.fields:
                        raise _Unsupported
                    selections.append((row_key, row_name))
                render_rows = compile_rows(selections, self.rows)
                entries.append((sub_key, "data"))
            elif name == "pagination":
                pagination: dict[str, str] = {}
                for item_key, item in self._subfields(PAGINATION_TYPE, sub, variables).items():
                    item_name = _details_name(item)
                    if item_name != "__typename" and item_name not in PAGINATION_FIELDS:
                        raise _Unsupported
                    pagination[item_key] = item_name
                entries.append((sub_key, pagination))
            else:
                raise _Unsupported
        node = details[0].node
        return PageSelection(key, node, tuple(entries), render_rows, _variables_in(node))


def _variables_in(node: FieldNode) -> tuple[str, ...]:
    """Variables the field's arguments use."""
    names: set[str] = set()

    class _Variables(Visitor):
        def enter_variable(self, variable: VariableNode, *_args: Any) -> None:
            names.add(variable.name.value)

    for argument in node.arguments or ():
        visit(argument, _Variables())
    return tuple(sorted(names))


def _condition_variables(document: DocumentNode) -> tuple[str, ...]:
    """Variables that decide a @skip or @include anywhere in the document."""
    names: set[str] = set()

    class _Conditions(Visitor):
        def enter_directive(self, node: DirectiveNode, *_args: Any) -> None:
            if node.name.value in {"skip", "include"}:
                for argument in node.arguments or ():
                    if isinstance(argument.value, VariableNode):
                        names.add(argument.value.name.value)

    visit(document, _Conditions())
    return tuple(sorted(names))


def compile_operation(
    schema: GraphQLSchema, document: DocumentNode, operation_name: str | None, rows: RowSchema
) -> OperationPlan | None:
    """The plan of a validated document's operation; None when only the executor can run it.

    The operation is picked as the executor picks it: by name, or the only one.
    """
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name is None:
        candidates = operations if len(operations) == 1 else []
    else:
        candidates = [o for o in operations if o.name and o.name.value == operation_name]
    if len(candidates) != 1 or candidates[0].operation is not OperationType.QUERY:
        return None
    fragments = {
        d.name.value: FragmentDetails(d)
        for d in document.definitions
        if isinstance(d, FragmentDefinitionNode)
    }
    return OperationPlan(schema, candidates[0], fragments, _condition_variables(document), rows)
