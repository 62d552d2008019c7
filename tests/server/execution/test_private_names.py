"""The canary: every name of Strawberry or graphql-core the seam relies on without either
library promising it (server/execution/private.py) is still there, with the shape the
seam uses. An upgrade that renames or reshapes one fails here, one test per symbol, named
in the test id and in the message."""

from __future__ import annotations

import asyncio
import enum
import inspect
from collections.abc import Callable
from typing import Any

import pytest
import strawberry
from graphql import (
    Executor,
    GraphQLError,
    GraphQLSchema,
    OperationDefinitionNode,
    execute,
    parse,
    specified_rules,
)
from graphql.validation import ASTValidationRule

from sessionhub.server.execution.documents import RULES
from sessionhub.server.execution.fast_path import FastExecutor
from sessionhub.server.execution.private import (
    BASIC_RESOLVER,
    PRIVATE_NAMES,
    PrivateName,
    graphql_schema,
    load,
)


@strawberry.enum
class Shade(enum.Enum):
    DARK = "dark"


@strawberry.type
class Leaf:
    label: str
    shade: Shade


@strawberry.type
class Query:
    @strawberry.field
    def leaf(self) -> Leaf:
        return Leaf(label="x", shade=Shade.DARK)


SCHEMA = strawberry.Schema(query=Query)
CORE = graphql_schema(SCHEMA)
DOCUMENT = parse("query Q { leaf { ...F shade } } fragment F on Leaf { label }")


def _label_field() -> Any:
    return CORE.get_type("Leaf").fields["label"]  # type: ignore[union-attr]


def _executor() -> Any:
    executor = FastExecutor.build(CORE, DOCUMENT)
    assert not isinstance(executor, list), executor
    return executor


def _collected() -> tuple[Any, ...]:
    """What collect_subfields returned while executing DOCUMENT."""
    seen: list[Any] = []

    class Spy(FastExecutor):
        def collect_subfields(self, *args: Any) -> Any:
            result = super().collect_subfields(*args)
            seen.append(result)
            return result

    result = execute(CORE, DOCUMENT, executor_class=Spy)
    assert not result.errors, result.errors  # type: ignore[union-attr]
    assert seen, "collect_subfields was not called"
    return tuple(seen[0])


def _schema_attribute() -> None:
    assert isinstance(graphql_schema(SCHEMA), GraphQLSchema)


def _executor_class() -> None:
    base = load("strawberry.schema.schema", "StrawberryGraphQLCoreExecutionContext")
    assert issubclass(FastExecutor, base)
    assert execute(CORE, DOCUMENT, executor_class=FastExecutor).data == {  # type: ignore[union-attr]
        "leaf": {"label": "x", "shade": "DARK"}
    }


def _validate_document() -> None:
    """Strawberry validates with graphql-core's rules plus its own: the seam's RULES are
    the same list."""
    import strawberry.schema.schema as module

    used: list[tuple[Any, ...]] = []
    original = module.validate

    def spy(schema: Any, document: Any, rules: Any, *args: Any, **kwargs: Any) -> Any:
        used.append(tuple(rules))
        return original(schema, document, rules, *args, **kwargs)

    module.validate = spy
    try:
        validate_document = load("strawberry.schema.schema", "validate_document")
        assert validate_document(CORE, DOCUMENT, tuple(specified_rules)) == []
    finally:
        module.validate = original
    assert used == [RULES], f"Strawberry now validates with {used}"


def _validation_rule(name: str) -> Callable[[], None]:
    module = {
        "MaybeNullValidationRule": "strawberry.schema.validation_rules.maybe_null",
        "OneOfInputValidationRule": "strawberry.schema.validation_rules.one_of",
    }[name]

    def check() -> None:
        rule = load(module, name)
        assert issubclass(rule, ASTValidationRule) and rule in RULES

    return check


def _is_awaitable() -> None:
    is_awaitable = load("strawberry.execution", "optimized_is_awaitable")

    async def coroutine() -> None:
        return None

    pending = coroutine()
    assert is_awaitable(pending) and not is_awaitable(1)
    pending.close()


def _cannot_get_operation_type() -> None:
    error = load("strawberry.schema.exceptions", "CannotGetOperationTypeError")("Q")
    assert isinstance(error, Exception)


def _invalid_operation_type() -> None:
    from strawberry.types.graphql import OperationType

    error = load("strawberry.schema.exceptions", "InvalidOperationTypeError")(
        OperationType.MUTATION
    )
    assert error.operation_type is OperationType.MUTATION  # graphql_http reads it


def _backref() -> None:
    from strawberry.types.field import StrawberryField

    backref = load("strawberry.schema.schema_converter", "GraphQLCoreConverter.DEFINITION_BACKREF")
    assert isinstance(_label_field().extensions.get(backref), StrawberryField)


def _basic_resolver() -> None:
    resolve = _label_field().resolve
    assert getattr(resolve, "__name__", None) == BASIC_RESOLVER, resolve


def _enum_type() -> None:
    enum_type = load("strawberry.schema.schema_converter", "CustomGraphQLEnumType")
    assert isinstance(CORE.get_type("Shade"), enum_type)


def _enum_wrapped_cls() -> None:
    assert CORE.get_type("Shade").wrapped_cls is Shade  # type: ignore[union-attr]


def _strawberry_field(attribute: str, expected: Callable[[Any], bool]) -> Callable[[], None]:
    def check() -> None:
        backref = load(
            "strawberry.schema.schema_converter", "GraphQLCoreConverter.DEFINITION_BACKREF"
        )
        field = _label_field().extensions[backref]
        assert expected(getattr(field, attribute)), getattr(field, attribute)
        resolved = CORE.query_type.fields["leaf"].extensions[backref]  # type: ignore[union-attr]
        if attribute == "is_basic_field":
            assert resolved.is_basic_field is False  # a field with a resolver is not

    return check


def _execute_fields() -> None:
    parameters = list(inspect.signature(Executor.execute_fields).parameters)
    assert parameters == [
        "self",
        "parent_type",
        "source_value",
        "path",
        "grouped_field_set",
        "position_context",
    ], parameters


def _collect_subfields() -> None:
    collected = _collected()
    assert len(collected) == 3, collected  # (grouped field set, new defer usages, ...)
    grouped, new_defer_usages = collected[0], collected[1]
    assert not new_defer_usages
    details = next(iter(grouped.values()))[0]
    assert details.node.name.value in {"label", "shade"}


def _middleware_manager() -> None:
    assert _executor().middleware_manager is None


def _operation() -> None:
    assert isinstance(_executor().operation, OperationDefinitionNode)


def _fragment_definitions() -> None:
    assert set(_executor().fragment_definitions) == {"F"}


def _fragment_variable_values() -> None:
    grouped = _collected()[0]
    details = next(iter(grouped.values()))[0]
    assert details.fragment_variable_values is None


def _parse() -> None:
    with pytest.raises(GraphQLError) as refused:
        parse("{ a b c }", max_tokens=2)
    # documents.py tells the token limit from other syntax errors by these words.
    assert "more than 2 tokens" in refused.value.message


SHAPES: dict[str, Callable[[], None]] = {
    "strawberry.schema.schema.Schema._schema": _schema_attribute,
    "strawberry.schema.schema.StrawberryGraphQLCoreExecutionContext": _executor_class,
    "strawberry.schema.schema.validate_document": _validate_document,
    "strawberry.schema.validation_rules.maybe_null.MaybeNullValidationRule": _validation_rule(
        "MaybeNullValidationRule"
    ),
    "strawberry.schema.validation_rules.one_of.OneOfInputValidationRule": _validation_rule(
        "OneOfInputValidationRule"
    ),
    "strawberry.execution.optimized_is_awaitable": _is_awaitable,
    "strawberry.schema.exceptions.CannotGetOperationTypeError": _cannot_get_operation_type,
    "strawberry.schema.exceptions.InvalidOperationTypeError": _invalid_operation_type,
    "strawberry.schema.schema_converter.GraphQLCoreConverter.DEFINITION_BACKREF": _backref,
    "strawberry.schema.schema_converter.GraphQLCoreConverter.from_resolver": _basic_resolver,
    "strawberry.schema.schema_converter.CustomGraphQLEnumType": _enum_type,
    "strawberry.schema.schema_converter.CustomGraphQLEnumType.wrapped_cls": _enum_wrapped_cls,
    "strawberry.types.field.StrawberryField.is_basic_field": _strawberry_field(
        "is_basic_field", lambda value: value is True
    ),
    "strawberry.types.field.StrawberryField.default_resolver": _strawberry_field(
        "default_resolver", lambda value: value is getattr
    ),
    "strawberry.types.field.StrawberryField.python_name": _strawberry_field(
        "python_name", lambda value: value == "label"
    ),
    "graphql.execution.executor.Executor.execute_fields": _execute_fields,
    "graphql.execution.executor.Executor.collect_subfields": _collect_subfields,
    "graphql.execution.executor.Executor.middleware_manager": _middleware_manager,
    "graphql.execution.executor.Executor.operation": _operation,
    "graphql.execution.executor.Executor.fragment_definitions": _fragment_definitions,
    "graphql.execution.collect_fields.FieldDetails.fragment_variable_values": (
        _fragment_variable_values
    ),
    "graphql.language.parser.parse": _parse,
}


@pytest.mark.parametrize("entry", PRIVATE_NAMES, ids=lambda entry: entry.symbol)
def test_the_private_name_is_there_with_its_shape(entry: PrivateName) -> None:
    try:
        if not entry.instance:
            load(entry.module, entry.name)
        SHAPES[entry.symbol]()
    except Exception as exc:  # AssertionError included: the message names the symbol
        problem = f"{type(exc).__name__}: {exc}"
    else:
        return
    pytest.fail(
        f"{entry.symbol} changed ({problem}); the seam relies on it: {entry.why}. "
        "See server/execution/private.py.",
        pytrace=False,
    )


def test_every_private_name_has_its_shape_checked() -> None:
    assert {entry.symbol for entry in PRIVATE_NAMES} == set(SHAPES)


def test_a_name_missing_from_the_list_is_refused() -> None:
    with pytest.raises(LookupError, match="not listed"):
        load("strawberry.schema.schema", "Schema")


def test_a_name_gone_from_the_library_says_which() -> None:
    import sessionhub.server.execution.private as private

    missing = PrivateName("strawberry.schema.schema", "GoneInTheUpgrade", "a test")
    listed = private._LISTED
    private._LISTED = {*listed, missing.symbol}
    try:
        with pytest.raises(private.PrivateNameMissing, match="GoneInTheUpgrade"):
            load(missing.module, missing.name)
    finally:
        private._LISTED = listed


def test_the_fast_path_runs_on_this_schema() -> None:
    """The canary's schema takes the fast path, so the names above are the ones it uses."""
    counts: list[str] = []

    class Counting(FastExecutor):
        def _build_plan(self, parent_type: Any, grouped_field_set: Any) -> Any:
            plan = super()._build_plan(parent_type, grouped_field_set)
            counts.append(f"{parent_type.name}:{plan is not None}")
            return plan

    result = asyncio.run(_run(Counting))
    assert result == {"leaf": {"label": "x", "shade": "DARK"}}
    assert "Leaf:True" in counts


async def _run(executor_class: type) -> Any:
    result = execute(CORE, DOCUMENT, executor_class=executor_class)
    if inspect.isawaitable(result):
        result = await result
    return result.data  # type: ignore[union-attr]
