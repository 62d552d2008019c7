"""A shorter way through graphql-core's executor for selections of plain attributes.

graphql-core executes every field of every object the same way: a `Path`, a resolve info,
the resolver, `is_awaitable` twice, then `complete_value` down through NonNull, List and
the leaf type. For a page of 20 turns with their tool invocations that is several hundred
fields, and it was most of the time a read took.

Most of those fields are Strawberry "basic" fields: no resolver, no arguments, no field
extension (so no @auth; root fields always have one), answered by `getattr` on the
Strawberry object. For an object whose selected fields are all like that, and whose
object-typed fields are again such objects, `FastExecutor` builds a small plan once per
request and selection (response key, attribute, completion of the field's type) and
completes the object with it, without the machinery above.

Nothing changes in what comes out. The plan does only what graphql-core would do for
such fields (the attribute, the scalar's or enum's `coerce_output_value`, lists, nulls),
and anything it does not expect — a null for a non-null field, a value the scalar
refuses, something that is not a list, any exception — makes it give up on that object
and hand it to graphql-core's own `execute_fields`, which does it all again the usual way
and reports the error with its path and locations. Reading attributes has no side effects,
so doing it twice is harmless. Abstract types, `is_type_of`, @defer/@stream and schema
extensions with a `resolve` hook (field middleware) always take the usual way.

What a response may hold is also counted here, as it is made (`ObjectBudget`): every object
completed, the usual way or by a plan, spends one from the request's budget, and a request
that runs out ends with LIMIT_EXCEEDED. The query limits estimate the same thing before
execution from declared list sizes; this is the bound when a list holds more than its
declaration says (a session's shares, a turn's tool messages in a context).
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from math import isfinite
from typing import Any

from graphql import (
    GraphQLBoolean,
    GraphQLFloat,
    GraphQLID,
    GraphQLInt,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLString,
    is_leaf_type,
)
from graphql.pyutils import Undefined
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.schema.schema_converter import CustomGraphQLEnumType, GraphQLCoreConverter
from strawberry.types.field import StrawberryField

from ..domain.errors import LimitExceeded

Complete = Callable[[Any], Any]
Plan = Callable[[Any], dict[str, Any]]

_BACKREF = GraphQLCoreConverter.DEFINITION_BACKREF
# The name of Strawberry's resolver for basic fields (schema_converter.from_resolver):
# only that one is known to be `getattr(source, python_name)` and nothing else.
_BASIC_RESOLVER = "_get_basic_result"


class _GiveUp(Exception):
    """The plan met something it does not handle; graphql-core takes the object."""


_UNPLANNED = object()


class ObjectBudget:
    """The objects one response may still hold."""

    __slots__ = ("left", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.left = limit

    def spend(self, objects: int) -> None:
        self.left -= objects
        if self.left < 0:
            raise LimitExceeded(
                f"The response would hold more than {self.limit:,} objects; ask for smaller "
                "pages (first/last, maxTurns), fewer lists or fewer aliases."
            )


# The budget of the request being executed: plans are shared by the requests of a
# document, so they find it here rather than in themselves.
OBJECT_BUDGET: ContextVar[ObjectBudget | None] = ContextVar("object_budget", default=None)


class FastExecutor(StrawberryGraphQLCoreExecutionContext):
    """`document_plans`, when given, is a dict that lives as long as the parsed document
    (the server's document cache keeps one per document): plans go there to serve every
    request of the document. Keyed by ids of the document's nodes, it must never outlive
    the document, and it never keeps anything alive that the document does not."""

    def __init__(
        self, *args: Any, document_plans: dict[Any, Any] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        manager = self.middleware_manager
        self._fast = manager is None or not manager.middlewares
        # id(grouped field set) -> (the set, kept alive so that its id is not reused; plan)
        self._plans: dict[int, tuple[Any, Plan | None]] = {}
        self._shared = document_plans
        self._budget = OBJECT_BUDGET.get()
        # Which fields a selection holds depends on the variables only through directives
        # (@skip, @include): without any, plans can serve every request of the document.
        self._share = (
            self._fast
            and document_plans is not None
            and not _has_directives(document_plans, self.operation, self.fragment_definitions)
        )

    def execute_fields(
        self,
        parent_type: GraphQLObjectType,
        source_value: Any,
        path: Any,
        grouped_field_set: Any,
        position_context: Any,
    ) -> Any:
        if self._budget is not None:
            self._budget.spend(1)
        if self._fast:
            plan = self._plan(parent_type, grouped_field_set)
            if plan is not None:
                try:
                    return plan(source_value)
                except Exception:  # graphql-core does it again and reports the error
                    pass
        return super().execute_fields(
            parent_type, source_value, path, grouped_field_set, position_context
        )

    # Plans

    def _plan(self, parent_type: GraphQLObjectType, grouped_field_set: Any) -> Plan | None:
        key = id(grouped_field_set)
        cached = self._plans.get(key)
        if cached is not None:
            return cached[1]
        shared_key = self._shared_key(parent_type, grouped_field_set) if self._share else None
        if shared_key is not None:
            assert self._shared is not None
            shared = self._shared.get(shared_key, _UNPLANNED)
            if shared is not _UNPLANNED:
                self._plans[key] = (grouped_field_set, shared)
                return shared
        # A placeholder first: a selection that (through fragments) refers to itself
        # cannot recurse for ever.
        self._plans[key] = (grouped_field_set, None)
        plan = self._build_plan(parent_type, grouped_field_set)
        self._plans[key] = (grouped_field_set, plan)
        if shared_key is not None:
            assert self._shared is not None
            self._shared[shared_key] = plan
        return plan

    @staticmethod
    def _shared_key(parent_type: GraphQLObjectType, grouped_field_set: Any) -> tuple | None:
        """(the parent type's name, then the response key and the ids of the field nodes of
        each field): the nodes are the document's, alive as long as the plans are."""
        key: list[Any] = [parent_type.name]
        for response_name, field_details_list in grouped_field_set.items():
            key.append(response_name)
            for details in field_details_list:
                if details.fragment_variable_values is not None:
                    return None
                key.append(id(details.node))
            key.append(None)
        return tuple(key)

    def _build_plan(self, parent_type: GraphQLObjectType, grouped_field_set: Any) -> Plan | None:
        entries: list[tuple[str, str | None, Any]] = []
        for response_name, field_details_list in grouped_field_set.items():
            node = field_details_list[0].node
            field_name = node.name.value
            if field_name == "__typename":
                entries.append((response_name, None, parent_type.name))
                continue
            if node.arguments:
                return None
            field_def = self.schema.get_field(parent_type, field_name)
            if field_def is None or field_def.args:
                return None
            resolve = field_def.resolve
            definition = field_def.extensions.get(_BACKREF)
            if (
                resolve is None
                or getattr(resolve, "__name__", None) != _BASIC_RESOLVER
                or not isinstance(definition, StrawberryField)
                or not definition.is_basic_field
                or definition.default_resolver is not getattr
            ):
                return None
            complete = self._completion(field_def.type, field_details_list)
            if complete is None:
                return None
            entries.append((response_name, definition.python_name, complete))
        frozen = tuple(entries)

        def plan(source: Any) -> dict[str, Any]:
            result: dict[str, Any] = {}
            for response_name, attribute, complete in frozen:
                if attribute is None:
                    result[response_name] = complete  # __typename
                else:
                    result[response_name] = complete(getattr(source, attribute))
            return result

        return plan

    def _completion(
        self, return_type: GraphQLOutputType, field_details_list: Any
    ) -> Complete | None:
        """How to complete a value of `return_type`, as graphql-core's complete_value
        would when nothing goes wrong; raises _GiveUp on anything else."""
        if isinstance(return_type, GraphQLNonNull):
            inner = self._completion(return_type.of_type, field_details_list)
            if inner is None:
                return None

            def non_null(value: Any) -> Any:
                completed = inner(value)
                if completed is None:
                    raise _GiveUp
                return completed

            return non_null

        if isinstance(return_type, GraphQLList):
            item = self._completion(return_type.of_type, field_details_list)
            if item is None:
                return None

            def list_of(value: Any) -> Any:
                if value is None:
                    return None
                if not isinstance(value, (list, tuple)):
                    raise _GiveUp
                budget = OBJECT_BUDGET.get()
                if budget is not None:
                    budget.spend(len(value))
                return [item(v) for v in value]

            return list_of

        if is_leaf_type(return_type):
            return _leaf(return_type)

        if isinstance(return_type, GraphQLObjectType) and return_type.is_type_of is None:
            grouped_field_set, new_defer_usages, _ = self.collect_subfields(
                return_type, field_details_list
            )
            if new_defer_usages:
                return None
            sub_plan = self._plan(return_type, grouped_field_set)
            if sub_plan is None:
                return None

            def object_of(value: Any) -> Any:
                if value is None or value is Undefined:
                    return None
                return sub_plan(value)

            return object_of

        return None  # interfaces, unions, is_type_of


def _leaf(return_type: Any) -> Complete:
    """A scalar's or enum's `coerce_output_value`, with a shortcut for the values it hands
    back unchanged (a `str` for String and ID, an `int` in range for Int, a finite `float`
    for Float, a `bool` for Boolean) and for the members of a Strawberry enum (the name
    CustomGraphQLEnumType would find)."""
    coerce: Callable[[Any], Any] = return_type.coerce_output_value

    def coerced(value: Any) -> Any:
        if value is None or value is Undefined:
            return None
        result = coerce(value)
        if result is None or result is Undefined:
            raise _GiveUp
        return result

    same = _unchanged(return_type)
    if same is not None:
        in_range = _is_int32 if same is int else isfinite if same is float else _always

        def scalar(value: Any) -> Any:
            return value if type(value) is same and in_range(value) else coerced(value)

        return scalar

    if isinstance(return_type, CustomGraphQLEnumType):
        members = return_type.wrapped_cls
        names = _enum_names(return_type)

        def enum(value: Any) -> Any:
            if type(value) is members:
                name = names.get(value)
                if name is not None:
                    return name
            return coerced(value)

        return enum

    return coerced


def _unchanged(return_type: Any) -> type | None:
    """The Python type whose values a built-in scalar's coercion returns as they are."""
    if return_type is GraphQLString or return_type is GraphQLID:
        return str
    if return_type is GraphQLInt:
        return int
    if return_type is GraphQLFloat:
        return float
    if return_type is GraphQLBoolean:
        return bool
    return None


def _is_int32(value: int) -> bool:
    return -(2**31) <= value <= 2**31 - 1


def _always(value: Any) -> bool:
    return True


def _enum_names(return_type: CustomGraphQLEnumType) -> dict[Any, str]:
    """Member -> the name CustomGraphQLEnumType.coerce_output_value returns for it: the
    first GraphQL value equal to the member's value."""
    names: dict[Any, str] = {}
    for member in return_type.wrapped_cls:
        for name, value in return_type.values.items():
            if member.value == value.value:
                names[member] = name
                break
    return names


def _has_directives(document_plans: dict[Any, Any], operation: Any, fragments: dict) -> bool:
    """Whether a selection of the operation or of a fragment of its document carries a
    directive (remembered with the document's plans, per operation node)."""
    key = ("directives", id(operation))
    found = document_plans.get(key)
    if found is None:
        found = _selections_have_directives(operation.selection_set) or any(
            _selections_have_directives(f.selection_set) for f in fragments.values()
        )
        document_plans[key] = found
    return found


def _selections_have_directives(selection_set: Any) -> bool:
    if selection_set is None:
        return False
    for selection in selection_set.selections:
        if selection.directives:
            return True
        if _selections_have_directives(getattr(selection, "selection_set", None)):
            return True
    return False
