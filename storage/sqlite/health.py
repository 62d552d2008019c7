"""What is wrong with the SQLite database file, in words an operator can act on: why it
cannot be opened, and whether the file the store opened is still there, on a filesystem
that takes writes and has room for them."""

from __future__ import annotations

import os
from dataclasses import dataclass

from . import driver

# Below this much free space on the database's filesystem the store says it is not ready.
# A write appends whole pages to the WAL and a checkpoint grows the database file: with
# less room than this, one long turn and its index entries (a few hundred KiB) may not
# fit. Checked with statvfs, which costs nothing.
FREE_SPACE_FLOOR = 1024 * 1024


@dataclass(frozen=True, slots=True)
class FileIdentity:
    """Which file a path named when the store opened it (a file put in its place, or its
    removal, leaves the store writing to the old one, which no restart will find)."""

    device: int
    inode: int

    @classmethod
    def of(cls, path: str) -> FileIdentity:
        found = os.stat(path)
        return cls(found.st_dev, found.st_ino)


def why_unopenable(path: str, exc: driver.DatabaseError) -> str:
    """Why SQLite could not open, or set up, the database at `path`, followed by SQLite's
    own words."""
    name = getattr(exc, "sqlite_errorname", "") or ""
    folder = os.path.dirname(os.path.abspath(path))
    base = os.path.basename(path)
    if name == "SQLITE_NOTADB":
        reason = "the file is not a SQLite database"
    elif name.startswith("SQLITE_CORRUPT"):
        reason = "the file is damaged (cut short or overwritten)"
    elif name.startswith("SQLITE_FULL"):
        reason = "the disk is full"
    elif not os.path.isdir(folder):
        reason = f"its folder {folder} does not exist"
    elif not os.access(folder, os.W_OK):
        # WAL mode needs its two companion files whether the database is new or not.
        reason = (
            f"its folder {folder} is read-only, and SQLite must create {base}-wal and "
            f"{base}-shm beside the database"
        )
    elif os.path.exists(path) and not os.access(path, os.R_OK | os.W_OK):
        reason = "this user may not read and write the file"
    else:
        reason = "SQLite could not use it"
    return f"{reason} (SQLite: {exc})"


def file_problem(path: str, opened: FileIdentity) -> str | None:
    """What keeps the database file the store opened from taking writes, as the
    filesystem sees it, or None."""
    try:
        if FileIdentity.of(path) != opened:
            return (
                f"the database file {path} was replaced after the server opened it: the "
                "server still writes to the old file"
            )
        space = os.statvfs(os.path.dirname(os.path.abspath(path)))
    except FileNotFoundError:
        return (
            f"the database file {path} was removed after the server opened it: what the "
            "server writes now is lost when it stops"
        )
    except OSError as exc:
        return f"the database file {path} cannot be looked at: {exc.strerror}"
    if space.f_flag & os.ST_RDONLY:
        return f"the filesystem holding {path} is read-only"
    # Blocks the filesystem keeps for root are root's to use.
    blocks = space.f_bfree if os.geteuid() == 0 else space.f_bavail
    free = blocks * space.f_frsize
    if free < FREE_SPACE_FLOOR:
        return f"the disk holding {path} is full ({free} bytes free)"
    return None
