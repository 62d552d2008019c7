"""Real `sessionhub serve` processes under uvicorn for the end-to-end tests and the
benchmarks under bench/, and the real `sessionhub token` command to mint their tokens.

Each server listens on 127.0.0.1 on a free port, with its own SQLite file and its own JWT
secret in a temporary folder; `Server.stop` (called by the tests' fixtures) terminates it.
Tokens come from the real CLI run with the same environment, which proves that what the CLI
signs the server accepts; `token_issuer` signs them in process with the same secret, for
callers that need more tokens than processes can mint. Nothing here needs pytest, so that
the benchmarks can use it too: a server that does not start raises `RuntimeError`.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2 as httpx

from sessionhub.auth.tokens import HS256, TokenConfig, TokenIssuer

# A server on a large store (bench/scale.py) may take a while to answer /healthz.
STARTUP_TIMEOUT_S = 30.0
EXIT_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 15.0
CLI_TIMEOUT_S = 30.0

GRAPHQL_RESPONSE = "application/graphql-response+json"


# server/cli.py ends with `if __name__ == "__main__": main()`, so `-m` runs the CLI with this
# very interpreter (the console script would be Path(sys.executable).parent / "sessionhub").
CLI = [sys.executable, "-m", "sessionhub.server.cli"]
SERVE = (*CLI, "serve")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def environment(folder: Path, **overrides: str) -> dict[str, str]:
    """The parent's environment without any SESSIONHUB_* of its own, plus a private
    database file, secret and dev-secret file under `folder`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SESSIONHUB_")}
    env.update(
        SESSIONHUB_DATABASE_URL=f"sqlite:///{folder / 'sessionhub.db'}",
        SESSIONHUB_JWT_SECRET=secrets.token_urlsafe(48),
        SESSIONHUB_DEV_SECRET_FILE=str(folder / "dev-jwt-secret"),
        SESSIONHUB_LOG_LEVEL="warning",
    )
    env.update(overrides)
    return env


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    base_url: str
    env: dict[str, str]
    folder: Path
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        terminate(self.process)

    def token(self, user: str = "alice", entity: str = "acme", *extra: str) -> str:
        return issue_token(self.env, self.folder, "--user", user, "--entity", entity, *extra)


def token_issuer(env: dict[str, str]) -> TokenIssuer:
    """Signs tokens in process with the secret of the servers started with `env`, as
    `sessionhub token` does."""
    secret = env["SESSIONHUB_JWT_SECRET"]
    return TokenIssuer(TokenConfig(HS256, secret, secret))


def terminate(process: subprocess.Popen[bytes]) -> None:
    """Ends a process that is still running: SIGTERM, then SIGKILL if it has not exited
    within STOP_TIMEOUT_S."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=STOP_TIMEOUT_S)


def start_server(
    folder: Path, env: dict[str, str], name: str = "server", program: tuple[str, ...] = SERVE
) -> Server:
    """`program --host 127.0.0.1 --port PORT` (`sessionhub serve` unless told otherwise)
    on a free port, its output in a log in `folder`, once its /healthz answers."""
    port = free_port()
    log_path = folder / f"{name}-{port}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [*program, "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            cwd=folder,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = Server(process, f"http://127.0.0.1:{port}", env, folder, log_path)
    try:
        _wait_healthy(server)
    except BaseException:
        server.stop()
        raise
    return server


@contextmanager
def running_server(
    folder: Path, env: dict[str, str], name: str = "server", program: tuple[str, ...] = SERVE
) -> Iterator[Server]:
    """`start_server`, stopped on leaving."""
    server = start_server(folder, env, name, program)
    try:
        yield server
    finally:
        server.stop()


def _wait_healthy(server: Server) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    last: Exception | None = None
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(
                f"{server.log_path.stem} exited with {server.process.returncode}:\n{server.log()}"
            )
        try:
            response = httpx.get(f"{server.base_url}/healthz", timeout=2.0)
            if response.status_code == 200:
                return
        except httpx.TransportError as exc:
            last = exc
        time.sleep(0.05)
    raise RuntimeError(
        f"/healthz did not answer within {STARTUP_TIMEOUT_S}s ({last!r}):\n{server.log()}"
    )


def issue_token(env: dict[str, str], folder: Path, *args: str) -> str:
    done = subprocess.run(
        [*CLI, "token", *args],
        env=env,
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
    )
    assert done.returncode == 0, done.stderr
    token = done.stdout.strip()
    assert token.count(".") == 2, f"not a JWT: {token!r}"
    return token


class Client:
    """A synchronous GraphQL caller for one token."""

    def __init__(self, server: Server, token: str) -> None:
        self.server = server
        self.headers = {"Authorization": f"Bearer {token}"}

    def post(
        self, query: str, variables: dict[str, Any] | None = None, accept: str | None = None
    ) -> httpx.Response:
        headers = dict(self.headers)
        if accept is not None:
            headers["Accept"] = accept
        return httpx.post(
            f"{self.server.base_url}/graphql",
            json={"query": query, "variables": variables or {}},
            headers=headers,
            timeout=30.0,
        )

    def ok(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        response = self.post(query, variables)
        assert response.status_code == 200, response.text
        body = response.json()
        assert "errors" not in body, body["errors"]
        return body["data"]
