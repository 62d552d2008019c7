"""The names of Strawberry and graphql-core that the seam relies on although neither
library promises them: private attributes, internal modules, and methods graphql-core
documents as not part of its public API.

They are listed here, once. Module-level names are imported through `load`, which
refuses a name missing from the list and says which symbol is gone when an upgrade
removed it; attributes are named by the constants below. The canary test
(tests/server/execution/test_private_names.py) reads every entry of `PRIVATE_NAMES` and
checks its shape on a real schema and executor, so that an upgrade that renames or
reshapes one fails there, naming the symbol, instead of turning into silent slowness.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    import strawberry
    from graphql import GraphQLSchema


class PrivateName(NamedTuple):
    """`module` imports; `name` is the dotted path inside it (`Class.attribute`).
    `instance`: an attribute of the class's instances (checked on a live one)."""

    module: str
    name: str
    why: str
    instance: bool = False

    @property
    def symbol(self) -> str:
        return f"{self.module}.{self.name}"


STRAWBERRY_SCHEMA = "strawberry.schema.schema"
CONVERTER = "strawberry.schema.schema_converter"
EXECUTOR = "graphql.execution.executor"

# The name Strawberry gives the resolver of a basic field (schema_converter.from_resolver):
# only that one is known to be `getattr(source, python_name)` and nothing else.
BASIC_RESOLVER = "_get_basic_result"

PRIVATE_NAMES: tuple[PrivateName, ...] = (
    PrivateName(
        STRAWBERRY_SCHEMA,
        "Schema._schema",
        "the graphql-core schema a Strawberry schema wraps (strawberry.Schema._schema)",
        instance=True,
    ),
    PrivateName(
        STRAWBERRY_SCHEMA,
        "StrawberryGraphQLCoreExecutionContext",
        "the executor class every operation runs on (Strawberry's resolve info)",
    ),
    PrivateName(
        "strawberry.schema.validation_rules.maybe_null",
        "MaybeNullValidationRule",
        "one of the two rules Strawberry adds to graphql-core's",
    ),
    PrivateName(
        "strawberry.schema.validation_rules.one_of",
        "OneOfInputValidationRule",
        "one of the two rules Strawberry adds to graphql-core's",
    ),
    PrivateName(
        STRAWBERRY_SCHEMA,
        "validate_document",
        "how Strawberry validates: the canary holds the seam's rules to the ones it adds",
    ),
    PrivateName(
        "strawberry.execution",
        "optimized_is_awaitable",
        "Strawberry's is_awaitable, handed to graphql-core as Schema.execute does",
    ),
    PrivateName(
        "strawberry.schema.exceptions",
        "CannotGetOperationTypeError",
        "raised when a request names no operation of its document",
    ),
    PrivateName(
        "strawberry.schema.exceptions",
        "InvalidOperationTypeError",
        "raised when a transport does not allow the operation's type",
    ),
    PrivateName(
        CONVERTER,
        "GraphQLCoreConverter.DEFINITION_BACKREF",
        "the key of a GraphQLField's extensions that holds its StrawberryField",
    ),
    PrivateName(
        CONVERTER,
        "GraphQLCoreConverter.from_resolver",
        f"makes a basic field's resolver, named {BASIC_RESOLVER}: the fast path plans only "
        "fields whose resolver has that name",
    ),
    PrivateName(
        CONVERTER,
        "CustomGraphQLEnumType",
        "the graphql-core type of a Strawberry enum",
    ),
    PrivateName(
        CONVERTER,
        "CustomGraphQLEnumType.wrapped_cls",
        "the Python enum of a Strawberry enum type (the fast path's enum shortcut)",
        instance=True,
    ),
    PrivateName(
        "strawberry.types.field",
        "StrawberryField.is_basic_field",
        "a field without resolver, arguments or extensions",
    ),
    PrivateName(
        "strawberry.types.field",
        "StrawberryField.default_resolver",
        "getattr for a basic field",
        instance=True,
    ),
    PrivateName(
        "strawberry.types.field",
        "StrawberryField.python_name",
        "the attribute a basic field reads",
        instance=True,
    ),
    PrivateName(
        EXECUTOR,
        "Executor.execute_fields",
        "the fast path's hook: (parent_type, source_value, path, grouped_field_set, "
        "position_context), ':meta private:' in graphql-core",
    ),
    PrivateName(
        EXECUTOR,
        "Executor.collect_subfields",
        "the grouped field set of an object's selection: (grouped_field_set, "
        "new_defer_usages, ...), ':meta private:' in graphql-core",
    ),
    PrivateName(
        EXECUTOR,
        "Executor.middleware_manager",
        "field middleware turns the fast path off",
        instance=True,
    ),
    PrivateName(
        EXECUTOR,
        "Executor.operation",
        "the operation node (which directives it carries)",
        instance=True,
    ),
    PrivateName(
        EXECUTOR,
        "Executor.fragment_definitions",
        "the fragments of the document (which directives they carry)",
        instance=True,
    ),
    PrivateName(
        "graphql.execution.collect_fields",
        "FieldDetails.fragment_variable_values",
        "a field under a fragment with variables is not planned for sharing",
    ),
    PrivateName(
        "graphql.language.parser",
        "parse",
        "max_tokens, and the 'more than N tokens' message that tells that limit apart",
    ),
)

_LISTED = {entry.symbol for entry in PRIVATE_NAMES}


class PrivateNameMissing(ImportError):
    """A name the seam relies on is gone: the library changed under it."""


def load(module: str, name: str) -> Any:
    """The object `module.name` (a dotted path inside the module), which must be listed in
    PRIVATE_NAMES."""
    symbol = f"{module}.{name}"
    if symbol not in _LISTED:
        raise LookupError(f"{symbol} is not listed in PRIVATE_NAMES")
    try:
        value: Any = importlib.import_module(module)
        for part in name.split("."):
            value = getattr(value, part)
    except (ImportError, AttributeError) as exc:
        raise PrivateNameMissing(
            f"sessionhub relies on {symbol}, which the installed library no longer has "
            f"({exc}); see server/execution/private.py"
        ) from exc
    return value


def graphql_schema(schema: strawberry.Schema) -> GraphQLSchema:
    """The graphql-core schema a Strawberry schema wraps (`Schema._schema`)."""
    try:
        return schema._schema
    except AttributeError as exc:
        raise PrivateNameMissing(
            f"sessionhub relies on {STRAWBERRY_SCHEMA}.Schema._schema, which the installed "
            "Strawberry no longer has; see server/execution/private.py"
        ) from exc
