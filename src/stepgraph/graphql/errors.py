"""Every GraphQL error leaves with an ``extensions.code``; unexpected ones are masked.

Codes follow Apollo's conventions so client libraries recognise them:
BAD_USER_INPUT (with ``argument``), NOT_FOUND, GRAPHQL_PARSE_FAILED,
GRAPHQL_VALIDATION and INTERNAL_SERVER_ERROR (with ``requestId``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from typing import Any

from graphql import (
    ArgumentNode,
    DocumentNode,
    GraphQLError,
    GraphQLSyntaxError,
    ValidationContext,
    VariableNode,
    Visitor,
    visit,
)
from graphql.validation import ValuesOfCorrectTypeRule
from strawberry.extensions import SchemaExtension

from stepgraph.errors import NotFound
from stepgraph.query import InvalidArgument
from stepgraph.store.engine import StatementTimeout, UnstorableText

logger = logging.getLogger("stepgraph.graphql")

INTERNAL_MESSAGE = "Internal server error"
_VARIABLE_ERROR = re.compile(r"^Variable ['\"]\$(?P<name>\w+)['\"]")


class ArgumentValuesRule(ValuesOfCorrectTypeRule):
    """``ValuesOfCorrectTypeRule`` that names the argument holding a bad literal."""

    def __init__(self, context: ValidationContext) -> None:
        super().__init__(context)
        self._arguments: list[str] = []

    def enter_argument(self, node: ArgumentNode, *_args: Any) -> None:
        self._arguments.append(node.name.value)

    def leave_argument(self, node: ArgumentNode, *_args: Any) -> None:
        self._arguments.pop()

    def report_error(self, error: GraphQLError) -> None:
        if self._arguments:
            error.extensions = {"code": "BAD_USER_INPUT", "argument": self._arguments[-1]}
        super().report_error(error)


def _variable_arguments(document: DocumentNode | None) -> dict[str, str]:
    """Map each variable to the first argument it feeds, to name it in errors."""
    found: dict[str, str] = {}
    if document is None:
        return found

    class _Collect(Visitor):
        def enter_argument(self, node: ArgumentNode, *_args: Any) -> None:
            if isinstance(node.value, VariableNode):
                found.setdefault(node.value.name.value, node.name.value)

    visit(document, _Collect())
    return found


def _with_extensions(error: GraphQLError, message: str, extensions: dict[str, Any]) -> GraphQLError:
    return GraphQLError(
        message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        original_error=None,
        extensions=extensions,
    )


class ErrorCodes(SchemaExtension):
    """Gives every error a code and masks what the client must not see."""

    def on_validate(self) -> Iterator[None]:
        self.execution_context.validation_rules = tuple(
            ArgumentValuesRule if rule is ValuesOfCorrectTypeRule else rule
            for rule in self.execution_context.validation_rules
        )
        yield

    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        errors = getattr(result, "errors", None)
        if result is not None and errors:
            result.errors = [self._classify(error) for error in errors]

    def _request_id(self) -> str | None:
        return getattr(self.execution_context.context, "request_id", None)

    def _classify(self, error: GraphQLError) -> GraphQLError:
        original = root_cause(error)
        if isinstance(original, InvalidArgument):
            return _with_extensions(
                error,
                original.message,
                {"code": "BAD_USER_INPUT", "argument": original.argument},
            )
        if isinstance(original, NotFound):
            return _with_extensions(error, str(original), {"code": "NOT_FOUND"})
        if isinstance(original, UnstorableText):
            return _with_extensions(error, str(original), {"code": "BAD_USER_INPUT"})
        if isinstance(original, StatementTimeout):
            return _with_extensions(error, str(original), {"code": "QUERY_TIMEOUT"})
        if is_unexpected(error):
            return _with_extensions(
                error,
                INTERNAL_MESSAGE,
                {"code": "INTERNAL_SERVER_ERROR", "requestId": self._request_id()},
            )
        if error.extensions and "code" in error.extensions:
            return error
        if isinstance(error, GraphQLSyntaxError):
            code: dict[str, Any] = {"code": "GRAPHQL_PARSE_FAILED"}
        elif match := _VARIABLE_ERROR.match(error.message):
            name = match["name"]
            code = {"code": "BAD_USER_INPUT", "variable": name}
            argument = _variable_arguments(self.execution_context.graphql_document).get(name)
            if argument is not None:
                code["argument"] = argument
        else:
            code = {"code": "GRAPHQL_VALIDATION"}
        return _with_extensions(error, error.message, {**(error.extensions or {}), **code})


def root_cause(error: GraphQLError) -> BaseException | None:
    """The exception behind a GraphQL error, through any wrapping GraphQL errors."""
    original = error.original_error
    while isinstance(original, GraphQLError) and original.original_error is not None:
        original = original.original_error
    return original


def is_unexpected(error: GraphQLError) -> bool:
    """True for errors raised by a bug or an outage rather than by the request.

    A scalar refusing an input literal during validation also carries its
    exception, but such errors point at the document (nodes, no path).
    """
    original = root_cause(error)
    if original is None or isinstance(
        original, GraphQLError | InvalidArgument | NotFound | StatementTimeout | UnstorableText
    ):
        return False
    during_validation = error.path is None and bool(error.nodes)
    return not during_validation
