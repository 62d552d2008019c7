"""The JWT secret's strength at start, with real processes: a guessable secret stops a
production `sessionhub serve` and `sessionhub token`; a random one serves the tokens the
CLI signs; development starts with a guessable one and says so in its log."""

from __future__ import annotations

import os
import secrets
import subprocess
from pathlib import Path

# The end-to-end tests' process helpers (the same names wherever they are defined).
from tests.server.test_end_to_end import CLI, EXIT_TIMEOUT_S, Client, start_server


def _environment(folder: Path, **overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SESSIONHUB_")}
    env.update(
        SESSIONHUB_DATABASE_URL=f"sqlite:///{folder / 'sessionhub.db'}",
        SESSIONHUB_DEV_SECRET_FILE=str(folder / "dev-jwt-secret"),
        SESSIONHUB_LOG_LEVEL="warning",
        **overrides,
    )
    return env


def test_a_guessable_secret_stops_a_production_server(tmp_path: Path) -> None:
    env = _environment(
        tmp_path, SESSIONHUB_ENVIRONMENT="production", SESSIONHUB_JWT_SECRET=" " * 32
    )
    for command in (["serve"], ["token", "--user", "alice", "--entity", "acme"]):
        done = subprocess.run(
            [*CLI, *command],
            env=env,
            cwd=tmp_path,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=EXIT_TIMEOUT_S,
        )
        assert done.returncode == 2, (command, done.stderr)
        assert "SESSIONHUB_JWT_SECRET: Value error, too easy to guess" in done.stderr
        assert not done.stdout


def test_cli_tokens_work_with_a_random_production_secret(tmp_path: Path) -> None:
    env = _environment(
        tmp_path,
        SESSIONHUB_ENVIRONMENT="production",
        SESSIONHUB_JWT_SECRET=secrets.token_urlsafe(32),
    )
    server = start_server(tmp_path, env)
    try:
        alice = Client(server, server.token("alice", "acme"))
        assert alice.ok("{ me { userId entityId } }")["me"] == {
            "userId": "alice",
            "entityId": "acme",
        }
    finally:
        server.stop()
    assert "weak_jwt_secret" not in server.log()


def test_development_runs_with_a_guessable_secret_and_warns(tmp_path: Path) -> None:
    server = start_server(tmp_path, _environment(tmp_path, SESSIONHUB_JWT_SECRET=" " * 32))
    try:
        alice = Client(server, server.token("alice", "acme"))
        assert alice.ok("{ me { userId } }")["me"] == {"userId": "alice"}
    finally:
        server.stop()
    log = server.log()
    assert "settings.weak_jwt_secret" in log and "SESSIONHUB_JWT_SECRET" in log
    assert "too easy to guess" in log
