"""Liveness (`/healthz`: the process answers) apart from readiness (`/readyz`: the store
reads and writes, the broker carries events). A store that fills its disk, loses its
file or sits on a filesystem that stops taking writes leaves the server answering, and
`/healthz` green; `/readyz` answers 503 and names the problem, and turns green again by
itself once the problem is gone, without a restart and without losing an acknowledged
turn. The disks here are real filesystems the tests mount (tests/server/filesystems.py).
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx2 as httpx
from starlette.testclient import TestClient

from sessionhub.server.app import create_app
from sessionhub.server.settings import Settings
from tests.server.filesystems import ext4, fail_ext4, tmpfs
from tests.server.test_end_to_end import APPEND, SEND
from tests.support.servers import Client, Server, environment, free_port, start_server

# How long readiness may take to see a change: it answers from its last check for up to
# a second.
CHANGE_TIMEOUT_S = 15.0
# What "at all" means for a probe of a store that does not answer: far above the bound
# readiness keeps (2 s), far below the ten minutes a blocked probe would wait.
PROBE_HANG_S = 15.0
TURNS_PAGE = """
query Turns($id: ID!, $after: String) {
  session(id: $id) {
    turns(first: 100, after: $after) {
      pageInfo { hasNextPage endCursor }
      edges { node { seq content } }
    }
  }
}"""


def _readiness_until(server: Server, status: int) -> dict[str, Any]:
    deadline = time.monotonic() + CHANGE_TIMEOUT_S
    while True:
        response = httpx.get(f"{server.base_url}/readyz", timeout=10.0)
        if response.status_code == status or time.monotonic() > deadline:
            assert response.status_code == status, response.text
            return response.json()
        time.sleep(0.2)


def _healthz(server: Server) -> httpx.Response:
    return httpx.get(f"{server.base_url}/healthz", timeout=10.0)


def _stored_turns(client: Client, session_id: str) -> list[dict[str, Any]]:
    turns: list[dict[str, Any]] = []
    after = None
    while True:
        page = client.ok(TURNS_PAGE, {"id": session_id, "after": after})["session"]["turns"]
        turns += [edge["node"] for edge in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            return turns
        after = page["pageInfo"]["endCursor"]


def _fill(folder: Path) -> Path:
    """A file that takes every byte left on the filesystem."""
    filler = folder / "filler"
    with filler.open("wb", buffering=0) as file:
        try:
            while True:
                file.write(b"\0" * 65536)
        except OSError:
            pass
    with filler.open("ab", buffering=0) as file:  # the last bytes, a block at a time
        try:
            while True:
                file.write(b"\0" * 4096)
        except OSError:
            pass
    return filler


def _words(i: int) -> str:
    return " ".join(f"word{i}x{j}" for j in range(800))  # about 8 KB, all words new


# In process


def test_liveness_and_readiness_on_a_healthy_server(settings: Settings) -> None:
    with TestClient(create_app(settings)) as client:
        health = client.get("/healthz")
        assert health.status_code == 200
        assert health.json()["status"] == "ok" and health.json()["store"] == "sqlite"
        ready = client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json() == {"status": "ok", "store": "ok", "broker": "ok"}


def test_a_replaced_database_turns_readiness_red_and_leaves_liveness_green(
    settings: Settings, tmp_path: Path
) -> None:
    with TestClient(create_app(settings)) as client:
        database = Path(settings.sqlite_path)
        copy = tmp_path / "copy.db"
        shutil.copyfile(database, copy)
        copy.replace(database)
        ready = client.get("/readyz")
        assert ready.status_code == 503
        body = ready.json()
        assert body["status"] == "unavailable"
        assert f"the database file {database} was replaced" in body["store"]
        assert client.get("/healthz").status_code == 200


def test_a_flood_of_readiness_probes_checks_the_store_at_most_once_a_second(
    settings: Settings,
) -> None:
    """The store's check is a real write, and /readyz has no authentication."""
    with TestClient(create_app(settings)) as client:
        store = client.app.state.components.store
        checks = 0
        check_ready = store.check_ready

        async def counted() -> None:
            nonlocal checks
            checks += 1
            await check_ready()

        store.check_ready = counted
        started = time.monotonic()
        for _ in range(200):
            assert client.get("/readyz").status_code == 200
        elapsed = time.monotonic() - started
        assert 1 <= checks <= int(elapsed) + 2, (checks, elapsed)


# Another process: SQLite's POSIX locks do not stand between two connections of one process
# that use two copies of the library (the stdlib's and the store's).
_HOLD_WRITE_LOCK = """
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN IMMEDIATE")
db.execute("CREATE TABLE batch_job (n INTEGER)")
print("held", flush=True)
sys.stdin.read()
db.execute("ROLLBACK")
"""


@contextlib.contextmanager
def _write_lock_held(database: str) -> Iterator[None]:
    """The database's write lock held by a long transaction of another process."""
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD_WRITE_LOCK, database],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        yield
    finally:
        holder.communicate(timeout=PROBE_HANG_S)


def test_a_store_held_by_a_long_write_answers_busy_and_never_holds_the_probes(
    settings_factory: Callable[..., Settings],
) -> None:
    """Another connection (a batch job, a long erasure) holds the database's write lock;
    with a long busy timeout the store's own write probe would wait all of it, and every
    probe behind it. Readiness answers within its bound instead, and recovers by itself."""
    settings = settings_factory(sqlite_busy_timeout_ms=600_000)
    with TestClient(create_app(settings)) as client:
        assert client.get("/readyz").status_code == 200
        pool = ThreadPoolExecutor(4)
        try:
            with _write_lock_held(settings.sqlite_path):
                time.sleep(1.1)  # past the answer readiness keeps for a second
                probes = [pool.submit(client.get, "/readyz") for _ in range(4)]
                answers = [probe.result(timeout=PROBE_HANG_S) for probe in probes]
                assert client.get("/healthz").status_code == 200
        finally:
            pool.shutdown()  # once the lock is let go, should a probe still wait for it
        for answer in answers:
            assert answer.status_code == 503, answer.text
            assert answer.json() == {
                "status": "unavailable",
                "store": "busy: the store did not answer within 2 s",
                "broker": "ok",
            }
        deadline = time.monotonic() + CHANGE_TIMEOUT_S
        while (ready := client.get("/readyz")).status_code != 200:
            assert time.monotonic() < deadline, ready.text
            time.sleep(0.2)
        assert ready.json() == {"status": "ok", "store": "ok", "broker": "ok"}


def test_a_redis_broker_that_does_not_answer_turns_readiness_red(
    settings_factory: Callable[..., Settings],
) -> None:
    nothing_there = f"redis://127.0.0.1:{free_port()}/0"
    with TestClient(create_app(settings_factory(redis_url=nothing_there))) as client:
        ready = client.get("/readyz")
        assert ready.status_code == 503
        body = ready.json()
        assert body["store"] == "ok"
        assert "Redis does not answer" in body["broker"]
        assert client.get("/healthz").status_code == 200


# A real server on a real disk


def test_a_full_disk_turns_readiness_red_and_writes_come_back_without_a_restart(
    tmp_path: Path,
) -> None:
    with tmpfs(tmp_path / "disk", "16m") as disk:
        env = environment(
            tmp_path,
            SESSIONHUB_DATABASE_URL=f"sqlite:///{disk / 'sessionhub.db'}",
            SESSIONHUB_TITLE_WORKER_PROCESS="false",
        )
        server = start_server(tmp_path, env)
        try:
            alice = Client(server, server.token())
            session_id = alice.ok(SEND, {"input": {"content": "hello", "chatAppId": "support"}})[
                "sendMessage"
            ]["session"]["id"]
            acknowledged = {1: "hello"}

            def append(i: int) -> dict[str, Any]:
                body = alice.post(
                    APPEND, {"input": {"sessionId": session_id, "content": _words(i)}}
                ).json()
                if "errors" not in body:
                    turn = body["data"]["appendTurn"]
                    acknowledged[turn["seq"]] = turn["content"]
                return body

            for i in range(20):
                assert "errors" not in append(i)
            assert _readiness_until(server, 200)["store"] == "ok"

            filler = _fill(disk)
            red = _readiness_until(server, 503)
            assert f"the disk holding {disk / 'sessionhub.db'} is full" in red["store"], red
            assert _healthz(server).status_code == 200
            # Writes fail with a code, once the room left in the WAL is used up.
            for i in range(20, 220):
                failed = append(i)
                if "errors" in failed:
                    break
            error = failed["errors"][0]
            assert error["extensions"]["code"] == "SERVICE_UNAVAILABLE", failed
            assert "disk is full" in error["message"], failed

            filler.unlink()
            assert _readiness_until(server, 200) == {"status": "ok", "store": "ok", "broker": "ok"}
            for i in range(220, 230):
                assert "errors" not in append(i)
            assert server.process.poll() is None, "the server restarted"

            stored = _stored_turns(alice, session_id)
            assert [t["seq"] for t in stored] == list(range(1, len(stored) + 1))
            assert {t["seq"]: t["content"] for t in stored} == acknowledged
        finally:
            server.stop()


def test_a_filesystem_that_turns_read_only_under_the_server(tmp_path: Path) -> None:
    with ext4(tmp_path / "disk", tmp_path / "disk.img", 32) as disk:
        env = environment(
            tmp_path,
            SESSIONHUB_DATABASE_URL=f"sqlite:///{disk / 'sessionhub.db'}",
            SESSIONHUB_TITLE_WORKER_PROCESS="false",
        )
        server = start_server(tmp_path, env)
        try:
            alice = Client(server, server.token())
            alice.ok(SEND, {"input": {"content": "hello", "chatAppId": "support"}})
            assert _readiness_until(server, 200)["store"] == "ok"

            fail_ext4(disk)
            red = _readiness_until(server, 503)
            assert str(disk / "sessionhub.db") in red["store"], red
            assert "read-only" in red["store"] or "disk I/O error" in red["store"], red
            assert _healthz(server).status_code == 200
            refused = alice.post(SEND, {"input": {"content": "more", "chatAppId": "support"}})
            assert refused.json()["errors"][0]["extensions"]["code"] == "SERVICE_UNAVAILABLE"
        finally:
            server.stop()
