"""Real filesystems a test mounts for itself, to hold a database that runs out of space
or stops taking writes: a small tmpfs, and an ext4 image on a loop device, whose kernel
turns it read-only on an error as it does a failing disk's. Mounting needs root (the
tests run as root here and in CI); where the kernel or the tools refuse, the test is
skipped with their reason."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


def _run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=30)


def _mount_or_skip(*command: str) -> None:
    if os.geteuid() != 0:
        pytest.skip("mounting a filesystem needs root")
    if shutil.which(command[0]) is None:
        pytest.skip(f"{command[0]} is not installed")
    done = _run(*command)
    if done.returncode != 0:
        pytest.skip(f"cannot mount here: {' '.join(command)}: {done.stderr.strip()}")


def _unmount(path: Path) -> None:
    # Lazy: a server the test started may still be letting go of its files.
    _run("umount", "--lazy", str(path))


@contextlib.contextmanager
def tmpfs(path: Path, size: str) -> Iterator[Path]:
    path.mkdir(parents=True, exist_ok=True)
    _mount_or_skip("mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(path))
    try:
        yield path
    finally:
        _unmount(path)


def remount_read_only(path: Path) -> None:
    done = _run("mount", "-o", "remount,ro", str(path))
    assert done.returncode == 0, done.stderr


@contextlib.contextmanager
def ext4(path: Path, image: Path, size_mb: int) -> Iterator[Path]:
    """An ext4 filesystem in a file, mounted with errors=remount-ro."""
    if shutil.which("mkfs.ext4") is None:
        pytest.skip("mkfs.ext4 is not installed")
    with image.open("wb") as file:
        file.truncate(size_mb * 1024 * 1024)
    made = _run("mkfs.ext4", "-q", "-F", str(image))
    if made.returncode != 0:
        pytest.skip(f"mkfs.ext4 failed: {made.stderr.strip()}")
    path.mkdir(parents=True, exist_ok=True)
    _mount_or_skip("mount", "-o", "loop,errors=remount-ro", str(image), str(path))
    try:
        yield path
    finally:
        _unmount(path)


def fail_ext4(path: Path) -> None:
    """What a disk error does: ext4 records an error and (errors=remount-ro) turns the
    filesystem read-only under the files open on it. Remounting read-only by hand is
    refused while a file is open for writing; this is the way it happens to a server."""
    device = _run("findmnt", "--noheadings", "--output", "SOURCE", str(path)).stdout.strip()
    trigger = Path("/sys/fs/ext4") / Path(os.path.realpath(device)).name / "trigger_fs_error"
    if not trigger.exists():
        pytest.skip(f"this kernel has no {trigger}")
    trigger.write_text("sessionhub test\n")
    options = _run("findmnt", "--noheadings", "--output", "OPTIONS", str(path)).stdout
    # Recent kernels mark it emergency_ro and leave the mount's own rw flag as it was.
    assert options.startswith("ro") or "emergency_ro" in options, options
