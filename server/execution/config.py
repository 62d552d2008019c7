"""The seam's one configuration, read from the settings: the limits a document is held to
(length, tokens, depth, aliases, selections, cost, the response's objects), the size of
the document cache, and whether the fast path runs."""

from __future__ import annotations

from dataclasses import dataclass, field

from graphql import GraphQLSchema

from ...domain.chat_apps import ChatAppRegistry
from ...domain.validation import Limits
from ...resolvers.export import ONCE_PER_REQUEST
from ..settings import Settings
from .documents import DocumentLimits
from .list_sizes import introspection_cost, list_sizes
from .query_limits import QueryLimits


@dataclass(frozen=True, slots=True)
class SeamConfig:
    documents: DocumentLimits = field(default_factory=DocumentLimits)
    fast_path: bool = True

    @property
    def max_objects(self) -> int:
        """The objects a response may hold: the same bound as the estimated cost."""
        return self.documents.query.max_cost


def seam_config(
    settings: Settings, schema: GraphQLSchema, chat_apps: ChatAppRegistry, limits: Limits
) -> SeamConfig:
    return SeamConfig(
        DocumentLimits(
            max_characters=settings.max_document_chars,
            max_tokens=settings.max_query_tokens,
            query=QueryLimits(
                max_depth=settings.max_query_depth,
                max_aliases=settings.max_query_aliases,
                max_selections=settings.max_query_selections,
                max_cost=settings.max_query_cost,
                once_per_operation=ONCE_PER_REQUEST,
                list_sizes=list_sizes(chat_apps.all(), limits),
                introspection_cost=introspection_cost(schema),
            ),
            cache_bytes=settings.document_cache_bytes,
        ),
        fast_path=settings.fast_path,
    )
