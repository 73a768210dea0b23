"""GraphQL over HTTP details: media types, request errors and abuse limits."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache, partial

from graphql import (
    DocumentNode,
    ExecutionResult,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
)
from starlette.requests import Request
from strawberry.extensions import (
    MaxAliasesLimiter,
    MaxTokensLimiter,
    QueryDepthLimiter,
    SchemaExtension,
)
from strawberry.extensions.query_depth_limiter import IgnoreContext
from strawberry.types.graphql import OperationType

GRAPHQL_RESPONSE = "application/graphql-response+json"
JSON = "application/json"


@lru_cache(maxsize=256)
def negotiate_media_type(accept: str | None) -> str | None:
    """The response type for an ``Accept`` header; None when neither JSON type is acceptable.

    No header, ``*/*`` or ``application/*`` mean the legacy ``application/json``;
    on a tie the GraphQL response type wins, as the GraphQL-over-HTTP spec asks.
    """
    if accept is None or not accept.strip():
        return JSON
    weights: dict[str, float] = {}
    for part in accept.split(","):
        media, *parameters = (p.strip() for p in part.split(";"))
        quality = 1.0
        for parameter in parameters:
            name, _, value = parameter.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        media = media.lower()
        weights[media] = max(weights.get(media, 0.0), quality)
    wildcard = max(weights.get("*/*", 0.0), weights.get("application/*", 0.0))
    graphql_weight = weights.get(GRAPHQL_RESPONSE, 0.0)
    json_weight = weights.get(JSON, wildcard)
    if graphql_weight <= 0 and json_weight <= 0:
        return None
    return GRAPHQL_RESPONSE if graphql_weight >= json_weight else JSON


@dataclass(frozen=True, slots=True)
class QueryLimits:
    """How big a document may be before it is refused, unexecuted."""

    max_depth: int = 12
    max_aliases: int = 30
    max_tokens: int = 5000
    # Operations per batched request; 0 turns batching off.
    max_batch: int = 0
    # Selection levels counting fragments, and selections once fragments are inlined (by
    # default twice the token limit, which only fragments spread many times can reach). The
    # depth and alias limiters walk every spread of a fragment again, recursively: without
    # these, a short chain of fragments overflows the stack and a short fan-out of them
    # costs minutes of CPU, all within the token limit.
    max_nesting: int = 100
    max_selections: int | None = None


def _is_introspection(context: IgnoreContext) -> bool:
    # The standard introspection query nests `ofType` deeper than any data query
    # needs; GraphiQL, codegen and Apollo tooling send it, so depth does not apply.
    return context.field_name in {"__schema", "__type"}


def limit_extensions(limits: QueryLimits) -> list[Callable[[], SchemaExtension]]:
    """Factories of Strawberry's limiters configured from ``limits`` (fresh per request)."""
    return [
        partial(MaxTokensLimiter, max_token_count=limits.max_tokens),
        partial(
            FragmentLimiter,
            max_nesting=limits.max_nesting,
            max_selections=limits.max_selections or 2 * limits.max_tokens,
        ),
        partial(MaxAliasesLimiter, max_alias_count=limits.max_aliases),
        partial(QueryDepthLimiter, max_depth=limits.max_depth, should_ignore=_is_introspection),
    ]


_Spreads = list[tuple[str, int]]


def _shape(selection_set: SelectionSetNode) -> tuple[int, int, _Spreads]:
    """Selections, selection levels and fragment spreads (with their level) of one definition."""
    selections = nesting = 0
    spreads: _Spreads = []
    pending = [(selection_set, 1)]
    while pending:
        current, level = pending.pop()
        nesting = max(nesting, level)
        for selection in current.selections:
            selections += 1
            if isinstance(selection, FragmentSpreadNode):
                spreads.append((selection.name.value, level))
            elif isinstance(selection, FieldNode | InlineFragmentNode) and selection.selection_set:
                pending.append((selection.selection_set, level + 1))
    return selections, nesting, spreads


def fragment_cost(document: DocumentNode, cap: int) -> tuple[int, int]:
    """The deepest nesting of an operation and the selections of all operations, fragments inlined.

    Computed once per fragment, without recursion; selections are counted up to ``cap``.
    A spread that closes a cycle counts nothing (validation reports the cycle).
    """
    shapes = {
        d.name.value: _shape(d.selection_set)
        for d in document.definitions
        if isinstance(d, FragmentDefinitionNode)
    }
    done: dict[str, tuple[int, int]] = {}

    def combine(selections: int, nesting: int, spreads: _Spreads) -> tuple[int, int]:
        for name, level in spreads:
            if name in done:
                selections = min(cap, selections + done[name][0])
                nesting = max(nesting, level + done[name][1])
        return selections, nesting

    for root in shapes:
        path = [(root, iter(shapes[root][2]))] if root not in done else []
        on_path = {root}
        while path:
            name, spreads = path[-1]
            for spread, _level in spreads:
                if spread in shapes and spread not in done and spread not in on_path:
                    path.append((spread, iter(shapes[spread][2])))
                    on_path.add(spread)
                    break
            else:
                path.pop()
                on_path.discard(name)
                done[name] = combine(*shapes[name])
    total = deepest = 0
    for definition in document.definitions:
        if isinstance(definition, OperationDefinitionNode):
            selections, nesting = combine(*_shape(definition.selection_set))
            total = min(cap, total + selections)
            deepest = max(deepest, nesting)
    return total, deepest


class FragmentLimiter(SchemaExtension):
    """Refuses, before validation walks them, documents whose fragments nest or fan out too far."""

    def __init__(self, *, max_nesting: int, max_selections: int) -> None:
        self.max_nesting = max_nesting
        self.max_selections = max_selections

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        if document is not None and context.pre_execution_errors is None:
            selections, nesting = fragment_cost(document, cap=self.max_selections + 1)
            message = None
            if nesting > self.max_nesting:
                message = (
                    f"the document nests {nesting} levels deep counting fragments; "
                    f"at most {self.max_nesting} are allowed"
                )
            elif selections > self.max_selections:
                message = (
                    "once its fragments are inlined the document has more than "
                    f"{self.max_selections:,} selections; at most {self.max_selections:,} "
                    "are allowed"
                )
            if message is not None:
                error = GraphQLError(message, extensions={"code": "GRAPHQL_VALIDATION"})
                context.pre_execution_errors = [error]
        yield


class OperationSelection(SchemaExtension):
    """A document with several operations must say which one to run; GET runs queries only."""

    def on_validate(self) -> Iterator[None]:
        # Mutations over GET are refused before this; subscriptions are left to us.
        context = self.execution_context
        request = getattr(context.context, "request", None)
        is_get = isinstance(request, Request) and request.method == "GET"
        if is_get and context.pre_execution_errors is None:
            operation_type = context.operation_type
            if operation_type is not OperationType.QUERY:
                response = context.context.response
                response.status_code = 405
                response.headers["Allow"] = "POST"
                context.pre_execution_errors = [
                    GraphQLError(
                        f"{operation_type.value}s are not allowed when using GET",
                        extensions={"code": "METHOD_NOT_ALLOWED"},
                    )
                ]
        yield

    def on_execute(self) -> Iterator[None]:
        document = self.execution_context.graphql_document
        if document is not None and self.execution_context.result is None:
            operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
            named = getattr(self.execution_context, "_provided_operation_name", None)
            if len(operations) > 1 and named is None:
                self.execution_context.result = ExecutionResult(
                    data=None,
                    errors=[
                        GraphQLError(
                            "the document holds several operations: "
                            "say which one to run with `operationName`",
                            extensions={"code": "BAD_REQUEST"},
                        )
                    ],
                )
        yield
