"""Work run away from the event loop: in a worker process for the server, in a thread
for whoever does not mind sharing the GIL."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import time
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import pytest

from sessionhub.adapters.offload import WORKER_NICENESS, ProcessOffload, ThreadOffload
from sessionhub.domain.models import TurnRole
from sessionhub.domain.titles import TurnText, topic_similarity

RECENT = [TurnText(TurnRole.USER, "How long should the sourdough starter rest before baking?")]


async def test_a_process_offload_computes_in_its_worker_started_on_first_use() -> None:
    offload = ProcessOffload()
    assert multiprocessing.active_children() == []
    try:
        assert await offload.run(os.getpid) != os.getpid()
        # Background work: the worker yields the processor to the server.
        assert await offload.run(os.nice, 0) == min(19, os.nice(0) + WORKER_NICENESS)
        if hasattr(os, "SCHED_IDLE"):
            assert await offload.run(os.sched_getscheduler, 0) == os.SCHED_IDLE
        assert await offload.run(topic_similarity, "Sourdough starter", RECENT) == topic_similarity(
            "Sourdough starter", RECENT
        )
        assert len(multiprocessing.active_children()) == 1
    finally:
        await offload.aclose()
    assert multiprocessing.active_children() == []


async def test_a_dead_worker_fails_its_call_and_the_next_call_gets_a_new_one() -> None:
    offload = ProcessOffload()
    try:
        worker = await offload.run(os.getpid)
        os.kill(worker, signal.SIGKILL)
        with pytest.raises(BrokenProcessPool):
            await offload.run(os.getpid)
        replacement = await offload.run(os.getpid)
        assert replacement not in (worker, os.getpid())
    finally:
        await offload.aclose()
    assert multiprocessing.active_children() == []


def test_the_worker_ends_when_its_parent_is_killed() -> None:
    script = (
        "import asyncio, os, signal\n"
        "from sessionhub.adapters.offload import ProcessOffload\n"
        "async def main():\n"
        "    print(await ProcessOffload().run(os.getpid), flush=True)\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
        "asyncio.run(main())\n"
    )
    parent = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert parent.returncode == -signal.SIGKILL
    worker = int(parent.stdout)
    # Not a timing check: a worker left behind would never end.
    deadline = time.monotonic() + 30
    while running(worker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not running(worker)


def running(pid: int) -> bool:
    """Whether the process exists and has not ended (an ended one may linger as a zombie
    until its new parent reaps it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


async def test_closing_an_unused_process_offload_starts_nothing() -> None:
    await ProcessOffload().aclose()
    assert multiprocessing.active_children() == []


async def test_a_thread_offload_computes_in_this_process() -> None:
    offload = ThreadOffload()
    assert await offload.run(os.getpid) == os.getpid()
    await offload.aclose()
