"""The SQLite store on a file that is not what it should be. Opening it fails with an
error that names the file and what is wrong, and leaves no thread behind (aiosqlite's
threads are not daemons: one left running keeps the process from exiting). A store whose
file is replaced, removed or damaged while it is open says so when asked whether it is
ready, while a healthy one keeps working through the checks."""

from __future__ import annotations

import asyncio
import os
import shutil
import threading
import time
from pathlib import Path

import pytest

from sessionhub.domain.errors import StoreUnavailable
from sessionhub.storage.sqlite import health
from sessionhub.storage.sqlite.store import SqliteStore

from .test_store_contract import make_session, make_turn


async def _a_real_database(path: Path, turns: int = 50) -> None:
    store = SqliteStore(str(path))
    await store.open()
    try:
        session = make_session()
        await store.create_session(session, None, 10_000)
        for i in range(turns):
            await store.append_turn(make_turn(session.id, content=f"turn {i} " * 200), 10_000)
    finally:
        await store.close()


async def _open_fails(path: Path) -> StoreUnavailable:
    # Counted, not looked for by name (a name is aiosqlite's to change). The loop's
    # executor thread, which the clean-up waits in, is there before counting.
    await asyncio.to_thread(int)
    before = threading.active_count()
    store = SqliteStore(str(path))
    with pytest.raises(StoreUnavailable) as raised:
        await store.open()
    deadline = time.monotonic() + 10  # a stopped thread ends just after saying so
    while threading.active_count() > before and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert threading.active_count() <= before, (
        f"a thread outlived the failure: {threading.enumerate()}"
    )
    message = raised.value.message
    assert str(path) in message, message
    assert raised.value.code == "SERVICE_UNAVAILABLE"
    return raised.value


async def test_a_file_of_random_bytes(tmp_path: Path) -> None:
    path = tmp_path / "sessionhub.db"
    path.write_bytes(os.urandom(64 * 1024))
    error = await _open_fails(path)
    assert "is not a SQLite database" in error.message


async def test_a_database_cut_short(tmp_path: Path) -> None:
    path = tmp_path / "sessionhub.db"
    await _a_real_database(path)
    size = path.stat().st_size
    assert size > 100_000
    with path.open("r+b") as file:
        file.truncate(size // 2)
    error = await _open_fails(path)
    assert "damaged" in error.message


async def test_a_folder_that_does_not_exist(tmp_path: Path) -> None:
    error = await _open_fails(tmp_path / "missing" / "sessionhub.db")
    assert f"its folder {tmp_path / 'missing'} does not exist" in error.message


async def test_a_healthy_file_store_is_ready_and_the_checks_change_no_data(
    tmp_path: Path,
) -> None:
    path = tmp_path / "sessionhub.db"
    store = SqliteStore(str(path))
    await store.open()
    try:
        session = make_session()
        await store.create_session(session, None, 100)
        await store.append_turn(make_turn(session.id, content="kept as it is"), 100)
        for _ in range(3):
            await store.check_ready()
        turns = await store.list_turns(session.id, limit=10)
        assert [t.content for t in turns] == ["kept as it is"]
    finally:
        await store.close()


async def test_a_file_replaced_while_open_is_not_ready(tmp_path: Path) -> None:
    path = tmp_path / "sessionhub.db"
    store = SqliteStore(str(path))
    await store.open()
    try:
        await store.check_ready()
        # A restore done the wrong way: another database moved over the open one.
        other = tmp_path / "restored.db"
        shutil.copyfile(path, other)
        other.replace(path)
        with pytest.raises(StoreUnavailable) as raised:
            await store.check_ready()
        assert f"the database file {path} was replaced" in raised.value.message
    finally:
        await store.close()


async def test_a_file_removed_while_open_is_not_ready(tmp_path: Path) -> None:
    path = tmp_path / "sessionhub.db"
    store = SqliteStore(str(path))
    await store.open()
    try:
        path.unlink()
        with pytest.raises(StoreUnavailable) as raised:
            await store.check_ready()
        assert f"the database file {path} was removed" in raised.value.message
    finally:
        await store.close()


async def test_a_file_overwritten_while_open_is_not_ready(tmp_path: Path) -> None:
    path = tmp_path / "sessionhub.db"
    await _a_real_database(path, turns=5)
    store = SqliteStore(str(path))
    await store.open()
    try:
        await store.check_ready()
        size = path.stat().st_size
        with path.open("r+b") as file:  # the same file, its bytes garbage
            file.write(os.urandom(size))
        with pytest.raises(StoreUnavailable) as raised:
            await store.check_ready()
        assert f"reading {path} fails: database disk image is malformed" in raised.value.message
    finally:
        await store.close()


async def test_a_nearly_full_disk_is_not_ready(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The floor is compared with what statvfs reports; here the floor is raised past
    the free space of the test's own disk rather than the disk filled (the end-to-end
    test fills a real one)."""
    path = tmp_path / "sessionhub.db"
    store = SqliteStore(str(path))
    await store.open()
    try:
        space = os.statvfs(tmp_path)
        monkeypatch.setattr(health, "FREE_SPACE_FLOOR", (space.f_blocks + 1) * space.f_frsize)
        with pytest.raises(StoreUnavailable) as raised:
            await store.check_ready()
        assert f"the disk holding {path} is full" in raised.value.message
    finally:
        await store.close()
