"""Errors of the domain layer.

Every expected failure is a `DomainError` with a stable `code` that the API layer puts
in `extensions.code`; backends translate driver errors into these at their boundary.
"""

from __future__ import annotations


class DomainError(Exception):
    code = "INTERNAL"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    @property
    def extensions(self) -> dict[str, object]:
        """What the error's GraphQL `extensions` carry besides its code."""
        return {}


class NotFound(DomainError):
    code = "NOT_FOUND"


class Forbidden(DomainError):
    code = "FORBIDDEN"


class InvalidInput(DomainError):
    code = "BAD_USER_INPUT"


class Conflict(DomainError):
    code = "CONFLICT"


class SharingDisabled(DomainError):
    code = "SHARING_DISABLED"


class LimitExceeded(DomainError):
    code = "LIMIT_EXCEEDED"


class WorkStopped(LimitExceeded):
    """Work handed to a worker was stopped before it finished: it ran past its time
    budget, or its worker died (out of memory, killed)."""


class RateLimited(LimitExceeded):
    """Too many attempts of one kind by one principal; the next may come `retry_after`
    seconds from now (`extensions.retryAfter`; over HTTP a 429 with Retry-After)."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after

    @property
    def extensions(self) -> dict[str, object]:
        return {"retryAfter": self.retry_after}


class Unauthenticated(DomainError):
    code = "UNAUTHENTICATED"


class StoreUnavailable(DomainError):
    """The database could not answer (locked too long, disk full, connection lost)."""

    code = "SERVICE_UNAVAILABLE"


def session_not_found(session_id: str) -> NotFound:
    return NotFound(f"Session {session_id!r} was not found.")


def turn_not_found(turn_id: str) -> NotFound:
    return NotFound(f"Turn {turn_id!r} was not found.")
