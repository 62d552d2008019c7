"""A MongoDB-protocol server for the tests: mongoeco (a pure-Python server of the MongoDB
wire protocol, in memory), which the real Motor and PyMongo reach over TCP.

mongoeco needs CPython 3.13, which the project's own environment is not: the test run
finds a Python 3.13 (`SESSIONHUB_MONGOECO_PYTHON`, or `python3.13` on the PATH, through
pyenv when it manages one), makes `.venv-mongoeco` at the repository's root from the
pinned mongoeco-requirements.txt when it is missing or stale, and starts one server per
test process on a free port of 127.0.0.1. When no Python 3.13 can be found, `prepare`
says why, and the MongoDB tests are skipped with that reason.

It is not MongoDB: what it verifies is the backend through the real driver, the wire
protocol, cursors and the server's answers as mongoeco gives them.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pymongo

from .servers import free_port, terminate

ROOT = Path(__file__).resolve().parents[2]
VENV = ROOT / ".venv-mongoeco"
REQUIREMENTS = Path(__file__).with_name("mongoeco-requirements.txt")
SERVER_SCRIPT = Path(__file__).with_name("mongoeco_server.py")
PYTHON_ENV = "SESSIONHUB_MONGOECO_PYTHON"
START_TIMEOUT_S = 30.0
INSTALL_TIMEOUT_S = 600.0


class MongoEcoUnavailable(Exception):
    """No mongoeco server can run here; the message says why."""


def _python313() -> tuple[str, dict[str, str]]:
    """A command for CPython 3.13 and the environment to run it in."""
    env = dict(os.environ)
    chosen = os.environ.get(PYTHON_ENV)
    candidates = [chosen] if chosen else ["python3.13"]
    for command in candidates:
        found = shutil.which(command)
        if found is None:
            continue
        for attempt in _pyenv_variants(env):
            try:
                out = subprocess.run(
                    [found, "-c", "import sys; print(sys.version_info[:2] == (3, 13))"],
                    env=attempt,
                    capture_output=True,
                    text=True,
                    timeout=30,
                )
            except (OSError, subprocess.TimeoutExpired):
                continue
            if out.returncode == 0 and out.stdout.strip() == "True":
                return found, attempt
    where = f"{PYTHON_ENV}={chosen}" if chosen else "python3.13 on the PATH (or through pyenv)"
    raise MongoEcoUnavailable(f"no CPython 3.13 found for mongoeco: tried {where}")


def _pyenv_variants(env: dict[str, str]) -> list[dict[str, str]]:
    """The environment as it is, then, where pyenv manages Pythons, with PYENV_VERSION
    naming each 3.13 it has (a pyenv shim runs only the versions selected)."""
    variants = [env]
    pyenv = shutil.which("pyenv")
    if pyenv is None:
        return variants
    listed = subprocess.run(
        [pyenv, "versions", "--bare"], capture_output=True, text=True, timeout=30
    )
    for version in listed.stdout.split():
        if version.startswith("3.13"):
            variants.append({**env, "PYENV_VERSION": version})
    return variants


def _stamp() -> str:
    return hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()


def prepare() -> Path:
    """The Python of .venv-mongoeco, made (or remade, when the pins changed) if needed.
    Safe to call from several test processes at once: one makes it, the others wait."""
    python = VENV / "bin" / "python"
    stamp_file = VENV / ".requirements-sha256"
    VENV.parent.mkdir(parents=True, exist_ok=True)
    with open(ROOT / ".venv-mongoeco.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if python.exists() and stamp_file.exists() and stamp_file.read_text() == _stamp():
            return python
        interpreter, env = _python313()
        shutil.rmtree(VENV, ignore_errors=True)
        steps = [
            [interpreter, "-m", "venv", str(VENV)],
            [str(python), "-m", "pip", "install", "--quiet", "-r", str(REQUIREMENTS)],
        ]
        for step in steps:
            done = subprocess.run(
                step, env=env, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S
            )
            if done.returncode != 0:
                raise MongoEcoUnavailable(
                    f"making {VENV.name} failed: {' '.join(step[:4])}: {done.stderr[-2000:]}"
                )
        stamp_file.write_text(_stamp())
        return python


def version(python: Path) -> str:
    """The mongoeco version installed for `python`."""
    return subprocess.run(
        [str(python), "-c", "import importlib.metadata as m; print(m.version('mongoeco'))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


@dataclass
class MongoEcoServer:
    process: subprocess.Popen[bytes]
    port: int

    def url(self, database: str) -> str:
        return f"mongodb://127.0.0.1:{self.port}/{database}?directConnection=true"

    @contextmanager
    def database(self, prefix: str = "sessionhub") -> Iterator[str]:
        """The URL of a database of its own, dropped on leaving."""
        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        try:
            yield self.url(name)
        finally:
            with pymongo.MongoClient(self.url(name)) as client:
                client.drop_database(name)

    def stop(self) -> None:
        terminate(self.process)


def start(
    python: Path,
    log_path: Path,
    load_dir: Path | None = None,
    timeout_s: float = START_TIMEOUT_S,
) -> MongoEcoServer:
    """A server on a free port, its output in `log_path`; returns once it accepts. With
    `load_dir`, it loads that data set first (see mongoeco_server.py)."""
    port = free_port()
    load = [] if load_dir is None else [str(load_dir)]
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [str(python), str(SERVER_SCRIPT), str(port), *load],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={k: v for k, v in os.environ.items() if not k.startswith("PYTHON")},
        )
    deadline = time.monotonic() + timeout_s
    while f"ready {port}" not in log_path.read_text():
        if process.poll() is not None or time.monotonic() > deadline:
            terminate(process)
            raise MongoEcoUnavailable(
                f"mongoeco did not start on port {port}: {log_path.read_text()[-2000:]}"
            )
        time.sleep(0.05)
    return MongoEcoServer(process, port)


if __name__ == "__main__":
    # `python -m tests.support.mongo_wire`: make the environment, say where it is.
    try:
        print(prepare())
    except MongoEcoUnavailable as exc:
        sys.exit(str(exc))
