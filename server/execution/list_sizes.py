"""How many items each list of the schema may hold: what the query cost (query_limits)
multiplies a list's selection by.

Most lists are bounded by the domain's own limits (a page of 100, a turn's 100 tool
invocations, a bulk mutation's ids); some only by use (a session's shares, a turn's
feedback, a context's messages: a turn with tool calls makes several), which count an
assumed, typical number. The cost computed from these sizes is what a request is refused
by before it runs; the objects of its response are also counted as it is made
(executor.ObjectBudget), against the same limit, which bounds what an assumed size
underestimates. An introspection field (`__schema`, `__type`) costs what a
full introspection of the schema returns, once for each alias inside it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from graphql import GraphQLSchema, get_introspection_query, graphql_sync

from ...domain.bulk import MAX_BULK_IDS
from ...domain.models import ChatApp
from ...domain.pagination import MAX_PAGE_SIZE
from ...domain.query import TURNS_PER_HIT
from ...domain.sessions import MAX_TAG_COUNTS, PINNED_SHOWN
from ...domain.validation import Limits

# A list that only use bounds (shares of a session, feedback on a turn) counts this many.
ASSUMED_BY_USE = 10


@dataclass(frozen=True, slots=True)
class ListSize:
    """Items of a list field: the value of the first `slicing` argument given (its length,
    for a list argument such as a bulk mutation's ids; at most `maximum`), else `assumed`.
    With `sized`, the size is that of the lists of those names in the field's own selection
    (a connection's edges and nodes); without, of the field's own list."""

    assumed: int
    maximum: int
    slicing: tuple[str, ...] = ()
    sized: tuple[str, ...] = ()


def _page(default: int, *slicing: str, sized: tuple[str, ...] = ("edges",)) -> ListSize:
    return ListSize(default, MAX_PAGE_SIZE, slicing, sized)


def _by_ids(*sized: str) -> ListSize:
    """A bulk mutation's results: one per id it was given."""
    return ListSize(MAX_BULK_IDS, MAX_BULK_IDS, ("ids",), sized)


def _fixed(items: int) -> ListSize:
    return ListSize(items, items)


def list_sizes(chat_apps: Iterable[ChatApp], limits: Limits) -> Mapping[str, ListSize]:
    """Every list of objects in the schema, keyed by `Type.field` (a test holds the schema
    to it: a new list field must say how long it gets)."""
    apps = list(chat_apps)
    history = max((a.settings.max_session_history for a in apps), default=500)
    most_file_templates = max((len(a.templates) for a in apps), default=0)
    by_use = _fixed(ASSUMED_BY_USE)
    return {
        "Query.sessions": _page(30, "first"),
        "Query.sharedWithMe": _page(30, "first"),
        "Query.searchSessions": _page(20, "first"),
        "Query.auditLog": _page(50, "first"),
        "Session.turns": _page(50, "first", "last", sized=("edges", "nodes")),
        "Session.context": ListSize(history, history, ("maxTurns",), ("messages",)),
        "Query.myTags": ListSize(100, MAX_TAG_COUNTS, ("first",)),
        "Query.pinnedSessions": _fixed(PINNED_SHOWN),
        "Query.chatApps": _fixed(len(apps)),
        "RetentionReport.chatApps": _fixed(len(apps)),
        "Mutation.tagSessions": _by_ids("results", "sessions"),
        "Mutation.bulkArchive": _by_ids("results", "sessions"),
        "Mutation.bulkDelete": _by_ids("results", "sessions"),
        "Mutation.exportSessions": _by_ids("results"),
        "Turn.toolInvocations": _fixed(limits.max_tool_invocations),
        "ContextMessage.toolCalls": _fixed(limits.max_tool_invocations),
        "SessionTemplate.starterTurns": _fixed(limits.max_starter_turns),
        "SearchHit.turns": _fixed(TURNS_PER_HIT),
        "Query.templates": ListSize(
            ASSUMED_BY_USE, limits.max_templates_per_chat_app + most_file_templates
        ),
        "Session.shares": by_use,
        "Session.people": by_use,
        "SessionInfo.people": by_use,
        "Turn.feedback": by_use,
    }


def introspection_cost(schema: GraphQLSchema) -> int:
    """The objects a full introspection of the schema returns."""
    result = graphql_sync(schema, get_introspection_query())
    assert result.data is not None, result.errors
    return _objects(result.data)


def _objects(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + sum(_objects(v) for v in value.values())
    if isinstance(value, list):
        return sum(_objects(v) for v in value)
    return 0
