"""The fast path: a shorter way through graphql-core's executor for selections of plain
attributes, switched by the `fast_path` setting (SESSIONHUB_FAST_PATH).

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

Every fall back to the usual way is counted by reason (`Fallbacks`, shown in /metrics as
sessionhub_fast_path_fallbacks_total): an object whose plan met a value it does not handle
(`value`: the usual way then reports the error), ran out of the response's budget
(`budget`) or raised anything else (`error`, also logged: a bug, or a library that changed
under the plan); a selection not planned because a field Strawberry calls basic is not
resolved the way the plan knows (`unrecognised_field`: a private name of Strawberry
changed, see private.py).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from math import isfinite
from typing import Any

import structlog
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
from strawberry.types.field import StrawberryField

from ...domain.errors import LimitExceeded
from .executor import OBJECT_BUDGET, BudgetedExecutor
from .private import BASIC_RESOLVER, CONVERTER, load

log = structlog.get_logger("sessionhub.fast_path")

_BACKREF: str = load(CONVERTER, "GraphQLCoreConverter.DEFINITION_BACKREF")
_CustomGraphQLEnumType: type = load(CONVERTER, "CustomGraphQLEnumType")

FALLBACK_REASONS = ("value", "budget", "error", "unrecognised_field")


class Fallbacks:
    """How often the fast path handed work back to graphql-core, by reason (one per
    seam, read by /metrics)."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter({reason: 0 for reason in FALLBACK_REASONS})

    def count(self, reason: str) -> None:
        self.counts[reason] += 1

    def snapshot(self) -> dict[str, int]:
        return dict(self.counts)


Complete = Callable[[Any], Any]
Plan = Callable[[Any], dict[str, Any]]


class _GiveUp(Exception):
    """The plan met something it does not handle; graphql-core takes the object."""


_UNPLANNED = object()


class FastExecutor(BudgetedExecutor):
    """`document_plans`, when given, is a dict that lives as long as the parsed document
    (the server's document cache keeps one per document): plans go there to serve every
    request of the document. Keyed by ids of the document's nodes, it must never outlive
    the document, and it never keeps anything alive that the document does not.
    `fallbacks`, when given, counts every fall back to graphql-core's way."""

    def __init__(
        self,
        *args: Any,
        document_plans: dict[Any, Any] | None = None,
        fallbacks: Fallbacks | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self._fallbacks = fallbacks
        # Field middleware (a schema extension's `resolve`, when Schema.execute runs this
        # class) must see every field: no fast path then. The seam passes none.
        manager = self.middleware_manager
        self._fast = manager is None or not manager.middlewares
        # id(grouped field set) -> (the set, kept alive so that its id is not reused; plan)
        self._plans: dict[int, tuple[Any, Plan | None]] = {}
        self._shared = document_plans
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
        budget = self._budget
        if budget is not None:
            budget.spend(1)
        if self._fast:
            plan = self._plan(parent_type, grouped_field_set)
            if plan is not None:
                left = budget.left if budget is not None else 0
                try:
                    return plan(source_value)
                except Exception as exc:  # graphql-core does it again and reports the error
                    if budget is not None:
                        budget.left = left  # as if the plan had not run
                    self._fell_back(parent_type, exc)
        # Strawberry's (graphql-core's) own, past BudgetedExecutor's: the object is paid for.
        return super(BudgetedExecutor, self).execute_fields(
            parent_type, source_value, path, grouped_field_set, position_context
        )

    def _fell_back(self, parent_type: GraphQLObjectType, exc: Exception) -> None:
        if isinstance(exc, _GiveUp):
            reason = "value"
        elif isinstance(exc, LimitExceeded):
            reason = "budget"
        else:
            reason = "error"
            log.warning(
                "fast_path.plan_failed",
                type=parent_type.name,
                error=f"{type(exc).__name__}: {exc}",
            )
        if self._fallbacks is not None:
            self._fallbacks.count(reason)

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
            definition = field_def.extensions.get(_BACKREF)
            if not isinstance(definition, StrawberryField) or not definition.is_basic_field:
                return None
            resolve = field_def.resolve
            if (
                resolve is None
                or getattr(resolve, "__name__", None) != BASIC_RESOLVER
                or definition.default_resolver is not getattr
            ):
                # Basic, yet not resolved the way the plan knows: Strawberry changed.
                if self._fallbacks is not None:
                    self._fallbacks.count("unrecognised_field")
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
        in_range: Callable[[Any], bool] = (
            _is_int32 if same is int else isfinite if same is float else _always
        )

        def scalar(value: Any) -> Any:
            return value if type(value) is same and in_range(value) else coerced(value)

        return scalar

    if isinstance(return_type, _CustomGraphQLEnumType):
        members = return_type.wrapped_cls  # type: ignore[attr-defined]
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


def _enum_names(return_type: Any) -> dict[Any, str]:
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
