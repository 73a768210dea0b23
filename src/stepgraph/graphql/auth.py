"""Only authenticated callers with the read scope run operations; introspection may be open."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

from graphql import (
    DocumentNode,
    ExecutionResult,
    FieldNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
)
from strawberry.extensions import SchemaExtension

# Root fields that describe the schema and carry no data: open to anyone unless
# introspection is closed. `_service` is how federation tools fetch the SDL.
SCHEMA_FIELDS = frozenset({"__schema", "__type", "__typename", "_service"})


def _root_fields(
    selection_set: SelectionSetNode, document: DocumentNode, seen: set[str]
) -> Iterator[str]:
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            yield selection.name.value
        elif isinstance(selection, InlineFragmentNode):
            yield from _root_fields(selection.selection_set, document, seen)
        elif isinstance(selection, FragmentSpreadNode) and selection.name.value not in seen:
            seen.add(selection.name.value)
            for definition in document.definitions:
                name = getattr(getattr(definition, "name", None), "value", None)
                if name == selection.name.value and hasattr(definition, "selection_set"):
                    yield from _root_fields(definition.selection_set, document, seen)


def asks_only_for_the_schema(document: DocumentNode, operation_name: str | None) -> bool:
    """True when the operation to run selects nothing but schema introspection."""
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name is not None:
        operations = [o for o in operations if o.name and o.name.value == operation_name]
    if len(operations) != 1:
        return False
    return all(
        name in SCHEMA_FIELDS for name in _root_fields(operations[0].selection_set, document, set())
    )


class RequireViewer(SchemaExtension):
    """Refuses an operation before it runs: 401 without a caller, 403 without the scope.

    The token is checked here, once the document is known to be valid: a request refused
    before execution reads nothing.
    """

    async def on_execute(self) -> AsyncIterator[None]:
        context = self.execution_context.context
        await context.authenticate()
        document = self.execution_context.graphql_document
        introspection_open = context.request.state.settings.introspection
        schema_only = document is not None and asks_only_for_the_schema(
            document, self.execution_context.operation_name
        )
        if not (schema_only and introspection_open):
            refusal = context.refusal()
            if refusal is not None:
                self._refuse(*refusal)
        yield

    def _refuse(self, status_code: int, code: str, message: str) -> None:
        response = self.execution_context.context.response
        response.status_code = status_code
        if status_code == 401:
            response.headers["WWW-Authenticate"] = "Bearer"
        self.execution_context.result = ExecutionResult(
            data=None, errors=[GraphQLError(message, extensions={"code": code})]
        )
