"""Every list of objects in the schema says how long it gets, so the query cost never
counts a list by a guess: a new list field fails here until list_sizes.py names it."""

from __future__ import annotations

from graphql import (
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    get_named_type,
    is_composite_type,
)

from sessionhub.domain.validation import Limits
from sessionhub.server.app import create_app
from sessionhub.server.chat_apps import load_chat_apps
from sessionhub.server.execution.list_sizes import introspection_cost, list_sizes
from sessionhub.server.settings import Settings


def _is_list(field_type: object) -> bool:
    while isinstance(field_type, GraphQLNonNull):
        field_type = field_type.of_type
    return isinstance(field_type, GraphQLList)


def _object_types(schema: GraphQLSchema) -> dict[str, GraphQLObjectType | GraphQLInterfaceType]:
    return {
        name: t
        for name, t in schema.type_map.items()
        if not name.startswith("__") and isinstance(t, GraphQLObjectType | GraphQLInterfaceType)
    }


def test_every_list_of_objects_has_a_declared_size(settings: Settings) -> None:
    schema = create_app(settings).state.schema._schema
    sizes = list_sizes(load_chat_apps(settings.chat_apps_file), Limits())
    types = _object_types(schema)
    # Lists a connection sizes: the named lists of the type the connection field returns.
    sized_by_parent = {
        f"{get_named_type(types[key.split('.')[0]].fields[key.split('.')[1]].type).name}.{name}"
        for key, size in sizes.items()
        for name in size.sized
    }
    lists = {
        f"{type_name}.{field_name}"
        for type_name, t in types.items()
        for field_name, field in t.fields.items()
        if _is_list(field.type) and is_composite_type(get_named_type(field.type))
    }
    own = {key for key, size in sizes.items() if not size.sized}
    assert lists - own - sized_by_parent == set(), "lists with no declared size"
    assert own - lists == set(), "sizes declared for fields that are not lists of objects"
    for key in sized_by_parent:
        type_name, field_name = key.split(".")
        assert field_name in types[type_name].fields, f"{key} does not exist"
    for key, size in sizes.items():
        assert 0 < size.assumed <= size.maximum, key


def test_introspection_costs_what_it_returns(settings: Settings) -> None:
    schema = create_app(settings).state.schema._schema
    cost = introspection_cost(schema)
    # Some thousand objects for a schema of about a hundred types.
    assert len(schema.type_map) * 5 < cost < len(schema.type_map) * 200
