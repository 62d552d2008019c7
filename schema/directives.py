"""The @auth directive: which principals a field is for, visible to anyone reading the SDL."""

from __future__ import annotations

import strawberry
from strawberry.schema_directive import Location

from ..domain.models import Role, UserType


@strawberry.schema_directive(
    locations=[Location.FIELD_DEFINITION],
    name="auth",
    description=(
        "The field needs an authenticated principal holding one of `requires` (any role "
        "when absent) and, when `userType` is given, of that user type."
    ),
)
class Auth:
    requires: list[Role] | None = strawberry.UNSET
    user_type: UserType | None = strawberry.UNSET
