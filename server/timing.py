"""`Server-Timing` on every HTTP response: how long the app took, from the request
reaching it to the start of the response (`app;dur=` in milliseconds, W3C Server Timing).

Browsers' developer tools show it beside the network time, and a benchmark on the same
machine as the server reads it to tell the server's latency from its own (a Python HTTP
client's work on the same cores is a good part of each round trip). Not counted: the
socket and the HTTP parsing before the app is called.
"""

from __future__ import annotations

import time

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

METRIC = "app"


class ServerTiming:
    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        started = time.perf_counter()

        async def send_timed(message: Message) -> None:
            if message["type"] == "http.response.start":
                took_ms = (time.perf_counter() - started) * 1000
                message.setdefault("headers", [])  # optional in ASGI, required by MutableHeaders
                MutableHeaders(scope=message).append("server-timing", f"{METRIC};dur={took_ms:.3f}")
            await send(message)

        await self._app(scope, receive, send_timed)


def app_milliseconds(header: str | None) -> float | None:
    """The app's duration in a `Server-Timing` header value, or None when it has none."""
    for metric in (header or "").split(","):
        name, _, params = metric.strip().partition(";")
        if name.strip() != METRIC:
            continue
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key == "dur":
                try:
                    return float(value)
                except ValueError:
                    return None
    return None
