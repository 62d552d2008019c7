"""How big a GraphQL operation may be: its shape measured in one pass, linear in the size
of the document, before any validation rule runs.

Fragments are what make a small document expensive: `fragment F1 on Query { ...F0 ...F0 }`
doubles what F0 selects, and forty such lines describe 2^40 fields. Rules that walk every
spread again (Strawberry's depth and alias limiters did) take exponential time on such a
chain; graphql-core's own rules, while linear in it, are quadratic in fields that share a
response name (OverlappingFieldsCanBeMerged compares every pair of them). So the shape is
computed here once per fragment and reused at every spread, and an operation that is too
large is refused before graphql-core validates it:

- depth: nesting of fields with selections, through fragments (introspection fields are
  left to graphql-core's MaxIntrospectionDepthRule, as Strawberry's limiter did);
- aliases, and selections: fields once every fragment is spread (what the rules walk),
  per operation and for all the operations of the document together;
- same-name fields: in one selection set, fragments spread, fields that share a response
  name (what OverlappingFieldsCanBeMerged compares pairwise);
- fragments and operations: definitions in the document (a request runs one operation;
  graphql-core's rules walk each operation's fragments again);
- root fields that run at most once per operation (`once_per_operation`: an export renders
  a document; aliases must not make one request render many), counted by response key
  through fragments;
- cost: an estimate of the objects the response may hold (what execution's work grows
  with; scalar fields are bounded by the selections). A field with a selection costs 1, and
  its selection's cost once per item of its list: how many items a list holds is declared
  per field (list_sizes.py), from a slicing argument (`first`, `last`, `maxTurns`) or the
  domain's own bound; a connection's size applies to its edges and nodes. An introspection
  field costs what a full introspection returns. A size given by a variable is read from
  the request's coerced variables, so such an operation's cost is computed again for each
  request (`Measured.cost_errors`).

Fragment cycles are refused here too (graphql-core's rule for them recurses once per
fragment on a chain): fragments are measured in the order their spreads allow, without
recursion across fragments.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLList,
    GraphQLNamedType,
    GraphQLNonNull,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    ListValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    VariableNode,
    get_named_type,
    is_composite_type,
)
from graphql.execution import get_variable_values
from graphql.type import GraphQLInterfaceType, GraphQLObjectType

from ...domain.errors import LimitExceeded
from .list_sizes import ListSize

LIMIT_EXCEEDED = LimitExceeded.code
# Items of a list no size is declared for (tests/server/execution/test_list_sizes.py keeps
# the schema's lists of objects declared).
UNDECLARED_LIST = 10
# Refusals reported at most: each error's location is a scan of the text, so a document of
# many operations would otherwise cost the square of its length to refuse.
MAX_ERRORS = 10


@dataclass(frozen=True, slots=True)
class QueryLimits:
    max_depth: int = 15
    max_aliases: int = 50
    max_selections: int = 2_000
    max_same_name: int = 32
    max_fragments: int = 100
    max_operations: int = 20
    max_cost: int = 20_000
    once_per_operation: frozenset[str] = frozenset()
    list_sizes: Mapping[str, ListSize] = field(default_factory=dict)
    introspection_cost: int = 0


@dataclass(slots=True)
class _Shape:
    """What one selection set holds, its fragments spread. Its cost is `fixed` plus
    `per_item` for every item of the lists it holds directly (edges, nodes), whose number
    the field above it decides (its page size), so a fragment's shape serves every spread."""

    depth: int = 0
    aliases: int = 0
    selections: int = 0
    fixed: int = 0
    # Lists of this level sized by the field above (by field name): the cost of one item.
    per_item: dict[str, int] | None = None
    # Response names of this level, fragments spread: how many fields share each.
    names: Counter[str] | None = None
    # Fields of this level that may run once: their response keys, fragments spread.
    once: dict[str, set[str]] | None = None

    def add(self, other: _Shape) -> None:
        self.depth = max(self.depth, other.depth)
        self.aliases += other.aliases
        self.selections += other.selections
        self.fixed += other.fixed
        if other.per_item:
            if self.per_item is None:
                self.per_item = {}
            for name, cost in other.per_item.items():
                self.per_item[name] = self.per_item.get(name, 0) + cost
        if other.names:
            if self.names is None:
                self.names = Counter()
            self.names.update(other.names)
        if other.once:
            if self.once is None:
                self.once = {}
            for name, keys in other.once.items():
                self.once.setdefault(name, set()).update(keys)

    def cost(self, items: int = UNDECLARED_LIST, sized: tuple[str, ...] = ()) -> int:
        """With `items` for the lists named in `sized`."""
        lists = self.per_item or {}
        return self.fixed + sum(
            cost * (items if name in sized else UNDECLARED_LIST) for name, cost in lists.items()
        )


class Measured:
    """The shape of every operation of a document, and whether it fits the limits."""

    __slots__ = ("_cost_uses_variables", "_costs", "_document", "_limits", "_schema", "errors")

    def __init__(
        self,
        schema: GraphQLSchema,
        document: DocumentNode,
        limits: QueryLimits,
        errors: list[GraphQLError],
        costs: dict[str | None, int],
        cost_uses_variables: bool,
    ) -> None:
        self._schema = schema
        self._document = document
        self._limits = limits
        self.errors = errors
        self._costs = costs
        self._cost_uses_variables = cost_uses_variables

    def cost_errors(
        self, operation: OperationDefinitionNode, variables: dict[str, Any] | None
    ) -> list[GraphQLError]:
        """The error of running `operation` with these variables, if it costs too much;
        none when the variables do not coerce (execution says what is wrong with them)."""
        if not self._cost_uses_variables:
            cost = self._costs.get(operation.name.value if operation.name else None, 0)
            return _cost_errors(cost, self._limits, operation)
        coerced = get_variable_values(
            self._schema, operation.variable_definitions or (), variables or {}, max_errors=1
        )
        if isinstance(coerced, list):
            return []
        walk = _Walk(self._schema, self._document, self._limits, coerced.coerced)
        return _cost_errors(walk.operation(operation).cost(), self._limits, operation)


def measure(schema: GraphQLSchema, document: DocumentNode, limits: QueryLimits) -> Measured:
    """The document's operations measured against the limits; `errors` empty when they fit.
    The cost of an operation whose page sizes come from variables is left to
    `Measured.cost_errors`, which has the request's variables."""
    fragments = [d for d in document.definitions if isinstance(d, FragmentDefinitionNode)]
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if len(operations) > limits.max_operations:
        error = _limit_error(
            f"The document holds {len(operations):,} operations; the limit is "
            f"{limits.max_operations:,}.",
            operations[limits.max_operations],
        )
        return Measured(schema, document, limits, [error], {}, False)
    if len(fragments) > limits.max_fragments:
        error = _limit_error(
            f"The document defines {len(fragments):,} fragments; the limit is "
            f"{limits.max_fragments:,}.",
            fragments[limits.max_fragments],
        )
        return Measured(schema, document, limits, [error], {}, False)
    walk = _Walk(schema, document, limits, None)
    if walk.cycle is not None:
        return Measured(schema, document, limits, [walk.cycle], {}, False)
    errors: list[GraphQLError] = []
    costs: dict[str | None, int] = {}
    selections = 0
    for operation in operations:
        if len(errors) >= MAX_ERRORS:
            break
        shape = walk.operation(operation)
        selections += shape.selections
        errors += _shape_errors(shape, walk.widest, limits, operation)
        cost = shape.cost()
        costs[operation.name.value if operation.name else None] = cost
        if not walk.cost_uses_variables:
            errors += _cost_errors(cost, limits, operation)
    if not errors and selections > limits.max_selections:
        errors.append(
            _limit_error(
                f"The document's operations select {selections:,} fields in all once their "
                f"fragments are spread; the limit is {limits.max_selections:,}.",
                operations[0],
            )
        )
    return Measured(schema, document, limits, errors[:MAX_ERRORS], costs, walk.cost_uses_variables)


class _Walk:
    """One pass over a document. Fragments are measured first, each once, in an order
    where the fragments it spreads come before it (Kahn's algorithm): no recursion crosses
    from one fragment into another, however long their chain, and a spread is a look-up."""

    def __init__(
        self,
        schema: GraphQLSchema,
        document: DocumentNode,
        limits: QueryLimits,
        variables: dict[str, Any] | None,
    ) -> None:
        self._schema = schema
        self._limits = limits
        self._sizes = limits.list_sizes
        self._variables = variables
        self._fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        self._shapes: dict[str, _Shape] = {}
        self.cost_uses_variables = False
        # The most fields sharing one response name in a selection set: of the fragments,
        # then of the operation last measured.
        self.widest: tuple[int, str] = (0, "")
        self.cycle: GraphQLError | None = None
        for name in self._fragment_order():
            fragment = self._fragments[name]
            parent = self._schema.get_type(fragment.type_condition.name.value)
            self._shapes[name] = self._selection_set(fragment.selection_set, parent, 0)
        self._fragments_widest = self.widest

    def operation(self, operation: OperationDefinitionNode) -> _Shape:
        self.widest = self._fragments_widest
        root = self._schema.get_root_type(operation.operation)
        return self._selection_set(operation.selection_set, root, 0)

    def _fragment_order(self) -> list[str]:
        spreads = {name: _spread_names(f.selection_set) for name, f in self._fragments.items()}
        waiting = {name: {s for s in names if s in spreads} for name, names in spreads.items()}
        spread_by: dict[str, list[str]] = {name: [] for name in spreads}
        for name, names in waiting.items():
            for spread in names:
                spread_by[spread].append(name)
        ready = [name for name, names in waiting.items() if not names]
        order: list[str] = []
        while ready:
            name = ready.pop()
            order.append(name)
            for user in spread_by[name]:
                waiting[user].discard(name)
                if not waiting[user]:
                    ready.append(user)
        if len(order) < len(spreads):
            stuck = next(name for name in spreads if waiting[name])
            self.cycle = GraphQLError(
                f"The fragment '{stuck}' spreads itself, directly or through other fragments.",
                self._fragments[stuck],
                extensions={"code": "BAD_USER_INPUT"},
            )
        return order

    def _selection_set(
        self, selection_set: SelectionSetNode, parent: GraphQLNamedType | None, depth: int
    ) -> _Shape:
        shape = _Shape(names=Counter())
        assert shape.names is not None
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                shape.add(self._field(selection, parent, depth))
                key = (selection.alias or selection.name).value
                shape.names[key] += 1
                if selection.name.value in self._limits.once_per_operation:
                    shape.once = shape.once or {}
                    shape.once.setdefault(selection.name.value, set()).add(key)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                inner = self._schema.get_type(condition.name.value) if condition else parent
                shape.add(self._selection_set(selection.selection_set, inner, depth))
            elif isinstance(selection, FragmentSpreadNode):
                spread = self._shapes.get(selection.name.value)
                if spread is not None:  # an unknown fragment: graphql-core reports it
                    shape.add(spread)
        if shape.names:
            name, count = shape.names.most_common(1)[0]
            if count > self.widest[0]:
                self.widest = (count, name)
        return shape

    def _field(self, field: FieldNode, parent: GraphQLNamedType | None, depth: int) -> _Shape:
        aliases = 1 if field.alias is not None else 0
        if field.selection_set is None:
            return _Shape(aliases=aliases, selections=1)
        name = field.name.value
        if name.startswith("__"):
            # Introspection: its whole answer is what it may cost; neither depth (as
            # Strawberry's limiter) nor its own lists (MaxIntrospectionDepthRule's).
            named = self._schema.get_type("__Schema" if name == "__schema" else "__Type")
            child = self._selection_set(field.selection_set, named, depth + 1)
            # Each alias inside may ask for the whole schema again.
            cost = 1 + self._limits.introspection_cost * (1 + child.aliases)
            return _Shape(0, aliases + child.aliases, 1 + child.selections, cost)
        if depth >= self._limits.max_depth:
            # Deeper than allowed: measured no further (the operation is refused anyway).
            return _Shape(depth=self._limits.max_depth - depth + 1, aliases=aliases, selections=1)
        definition = (
            parent.fields.get(name)
            if isinstance(parent, GraphQLObjectType | GraphQLInterfaceType)
            else None
        )
        field_type = definition.type if definition is not None else None
        named = get_named_type(field_type) if field_type is not None else None
        size = self._sizes.get(f"{parent.name}.{name}") if parent is not None else None
        child = self._selection_set(field.selection_set, named, depth + 1)
        shape = _Shape(
            depth=child.depth + 1, aliases=aliases + child.aliases, selections=1 + child.selections
        )
        if size is not None and size.sized:  # a connection: its size is its lists'
            one = 1 + child.cost(self._items(field, size), size.sized)
        else:
            one = 1 + child.cost()
        if not (_is_list(field_type) and is_composite_type(named)):
            shape.fixed = one
        elif size is not None and not size.sized:  # a list that says its own size
            shape.fixed = self._items(field, size) * one
        else:  # a list the field above sizes
            shape.per_item = {name: one}
        return shape

    def _items(self, field: FieldNode, size: ListSize) -> int:
        """Items of the list `size` describes: the first slicing argument given, else the
        assumed number; a variable's value is the request's."""
        given = {a.name.value: a.value for a in field.arguments or ()}
        for name in size.slicing:
            value = given.get(name)
            if isinstance(value, IntValueNode):
                return _bounded(int(value.value), size)
            if isinstance(value, ListValueNode):
                return _bounded(len(value.values), size)
            if isinstance(value, VariableNode):
                self.cost_uses_variables = True
                if self._variables is None:
                    return size.maximum  # measured again with the request's variables
                items = self._variables.get(value.name.value)
                if isinstance(items, list):
                    return _bounded(len(items), size)
                if isinstance(items, int):
                    return _bounded(items, size)
        return size.assumed


def _spread_names(selection_set: SelectionSetNode) -> set[str]:
    names: set[str] = set()
    pending = [selection_set]
    while pending:
        for selection in pending.pop().selections:
            if isinstance(selection, FragmentSpreadNode):
                names.add(selection.name.value)
            elif isinstance(selection, FieldNode | InlineFragmentNode) and selection.selection_set:
                pending.append(selection.selection_set)
    return names


def _is_list(field_type: Any) -> bool:
    while isinstance(field_type, GraphQLNonNull):
        field_type = field_type.of_type
    return isinstance(field_type, GraphQLList)


def _bounded(items: int, size: ListSize) -> int:
    return max(0, min(items, size.maximum))


def _label(operation: OperationDefinitionNode) -> str:
    return f"The operation '{operation.name.value}'" if operation.name else "The operation"


def _shape_errors(
    shape: _Shape, widest: tuple[int, str], limits: QueryLimits, operation: OperationDefinitionNode
) -> list[GraphQLError]:
    label = _label(operation)
    errors = []
    if shape.depth > limits.max_depth:
        errors.append(
            _limit_error(f"{label} nests fields deeper than {limits.max_depth} levels.", operation)
        )
    if shape.aliases > limits.max_aliases:
        errors.append(
            _limit_error(
                f"{label} uses {shape.aliases:,} aliases (fragments spread); the limit is "
                f"{limits.max_aliases}.",
                operation,
            )
        )
    if shape.selections > limits.max_selections:
        errors.append(
            _limit_error(
                f"{label} selects {shape.selections:,} fields once its fragments are spread; "
                f"the limit is {limits.max_selections:,}.",
                operation,
            )
        )
    for name, keys in sorted((shape.once or {}).items()):
        if len(keys) > 1:
            errors.append(
                _limit_error(
                    f"One {name} per request: this one asks for {len(keys)}, and none was "
                    f"made. Give all the sessions to one {name}, or send one request each.",
                    operation,
                )
            )
    if widest[0] > limits.max_same_name:
        errors.append(
            _limit_error(
                f"{label} selects '{widest[1]}' {widest[0]:,} times in one selection set "
                f"(fragments spread); the limit is {limits.max_same_name}.",
                operation,
            )
        )
    return errors


def _cost_errors(
    cost: int, limits: QueryLimits, operation: OperationDefinitionNode
) -> list[GraphQLError]:
    if cost <= limits.max_cost:
        return []
    return [
        _limit_error(
            f"{_label(operation)} may return about {cost:,} items and fields; the limit is "
            f"{limits.max_cost:,}. Ask for smaller pages (first/last) or fewer fields.",
            operation,
        )
    ]


def _limit_error(message: str, node: Any) -> GraphQLError:
    return GraphQLError(message, node, extensions={"code": LIMIT_EXCEEDED})
