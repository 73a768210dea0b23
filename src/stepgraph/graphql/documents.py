"""Parse and validate a query text once: a bounded cache of documents keyed by their text.

Frontends send the same few query texts over and over, and parsing plus validation
cost a quarter of a small request. Both depend only on the text (the schema, the
validation rules and the limits are fixed per schema), so their outcome is kept
here. What depends on the request (the caller, its scopes, the HTTP method, the
variables) is still checked on every request by the extensions that own it.

:class:`DocumentCacheExtension` must come last among the schema's extensions:
its ``on_validate`` then wraps only graphql-core's validation, so an error that an
earlier extension raised for this request alone (a GET of a mutation, a document
whose fragments fan out too far) is never remembered for the text.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from graphql import DocumentNode, GraphQLError, Token
from strawberry.extensions import SchemaExtension

# Parsed documents keep every token (for error locations): a few hundred bytes each.
# The budget bounds memory whatever clients send; typical list queries hold 100-200.
DEFAULT_MAX_DOCUMENTS = 512
DEFAULT_MAX_TOKENS = 100_000


def count_tokens(document: DocumentNode) -> int:
    """How many lexical tokens the parsed document keeps alive."""
    location = document.loc
    if location is None:
        return 1
    count = 0
    token: Token | None = location.start_token
    while token is not None:
        count += 1
        token = token.next
    return count


@dataclass(eq=False, slots=True)
class CachedDocument:
    """A parsed query text and, once validated, its validation errors."""

    document: DocumentNode
    tokens: int
    # None until the document has been validated; then the (possibly empty) errors.
    errors: list[GraphQLError] | None = None
    # Whatever a consumer derived from the document (e.g. compiled plans), by key.
    derived: dict[Any, Any] = field(default_factory=dict)

    @property
    def is_valid(self) -> bool:
        """True once validation ran and found nothing."""
        return self.errors is not None and not self.errors


class DocumentCache:
    """Least-recently-used documents by query text, bounded by count and by tokens."""

    def __init__(
        self, max_documents: int = DEFAULT_MAX_DOCUMENTS, max_tokens: int = DEFAULT_MAX_TOKENS
    ) -> None:
        self.max_documents = max_documents
        self.max_tokens = max_tokens
        self.tokens = 0
        self._entries: OrderedDict[str, CachedDocument] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, text: str) -> CachedDocument | None:
        """The cached document of ``text``, marked as recently used."""
        entry = self._entries.get(text)
        if entry is not None:
            self._entries.move_to_end(text)
        return entry

    def add(self, text: str, document: DocumentNode) -> CachedDocument | None:
        """Remember a freshly parsed document; None when it is too big to keep."""
        tokens = count_tokens(document)
        if self.max_documents <= 0 or tokens > self.max_tokens // 4:
            return None
        previous = self._entries.pop(text, None)
        if previous is not None:
            self.tokens -= previous.tokens
        entry = CachedDocument(document, tokens)
        self._entries[text] = entry
        self.tokens += tokens
        while len(self._entries) > self.max_documents or self.tokens > self.max_tokens:
            _, evicted = self._entries.popitem(last=False)
            self.tokens -= evicted.tokens
        return entry


class DocumentCacheExtension(SchemaExtension):
    """Skips parsing and validation of a query text seen before (see the module docstring)."""

    def __init__(self, *, cache: DocumentCache) -> None:
        self.cache = cache
        self._entry: CachedDocument | None = None

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        text = context.query
        cacheable = isinstance(text, str) and context.graphql_document is None
        entry = self.cache.get(text) if cacheable and text is not None else None
        if entry is not None:
            context.graphql_document = entry.document
        yield
        if entry is None and cacheable and context.graphql_document is not None:
            assert text is not None
            entry = self.cache.add(text, context.graphql_document)
        self._entry = entry

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        entry = self._entry
        # Errors already set come from an earlier extension, for this request only.
        untouched = context.pre_execution_errors is None
        known = entry.errors if untouched and entry is not None else None
        reused = known is not None
        if known is not None:
            context.pre_execution_errors = list(known)
        yield
        if entry is not None and untouched and not reused:
            errors = context.pre_execution_errors
            if errors is not None:
                entry.errors = list(errors)
