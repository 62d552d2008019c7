"""A start that cannot succeed says why in one line, and the process exits.

The lifespan opens the store and starts the broker. When that fails with a DomainError,
the failure is expected and the operator's to fix (the database file is damaged, its
folder read-only, the server out of reach), and its message names what is wrong; but
Starlette hands uvicorn the whole traceback to print, and the message ends up at the
bottom of a screenful of frames. This middleware gives uvicorn the message instead.
Any other exception is a bug, and keeps its traceback.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..domain.errors import DomainError

FAILED = "lifespan.startup.failed"


class StartupFailures:
    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self._app(scope, receive, send)
            return
        # Starlette sends the failure before it raises; held until the exception says
        # what kind of failure it was.
        failure: list[Message] = []

        async def hold_failure(message: Message) -> None:
            if message["type"] == FAILED:
                failure.append(message)
            else:
                await send(message)

        try:
            await self._app(scope, receive, hold_failure)
        except DomainError as exc:
            if failure:
                failure[0] = {"type": FAILED, "message": exc.message}
            raise
        finally:
            for message in failure:
                await send(message)
