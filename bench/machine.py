"""The machine a benchmark runs on: the facts its report keeps and its output starts with,
and the CPU time a process has taken on it (from /proc)."""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

from sessionhub.storage.sqlite.driver import sqlite as sqlite3


def machine_facts() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "Hardware", "Processor") and value.strip():
                cpu = value.strip()
                break
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 0
    return {
        "cpu_model": cpu,
        "nproc": usable,
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "sqlite": sqlite3.sqlite_version,
        "platform": platform.platform(),
    }


def print_machine(facts: dict[str, Any], nproc_note: str = "") -> None:
    """The facts as four lines and a blank one; `nproc_note` follows the core count."""
    print(f"CPU:    {facts['cpu_model']}")
    print(f"nproc:  {facts['nproc']}{nproc_note}")
    print(f"Python: {facts['python']} ({facts['python_implementation']}), SQLite {facts['sqlite']}")
    print(f"OS:     {facts['platform']}\n", flush=True)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, all its threads, from /proc (0 where there is
    no such process, or no /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
