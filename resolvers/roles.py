"""Who each group of fields is for, as the @auth directive states it."""

from __future__ import annotations

from ..domain.models import Role

PEOPLE = [Role.USER, Role.ENTITY_ADMIN, Role.AUDITOR, Role.ADMIN]
WRITERS = [Role.USER, Role.SERVICE, Role.ADMIN]
OWNERS = [Role.USER, Role.ADMIN]
GRADERS = [Role.USER, Role.SERVICE, Role.ADMIN]
