"""The shape of an operation, measured once per fragment: the same depth and aliases as
Strawberry's limiters counted by walking every spread, a cost from page sizes, and the
refusals that keep graphql-core's rules from running on documents that would make them
slow."""

from __future__ import annotations

import dataclasses

import pytest
from graphql import GraphQLSchema, get_introspection_query, parse, validate
from strawberry.extensions.max_aliases import create_validator as aliases_rule
from strawberry.extensions.query_depth_limiter import create_validator as depth_rule

from sessionhub.domain.validation import Limits
from sessionhub.server.app import create_app
from sessionhub.server.chat_apps import load_chat_apps
from sessionhub.server.execution.list_sizes import introspection_cost, list_sizes
from sessionhub.server.execution.query_limits import MAX_ERRORS, QueryLimits, measure
from sessionhub.server.settings import Settings, load_settings


@pytest.fixture(scope="module")
def settings_of_module(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    folder = tmp_path_factory.mktemp("schema")
    return load_settings(
        database_url=f"sqlite:///{folder / 'x.db'}",
        jwt_secret="test-secret-that-is-long-enough-for-hs256-0123456789",
        dev_secret_file=folder / "dev-secret",
    )


@pytest.fixture(scope="module")
def schema(settings_of_module: Settings) -> GraphQLSchema:
    return create_app(settings_of_module).state.schema._schema


@pytest.fixture(scope="module")
def served(schema: GraphQLSchema, settings_of_module: Settings) -> QueryLimits:
    """The limits the server measures with (its list sizes, its introspection's cost)."""
    apps = load_chat_apps(settings_of_module.chat_apps_file)
    return QueryLimits(
        list_sizes=list_sizes(apps, Limits()), introspection_cost=introspection_cost(schema)
    )


def messages(schema: GraphQLSchema, query: str, limits: QueryLimits) -> list[str]:
    return [e.message for e in measure(schema, parse(query), limits).errors]


def chain(levels: int, leaf: str = "me { userId }") -> str:
    lines = [f"fragment F0 on Query {{ {leaf} }}"]
    lines += [f"fragment F{i} on Query {{ ...F{i - 1} ...F{i - 1} }}" for i in range(1, levels + 1)]
    return f"query {{ ...F{levels} }}\n" + "\n".join(lines)


SESSION = "sessions { edges { node { id turns { nodes { id } } } } }"
SHAPES = [
    "{ me { userId } }",
    "{ " + "sessions { edges { node { " * 5 + "id" + " } } }" * 5 + " }",
    "{ " + "sessions { edges { node { " * 6 + "id" + " } } }" * 6 + " }",
    "query { ...A } fragment A on Query { " + SESSION + " }",
    "query { ... on Query { ...A } } fragment A on Query { sessions { edges { ...B } } }"
    " fragment B on SessionEdge { node { id turns { edges { node { id } } } } }",
    "{ a: me { userId } b: me { userId } ...F } fragment F on Query { c: me { userId } }",
    "query { x: sessions { edges { ...N } } y: sessions { edges { ...N } } }"
    " fragment N on SessionEdge { p: node { q: id } }",
    get_introspection_query(),
]


@pytest.mark.parametrize("query", SHAPES)
@pytest.mark.parametrize("max_depth", [2, 4, 5, 6, 15])
def test_depth_is_refused_exactly_where_strawberrys_limiter_refuses_it(
    schema: GraphQLSchema, served: QueryLimits, query: str, max_depth: int
) -> None:
    strawberry_refuses = bool(validate(schema, parse(query), [depth_rule(max_depth, None)]))
    ours = messages(schema, query, dataclasses.replace(served, max_depth=max_depth))
    assert any("deeper than" in m for m in ours) == strawberry_refuses


@pytest.mark.parametrize("query", SHAPES)
@pytest.mark.parametrize("max_aliases", [0, 1, 2, 3, 50])
def test_aliases_are_counted_as_strawberrys_limiter_counts_them(
    schema: GraphQLSchema, served: QueryLimits, query: str, max_aliases: int
) -> None:
    strawberry_refuses = bool(validate(schema, parse(query), [aliases_rule(max_aliases)]))
    ours = messages(schema, query, dataclasses.replace(served, max_aliases=max_aliases))
    assert any("aliases" in m for m in ours) == strawberry_refuses


def test_a_fragment_chain_is_counted_exactly_without_being_walked(
    schema: GraphQLSchema,
    served: QueryLimits,
) -> None:
    """90 levels: 2^90 fields, counted in one pass (walked, it would never finish)."""
    found = messages(schema, chain(90), served)
    assert f"selects {2**91:,} fields once its fragments are spread" in found[0]
    assert f"selects 'me' {2**90:,} times in one selection set" in found[1]


@pytest.mark.parametrize(
    ("query", "cost"),
    [
        ("{ me { userId } }", 1),
        # sessions 1, and per edge: the edge 1 + node 1 + turns 1 + 20 nodes.
        ("{ sessions(first: 10) { edges { node { turns(last: 20) { nodes { id } } } } } }", 231),
        # No size given: the argument's default (sessions: 30), else 50 (turns).
        ("{ sessions { edges { node { turns { nodes { id } } } } } }", 1 + 30 * 53),
        # Other lists count what bounds them: a turn's tool invocations, 100.
        (
            "{ sessions(first: 2) { edges { node { turns(last: 3) { nodes { toolInvocations "
            "{ name } } } } } } }",
            1 + 2 * (1 + 1 + 1 + 3 * (1 + 100)),
        ),
        # The context's messages: as many as maxTurns asks, at most the longest history.
        ('{ session(id: "s") { context(maxTurns: 7) { messages { content } } } }', 1 + 1 + 7),
        ('{ session(id: "s") { context { messages { content } } } }', 1 + 1 + 1_000),
        # Fragments cost what they select where they are spread.
        (
            "query { sessions(first: 4) { ...P } } "
            "fragment P on SessionConnection { edges { node { id } } }",
            1 + 4 * 2,
        ),
        # Introspection: what a full introspection of the schema returns, whatever it asks.
        ("{ __schema { types { name fields { name } } } }", None),
        ('{ a: __type(name: "Session") { name } }', None),
    ],
)
def test_cost_counts_the_objects_a_response_may_hold(
    schema: GraphQLSchema, served: QueryLimits, query: str, cost: int | None
) -> None:
    cost = cost or 1 + served.introspection_cost
    assert messages(schema, query, dataclasses.replace(served, max_cost=cost)) == []
    refused = messages(schema, query, dataclasses.replace(served, max_cost=cost - 1))
    assert refused == [
        f"The operation may return about {cost:,} items and fields; the limit is {cost - 1:,}. "
        "Ask for smaller pages (first/last) or fewer fields."
    ]


def test_a_page_size_from_a_variable_costs_what_the_request_gives(
    schema: GraphQLSchema,
    served: QueryLimits,
) -> None:
    query = (
        "query($n: Int, $m: Int = 5) { sessions(first: $n) { edges { node { turns(last: $m) "
        "{ nodes { id } } } } } }"
    )
    # 1, and per session: the edge, the node, turns, and its m turns.
    operation_cost = {10: 1 + 10 * (3 + 5), 100: 1 + 100 * (3 + 5)}
    measured = measure(
        schema, parse(query), dataclasses.replace(served, max_cost=operation_cost[10])
    )
    assert measured.errors == []  # left to the request
    operation = parse(query).definitions[0]
    assert measured.cost_errors(operation, {"n": 10}) == []
    (too_costly,) = measured.cost_errors(operation, {"n": 100})
    assert f"about {operation_cost[100]:,} items" in too_costly.message
    assert f"about {1 + 10 * (3 + 40):,} items" in (
        measured.cost_errors(operation, {"n": 10, "m": 40})[0].message
    )


def test_fragment_cycles_are_refused_and_unknown_fragments_left_to_graphql_core(
    schema: GraphQLSchema,
    served: QueryLimits,
) -> None:
    cycle = "query { ...A } fragment A on Query { ...B } fragment B on Query { ...C me { userId } } fragment C on Query { ...A }"
    (error,) = measure(schema, parse(cycle), served).errors
    assert "spreads itself" in error.message
    assert error.extensions == {"code": "BAD_USER_INPUT"}
    assert messages(schema, "query { ...Nowhere }", served) == []


@pytest.mark.parametrize(
    ("query", "says"),
    [
        (
            "\n".join(f"query Q{i} {{ me {{ userId }} }}" for i in range(21)),
            "The document holds 21 operations; the limit is 20.",
        ),
        (
            "query { me { userId } }\n"
            + "\n".join(f"fragment F{i} on Query {{ me {{ userId }} }}" for i in range(101)),
            "The document defines 101 fragments; the limit is 100.",
        ),
        (
            "\n".join(
                f"query Q{i} {{ " + " ".join(f"a{j}: me {{ userId }}" for j in range(45)) + " }"
                for i in range(12)
            ),
            "The document's operations select 1,080 fields in all once their fragments are "
            "spread; the limit is 1,000.",
        ),
    ],
)
def test_documents_that_would_make_every_rule_work_per_operation_are_refused(
    schema: GraphQLSchema, served: QueryLimits, query: str, says: str
) -> None:
    assert messages(schema, query, dataclasses.replace(served, max_selections=1_000)) == [says]


def test_refusals_stop_at_a_few(schema: GraphQLSchema, served: QueryLimits) -> None:
    """Each error's location is a scan of the text: a document of many refused operations
    gets the first few, not one per operation."""
    query = "\n".join(f"query Q{i} {{ " + "me { userId } " * 40 + "}" for i in range(20))
    assert len(messages(schema, query, served)) == MAX_ERRORS


def test_a_field_that_runs_once_per_operation_counts_through_fragments(
    schema: GraphQLSchema,
    served: QueryLimits,
) -> None:
    limits = dataclasses.replace(served, once_per_operation=frozenset({"exportSessions"}))
    one = 'mutation { e: exportSessions(ids: ["a"], format: JSON) { fileName } }'
    same_key = one.replace("{ e:", '{ e: exportSessions(ids: ["a"], format: JSON) { fileName } e:')
    hidden = (
        'mutation { ...X ... on Mutation { b: exportSessions(ids: ["a"], format: PDF) { fileName } } }'
        ' fragment X on Mutation { a: exportSessions(ids: ["a"], format: JSON) { fileName } }'
    )
    assert messages(schema, one, limits) == []
    assert messages(schema, same_key, limits) == []  # one field, merged by graphql-core
    (refused,) = messages(schema, hidden, limits)
    assert refused.startswith("One exportSessions per request: this one asks for 2")
