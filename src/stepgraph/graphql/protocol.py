"""GraphQL over HTTP details: media types, request errors and abuse limits."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial

from graphql import ExecutionResult, GraphQLError, OperationDefinitionNode
from strawberry.extensions import (
    MaxAliasesLimiter,
    MaxTokensLimiter,
    QueryDepthLimiter,
    SchemaExtension,
)
from strawberry.extensions.query_depth_limiter import IgnoreContext

GRAPHQL_RESPONSE = "application/graphql-response+json"
JSON = "application/json"


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


def _is_introspection(context: IgnoreContext) -> bool:
    # The standard introspection query nests `ofType` deeper than any data query
    # needs; GraphiQL, codegen and Apollo tooling send it, so depth does not apply.
    return context.field_name in {"__schema", "__type"}


def limit_extensions(limits: QueryLimits) -> list[Callable[[], SchemaExtension]]:
    """Factories of Strawberry's limiters configured from ``limits`` (fresh per request)."""
    return [
        partial(MaxTokensLimiter, max_token_count=limits.max_tokens),
        partial(MaxAliasesLimiter, max_alias_count=limits.max_aliases),
        partial(QueryDepthLimiter, max_depth=limits.max_depth, should_ignore=_is_introspection),
    ]


class OperationSelection(SchemaExtension):
    """A document with several operations must say which one to run."""

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
