"""The Server-Timing header: the app's own time on every HTTP response."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route, WebSocketRoute
from starlette.testclient import TestClient
from starlette.websockets import WebSocket

from sessionhub.server.app import create_app
from sessionhub.server.settings import Settings
from sessionhub.server.timing import ServerTiming, app_milliseconds


def _timed_app() -> Starlette:
    async def slow(request: Request) -> PlainTextResponse:
        await asyncio.sleep(0.05)
        return PlainTextResponse("done", headers={"server-timing": "db;dur=1.5"})

    async def echo(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text(await websocket.receive_text())
        await websocket.close()

    return ServerTiming(Starlette(routes=[Route("/slow", slow), WebSocketRoute("/ws", echo)]))


def test_the_duration_covers_the_work_and_keeps_the_apps_own_metrics() -> None:
    with TestClient(_timed_app()) as client:
        response = client.get("/slow")
    assert response.text == "done"
    took = app_milliseconds(response.headers["server-timing"])
    assert took is not None and 50 <= took < 5000
    assert "db;dur=1.5" in response.headers["server-timing"]


def test_websockets_pass_through_untouched() -> None:
    with TestClient(_timed_app()) as client, client.websocket_connect("/ws") as ws:
        ws.send_text("ping")
        assert ws.receive_text() == "ping"


def test_every_response_of_the_server_carries_it(
    settings_factory: Callable[..., Settings],
) -> None:
    with TestClient(create_app(settings_factory())) as client:
        graphql = client.post("/graphql", json={"query": "{ __typename }"})
        health = client.get("/healthz")
    for response in (graphql, health):
        took = app_milliseconds(response.headers.get("server-timing"))
        assert took is not None and took >= 0


def test_reading_the_header() -> None:
    assert app_milliseconds("app;dur=2.25") == 2.25
    assert app_milliseconds("db;dur=1, app;desc=x;dur=0.5") == 0.5
    assert app_milliseconds("db;dur=1") is None
    assert app_milliseconds("app;dur=soon") is None
    assert app_milliseconds("app") is None
    assert app_milliseconds(None) is None
