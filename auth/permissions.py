"""Enforces @auth: the extension reads the directive from its field when the schema is built."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import strawberry
from strawberry.extensions import FieldExtension
from strawberry.types import Info
from strawberry.types.field import StrawberryField

from ..domain.errors import Forbidden, Unauthenticated
from ..domain.models import Principal, Role, UserType
from ..schema.directives import Auth


class AuthExtension(FieldExtension):
    def __init__(self) -> None:
        self.roles: frozenset[Role] = frozenset()
        self.user_type: UserType | None = None

    def apply(self, field: StrawberryField) -> None:
        directives = [d for d in field.directives if isinstance(d, Auth)]
        if len(directives) != 1:
            raise TypeError(f"Field {field.python_name!r} needs exactly one @auth directive.")
        self.roles = frozenset(directives[0].requires or ())
        self.user_type = directives[0].user_type or None

    def check(self, info: Info) -> None:
        principal: Principal | None = info.context.principal
        if principal is None:
            raise Unauthenticated("Send a token: 'Authorization: Bearer <token>'.")
        if self.roles and not (self.roles & principal.roles):
            names = ", ".join(sorted(r.name for r in self.roles))
            raise Forbidden(f"{info.field_name} needs one of these roles: {names}.")
        if self.user_type is not None and principal.user_type is not self.user_type:
            raise Forbidden(f"{info.field_name} is for {self.user_type.value.lower()} users only.")

    def resolve(self, next_: Callable[..., Any], source: Any, info: Info, **kwargs: Any) -> Any:
        self.check(info)
        return next_(source, info, **kwargs)

    async def resolve_async(
        self, next_: Callable[..., Awaitable[Any]], source: Any, info: Info, **kwargs: Any
    ) -> Any:
        self.check(info)
        return await next_(source, info, **kwargs)


def _auth_kwargs(requires: list[Role] | None, user_type: UserType | None) -> dict[str, Any]:
    # Arguments left UNSET stay out of the printed SDL: `@auth` rather than `@auth(requires: null)`.
    directive = Auth(
        requires=requires if requires else strawberry.UNSET,
        user_type=user_type if user_type else strawberry.UNSET,
    )
    return {
        "directives": [directive],
        "extensions": [AuthExtension()],
    }


def auth_field(
    resolver: Callable[..., Any] | None = None,
    *,
    requires: list[Role] | None = None,
    user_type: UserType | None = None,
    description: str | None = None,
) -> Any:
    kwargs = _auth_kwargs(requires, user_type)
    if resolver is None:
        return strawberry.field(description=description, **kwargs)
    return strawberry.field(resolver=resolver, description=description, **kwargs)


def auth_mutation(
    resolver: Callable[..., Any],
    *,
    requires: list[Role] | None = None,
    user_type: UserType | None = None,
    description: str | None = None,
) -> Any:
    return strawberry.mutation(
        resolver=resolver, description=description, **_auth_kwargs(requires, user_type)
    )


def auth_subscription(
    resolver: Callable[..., Any],
    *,
    requires: list[Role] | None = None,
    user_type: UserType | None = None,
    description: str | None = None,
) -> Any:
    """A subscription field under @auth. The resolver is a coroutine that checks access and
    returns the event stream, so that refusals come before the subscription starts."""
    return strawberry.subscription(
        resolver=resolver, description=description, **_auth_kwargs(requires, user_type)
    )
