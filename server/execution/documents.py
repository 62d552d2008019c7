"""GraphQL documents as the server accepts them, over every transport: bounded in size,
parsed, measured against the query limits, validated once with the full rule set
(graphql-core's and the two Strawberry adds), and kept in the one bounded cache.

What a request costs before its first resolver runs must not grow faster than the text it
sent, and what the server keeps of it must be bounded: so a document is refused by its
length before parsing, by its token count while parsing, by its shape (query_limits:
linear, before any rule) before graphql-core's rules, and the cache that keeps prepared
documents is keyed by a digest of the text (not the text) and bounded by an estimate of
the bytes each entry holds. A parsed document keeps its source text, its tokens and its
nodes: about 130 bytes per character of a dense document (tests/server/test_documents.py
checks that the estimate is an upper bound).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    DocumentNode,
    GraphQLError,
    GraphQLSchema,
    OperationDefinitionNode,
    specified_rules,
    validate,
)
from graphql.language.parser import parse
from graphql.validation import ASTValidationRule

from .private import load
from .query_limits import LIMIT_EXCEEDED, Measured, QueryLimits, measure

# Bytes a cached document may hold per character of its text, and whatever its length (see
# the module docstring).
BYTES_PER_CHARACTER = 160
BYTES_PER_DOCUMENT = 16 * 1024


# The rules Strawberry's Schema.execute validates with: graphql-core's, then its own two
# (strawberry.schema.schema.validate_document; the canary test holds the two lists equal).
RULES: tuple[type[ASTValidationRule], ...] = (
    *specified_rules,
    load("strawberry.schema.validation_rules.maybe_null", "MaybeNullValidationRule"),
    load("strawberry.schema.validation_rules.one_of", "OneOfInputValidationRule"),
)


@dataclass(frozen=True, slots=True)
class DocumentLimits:
    max_characters: int = 64 * 1024
    max_tokens: int = 10_000
    query: QueryLimits = field(default_factory=QueryLimits)
    cache_bytes: int = 32 * 1024 * 1024


SEVERAL_OPERATIONS = "The document holds several operations; name one in 'operationName'."


def no_operation(name: str | None, operations: int) -> str:
    """Why a request runs no operation of its document, which holds `operations`."""
    if name:
        return f"The document has no operation named {name!r}."
    return SEVERAL_OPERATIONS if operations else "The document holds no operation to run."


class Prepared:
    """A document ready to execute, or the errors that refuse it. `plans` is the executor's
    store for what it learns of the document (fast_path.py): it lives and dies
    with the document."""

    __slots__ = ("document", "errors", "measured", "operations", "plans", "size")

    def __init__(
        self,
        document: DocumentNode | None,
        errors: list[GraphQLError],
        measured: Measured | None = None,
        size: int = 0,
    ) -> None:
        self.document = document
        self.errors = errors
        self.measured = measured
        self.size = size
        self.plans: dict[Any, Any] = {}
        self.operations = (
            [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
            if document is not None
            else []
        )

    def operation(self, name: str | None) -> OperationDefinitionNode | None:
        """The operation a request names, or the document's only one when it names none."""
        if name is None:
            return self.operations[0] if len(self.operations) == 1 else None
        return next((o for o in self.operations if o.name and o.name.value == name), None)

    def no_operation(self, name: str | None) -> str:
        """Why `operation(name)` found none."""
        return no_operation(name, len(self.operations))

    def cost_errors(
        self, operation: OperationDefinitionNode, variables: dict[str, Any] | None
    ) -> list[GraphQLError]:
        """Refusal of an operation whose sizes, given by variables, cost too much."""
        return [] if self.measured is None else self.measured.cost_errors(operation, variables)


class Documents:
    """Prepares documents for one schema under one set of limits, and caches them."""

    def __init__(self, schema: GraphQLSchema, limits: DocumentLimits) -> None:
        self._schema = schema
        self._limits = limits
        self._cache: OrderedDict[bytes, Prepared] = OrderedDict()
        self._cached_bytes = 0

    @property
    def cached_bytes(self) -> int:
        """The estimated size of what the cache holds."""
        return self._cached_bytes

    def prepare(self, text: str) -> Prepared:
        if len(text) > self._limits.max_characters:
            # Refused before hashing or parsing: its length is all it costs.
            return Prepared(
                None,
                [
                    GraphQLError(
                        f"The document has {len(text):,} characters; the limit is "
                        f"{self._limits.max_characters:,}.",
                        extensions={"code": LIMIT_EXCEEDED},
                    )
                ],
            )
        key = hashlib.blake2b(text.encode(errors="surrogatepass"), digest_size=16).digest()
        prepared = self._cache.get(key)
        if prepared is not None:
            self._cache.move_to_end(key)
            return prepared
        prepared = self._prepare(text)
        self._keep(key, prepared)
        return prepared

    def _prepare(self, text: str) -> Prepared:
        size = BYTES_PER_DOCUMENT + len(text) * BYTES_PER_CHARACTER
        try:
            document = parse(text, max_tokens=self._limits.max_tokens)
        except GraphQLError as error:
            # graphql-core says so only in the message (a test holds it to that).
            if f"more than {self._limits.max_tokens} tokens" in error.message:
                error = GraphQLError(
                    f"The document has more than {self._limits.max_tokens:,} tokens; "
                    "send a smaller one.",
                    extensions={"code": LIMIT_EXCEEDED},
                )
            return Prepared(None, [error], size=size)
        measured = measure(self._schema, document, self._limits.query)
        if measured.errors:
            return Prepared(document, measured.errors, measured, size)
        errors = validate(self._schema, document, RULES)
        return Prepared(document, errors, measured, size)

    def _keep(self, key: bytes, prepared: Prepared) -> None:
        budget = self._limits.cache_bytes
        if prepared.size > budget // 8:
            return  # one document may not take the room of many
        self._cache[key] = prepared
        self._cached_bytes += prepared.size
        while self._cached_bytes > budget:
            _, evicted = self._cache.popitem(last=False)
            self._cached_bytes -= evicted.size
