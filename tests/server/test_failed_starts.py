"""A start that cannot succeed ends the process at once, non-zero, with one line that
names the database and what is wrong: a real `sessionhub serve` on a file of random
bytes, on a database cut short, in a read-only folder (a real read-only filesystem: the
tests run as root, for whom permission bits stop nothing), or in a folder that does not
exist, or on a file it may not write. Before, a connection whose first statement failed
kept a thread alive, and the process printed "Application startup failed" and then hung
for good; a file it may not write was opened read-only and every write failed later."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from sessionhub.storage.sqlite.store import SqliteStore
from tests.server.filesystems import remount_read_only, tmpfs
from tests.storage.test_store_contract import make_session, make_turn
from tests.support.servers import CLI, environment, free_port

# Generous: the attack is a hang; a failed start takes about a second.
EXIT_TIMEOUT_S = 30.0


def _serve(folder: Path, database: Path | str) -> str:
    """Run `sessionhub serve` on `database` (a SQLite file, or a URL) until it gives up;
    its output."""
    url = database if isinstance(database, str) else f"sqlite:///{database}"
    env = environment(folder, SESSIONHUB_DATABASE_URL=url)
    try:
        done = subprocess.run(
            [*CLI, "serve", "--host", "127.0.0.1", "--port", str(free_port())],
            env=env,
            cwd=folder,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=EXIT_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"sessionhub serve was still running after {EXIT_TIMEOUT_S}s:\n{exc.stderr}")
    output = done.stdout + done.stderr
    assert done.returncode != 0, output
    assert "Traceback" not in output, output
    return output


def _the_error(output: str, database: Path) -> str:
    lines = [line for line in output.splitlines() if f"database {database} cannot" in line]
    assert len(lines) == 1, output
    return lines[0]


def _a_real_database(path: Path) -> None:
    async def fill() -> None:
        store = SqliteStore(str(path))
        await store.open()
        try:
            session = make_session()
            await store.create_session(session, None, 1000)
            for i in range(50):
                await store.append_turn(make_turn(session.id, content=f"turn {i} " * 200), 1000)
        finally:
            await store.close()

    asyncio.run(fill())


def test_a_file_of_random_bytes(tmp_path: Path) -> None:
    database = tmp_path / "sessionhub.db"
    database.write_bytes(os.urandom(64 * 1024))
    error = _the_error(_serve(tmp_path, database), database)
    assert "the file is not a SQLite database" in error


def test_a_database_cut_short(tmp_path: Path) -> None:
    database = tmp_path / "sessionhub.db"
    _a_real_database(database)
    with database.open("r+b") as file:
        file.truncate(database.stat().st_size // 2)
    error = _the_error(_serve(tmp_path, database), database)
    assert "the file is damaged" in error


def test_a_database_in_a_read_only_folder(tmp_path: Path) -> None:
    original = tmp_path / "original.db"
    _a_real_database(original)
    with tmpfs(tmp_path / "mount", "16m") as folder:
        database = folder / "sessionhub.db"
        database.write_bytes(original.read_bytes())
        remount_read_only(folder)
        error = _the_error(_serve(tmp_path, database), database)
    assert f"its folder {folder} is read-only" in error


def test_a_new_database_in_a_read_only_folder(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "mount", "1m") as folder:
        remount_read_only(folder)
        database = folder / "sessionhub.db"
        error = _the_error(_serve(tmp_path, database), database)
    assert f"its folder {folder} is read-only" in error


def test_a_database_file_that_may_not_be_written(tmp_path: Path) -> None:
    """SQLite opens such a file read-only without a word; the server then started and
    failed every write. Made immutable (chattr +i), which stops root too."""
    database = tmp_path / "sessionhub.db"
    _a_real_database(database)
    if shutil.which("chattr") is None:
        pytest.skip("chattr is not installed")
    made = subprocess.run(["chattr", "+i", str(database)], capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"cannot make the file immutable here: {made.stderr.strip()}")
    try:
        error = _the_error(_serve(tmp_path, database), database)
    finally:
        subprocess.run(["chattr", "-i", str(database)], check=True)
    assert "this user may not read and write the file" in error


def test_a_folder_that_does_not_exist(tmp_path: Path) -> None:
    database = tmp_path / "missing" / "sessionhub.db"
    error = _the_error(_serve(tmp_path, database), database)
    assert f"its folder {tmp_path / 'missing'} does not exist" in error


def test_a_mongodb_that_does_not_answer(tmp_path: Path) -> None:
    # Port 1 on loopback: nothing listens there.
    url = "mongodb://127.0.0.1:1/sessionhub?serverSelectionTimeoutMS=500&connectTimeoutMS=500"
    output = _serve(tmp_path, url)
    errors = [line for line in output.splitlines() if "MongoDB could not be reached" in line]
    assert len(errors) == 1 and "127.0.0.1:1" in errors[0], output
