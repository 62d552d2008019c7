"""How driver errors become domain errors: the one translation, applied by MongoStore to
every call that reaches the server, with the driver's error chained as the cause."""

from __future__ import annotations

import functools
from collections.abc import Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

from bson.errors import BSONError
from pymongo.errors import ConnectionFailure, DuplicateKeyError, PyMongoError

from ...domain.errors import Conflict, DomainError, InvalidInput, StoreUnavailable

T = TypeVar("T")
P = ParamSpec("P")


def translated(fn: Callable[P, Coroutine[Any, Any, T]]) -> Callable[P, Coroutine[Any, Any, T]]:
    """`fn`, raising domain errors where the driver raises its own."""

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return await fn(*args, **kwargs)
        except DomainError:
            raise
        except DuplicateKeyError as exc:
            raise Conflict("The change conflicts with stored data (duplicate key).") from exc
        except ConnectionFailure as exc:
            # ServerSelectionTimeoutError, NetworkTimeout and AutoReconnect are kinds of it.
            raise StoreUnavailable(f"MongoDB could not be reached: {exc}") from exc
        except PyMongoError as exc:
            raise StoreUnavailable(f"MongoDB could not complete the request: {exc}") from exc
        except (BSONError, OverflowError) as exc:
            # DocumentTooLarge, NUL in a key, integers past 64 bits.
            raise InvalidInput(f"The value cannot be stored: {exc}") from exc

    return wrapper
