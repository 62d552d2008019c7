"""SIGTERM ends `sessionhub serve` within seconds: idle, with a live subscription, and with
a request whose body never comes (uvicorn waited for it without limit: one such client
kept the process alive for good). An event loop stuck in CPU-bound work cannot act on
any timeout; the server's watchdog ends that process anyway (here under a stand-in app
that spins, since nothing in the API should take that long)."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import orjson
import pytest
from websockets.asyncio.client import connect

from sessionhub.server.shutdown import EXIT_FORCED
from tests.support.servers import Server, environment, free_port, start_server

# Generous bounds: what they catch is a process that does not end at all.
EXIT_TIMEOUT_S = 20.0
SHUTDOWN_TIMEOUT_S = 1.0
SUBSCRIPTION = "subscription { mySessions { change sessionId } }"


def _terminated_within(server: Server, seconds: float) -> int:
    server.process.send_signal(signal.SIGTERM)
    try:
        return server.process.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        pytest.fail(f"still running {seconds}s after SIGTERM:\n{server.log()}")
    finally:
        server.stop()


def _server(tmp_path: Path) -> Server:
    env = environment(
        tmp_path,
        SESSIONHUB_SHUTDOWN_TIMEOUT_SECONDS=str(SHUTDOWN_TIMEOUT_S),
        SESSIONHUB_TITLE_WORKER_PROCESS="false",
    )
    return start_server(tmp_path, env)


def test_sigterm_ends_an_idle_server(tmp_path: Path) -> None:
    code = _terminated_within(_server(tmp_path), EXIT_TIMEOUT_S)
    assert code == -signal.SIGTERM


def test_sigterm_ends_a_server_waiting_for_a_request_body(tmp_path: Path) -> None:
    server = _server(tmp_path)
    port = int(server.base_url.rsplit(":", 1)[1])
    token = server.token()
    with socket.create_connection(("127.0.0.1", port)) as slow:
        # With a token: a request without one is refused before its body is read.
        slow.sendall(
            b"POST /graphql HTTP/1.1\r\nHost: sessionhub\r\nContent-Type: application/json\r\n"
            + f"Authorization: Bearer {token}\r\n".encode()
            + b'Content-Length: 100000\r\n\r\n{"query": "'
        )
        time.sleep(0.3)  # the request is in the app, reading its body
        code = _terminated_within(server, EXIT_TIMEOUT_S)
    assert code == -signal.SIGTERM
    assert "timeout graceful shutdown exceeded" in server.log()


async def test_sigterm_ends_a_server_with_a_live_subscription(tmp_path: Path) -> None:
    server = _server(tmp_path)
    ws_url = server.base_url.replace("http://", "ws://") + "/graphql"
    async with connect(ws_url, subprotocols=["graphql-transport-ws"]) as ws:  # type: ignore[list-item]
        init = {"type": "connection_init", "payload": {"token": server.token()}}
        await ws.send(orjson.dumps(init).decode())
        assert orjson.loads(await ws.recv()) == {"type": "connection_ack"}
        subscribe = {"id": "s", "type": "subscribe", "payload": {"query": SUBSCRIPTION}}
        await ws.send(orjson.dumps(subscribe).decode())
        code = _terminated_within(server, EXIT_TIMEOUT_S)
    assert code == -signal.SIGTERM


SPINNING_APP = textwrap.dedent(
    """
    import sys, time
    import uvicorn
    from sessionhub.server.shutdown import BoundedServer

    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["path"] == "/spin":
            while True:  # CPU-bound work that never yields to the event loop
                time.monotonic()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"up"})

    config = uvicorn.Config(
        app, port=int(sys.argv[1]), log_level="warning", timeout_graceful_shutdown=0.5
    )
    BoundedServer(config, hard_deadline=1.0).run()
    """
)


def test_the_watchdog_ends_a_server_whose_event_loop_is_stuck() -> None:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-c", SPINNING_APP, str(port)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + EXIT_TIMEOUT_S
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                assert time.monotonic() < deadline, "the app did not start"
                time.sleep(0.05)
        spinner = socket.create_connection(("127.0.0.1", port))
        spinner.sendall(b"GET /spin HTTP/1.1\r\nHost: x\r\n\r\n")
        time.sleep(0.3)
        process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(timeout=EXIT_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            pytest.fail(f"still running {EXIT_TIMEOUT_S}s after SIGTERM")
        spinner.close()
        assert code == EXIT_FORCED
        assert process.stdout is not None
        assert "its event loop is busy" in process.stdout.read().decode()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
