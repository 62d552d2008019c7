"""Assembles the schema from the resolver areas the server hands in.

Declarative only: how documents are validated and executed is the server's execution seam
(server/execution), which runs the schema with its own executor class; Schema.execute and
Schema.subscribe, for whoever calls them directly, run Strawberry's own unless one is
handed in here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import strawberry
from graphql import Executor, GraphQLError
from strawberry.extensions import SchemaExtension
from strawberry.schema.config import StrawberryConfig
from strawberry.tools import merge_types
from strawberry.types.base import get_object_definition

from .directives import Auth
from .scalars import AWARE_DATETIME


def build_schema(
    queries: Sequence[type],
    mutations: Sequence[type],
    extensions: Sequence[type[SchemaExtension] | Callable[[], SchemaExtension]] = (),
    subscriptions: Sequence[type] = (),
    execution_context_class: type[Executor] | None = None,
) -> strawberry.Schema:
    query = merge_types("Query", tuple(queries))
    mutation = merge_types("Mutation", tuple(mutations))
    subscription = merge_types("Subscription", tuple(subscriptions)) if subscriptions else None
    schema = _Schema(
        query=query,
        mutation=mutation,
        subscription=subscription,
        extensions=list(extensions),
        schema_directives=[Auth],
        config=StrawberryConfig(scalar_map={datetime: AWARE_DATETIME}),
        execution_context_class=execution_context_class,
    )
    _require_auth_everywhere(schema)
    return schema


class _Schema(strawberry.Schema):
    def process_errors(self, errors: list[GraphQLError], execution_context: Any = None) -> None:
        """Strawberry logs every error here; ErrorCodes logs the unexpected ones instead."""


def _require_auth_everywhere(schema: strawberry.Schema) -> None:
    """No root field may be reachable without stating who it is for."""
    for root in (schema.query, schema.mutation, schema.subscription):
        if root is None:
            continue
        definition = get_object_definition(root, strict=True)
        for field in definition.fields:
            if not any(isinstance(d, Auth) for d in field.directives):
                raise TypeError(f"{definition.name}.{field.python_name} has no @auth directive.")
