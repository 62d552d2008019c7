"""`sessionhub retention run` as an operator runs it: a process on the configured SQLite
file, a progress line per batch, and a table of what went per chat app."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sessionhub.domain.clock import new_id
from sessionhub.domain.models import (
    AuditFilter,
    NewTurn,
    Session,
    SessionStatus,
    TitleSource,
    TurnRole,
)
from sessionhub.storage.sqlite.store import SqliteStore
from tests.support.servers import CLI, environment

RETENTION_RUN = [*CLI, "retention", "run"]
LONG_AGO = datetime(2020, 1, 1, tzinfo=UTC)


async def _seed(path: Path, app: str, count: int, expires_at: datetime | None) -> list[str]:
    store = SqliteStore(str(path))
    await store.open()
    ids = []
    try:
        for _ in range(count):
            session = Session(
                id=new_id(),
                entity_id="acme",
                chat_app_id=app,
                owner_id="alice",
                title="Old",
                title_source=TitleSource.MANUAL,
                created_at=LONG_AGO,
                updated_at=LONG_AGO,
                last_activity_at=LONG_AGO,
                participants=["alice"],
                status=SessionStatus.ACTIVE,
                expires_at=expires_at,
            )
            turn = NewTurn(
                new_id(),
                session.id,
                TurnRole.USER,
                "alice",
                "hi",
                LONG_AGO,
                author_entity_id="acme",
            )
            await store.create_session(session, turn, 10)
            ids.append(session.id)
    finally:
        await store.close()
    return ids


async def _state(path: Path, ids: list[str]) -> tuple[int, list[str]]:
    store = SqliteStore(str(path))
    await store.open()
    try:
        present = sum([await store.get_session(i) is not None for i in ids])
        events = await store.list_audit("acme", AuditFilter(action="session.expired"), None, 100)
        return present, [e.target for e in events]
    finally:
        await store.close()


def _run(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*RETENTION_RUN, *args],
        env=environment(folder),
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_retention_run_removes_expired_sessions_in_batches(tmp_path: Path) -> None:
    db = tmp_path / "sessionhub.db"
    support = await _seed(db, "support", 5, LONG_AGO + timedelta(days=30))
    knowledge = await _seed(db, "knowledge", 2, LONG_AGO + timedelta(days=30))
    live = await _seed(db, "support", 2, datetime.now(UTC) + timedelta(days=30))
    forever = await _seed(db, "support", 1, None)

    dry = _run(tmp_path, "--dry-run", "--batch", "2")
    assert dry.returncode == 0, dry.stderr
    assert "batch 1: would remove 2 sessions (2 so far)" in dry.stderr
    assert "batch 4: would remove 1 sessions (7 so far)" in dry.stderr
    lines = dry.stdout.splitlines()
    assert lines[0].split() == ["chat", "app", "would", "remove", "turns"]
    assert lines[1].split() == ["knowledge", "2", "2"]
    assert lines[2].split() == ["support", "5", "5"]
    assert lines[3].split() == ["total", "7", "7"]
    assert await _state(db, support + knowledge) == (7, [])

    only = _run(tmp_path, "--chat-app", "knowledge")
    assert only.returncode == 0, only.stderr
    assert only.stdout.splitlines()[1].split() == ["knowledge", "2", "2"]
    present, targets = await _state(db, support + knowledge)
    assert present == 5
    assert sorted(targets) == sorted(f"session:{i}" for i in knowledge)

    everything = _run(tmp_path, "--batch", "2")
    assert everything.returncode == 0, everything.stderr
    assert "batch 3: removed 1 sessions (5 so far)" in everything.stderr
    assert everything.stdout.splitlines()[1].split() == ["support", "5", "5"]
    present, targets = await _state(db, support + knowledge)
    assert (present, len(targets)) == (0, 7)
    assert await _state(db, live + forever) == (3, targets)

    again = _run(tmp_path)
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines()[1].split() == ["total", "0", "0"]
