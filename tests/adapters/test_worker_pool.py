"""The export workers: real processes, started on first use, each call within its time
budget; a call past it, cancelled, or whose worker dies, ends with its worker, and the
next call gets a new one."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sessionhub.adapters.offload import WORKER_NICENESS
from sessionhub.adapters.worker_pool import WorkerPool
from sessionhub.domain.errors import WorkStopped

# Far beyond any budget below: a call that sleeps this long is one that never ends.
FOREVER_S = 600.0
# Not a timing check: how long a stopped worker may take to be gone (pebble sends SIGTERM,
# then SIGKILL after 3 s).
GONE_WITHIN_S = 30.0


def running(pid: int) -> bool:
    """Whether the process exists and has not ended (an ended one may linger as a zombie
    until its parent reaps it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def wait_gone(pid: int) -> bool:
    deadline = time.monotonic() + GONE_WITHIN_S
    while running(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not running(pid)


def children() -> set[int]:
    return {p.pid for p in multiprocessing.active_children() if p.pid is not None}


async def test_calls_run_in_worker_processes_started_on_first_use() -> None:
    before = children()
    pool = WorkerPool(workers=2, time_budget_seconds=60)
    assert children() == before
    try:
        worker = await pool.run(os.getpid)
        assert worker != os.getpid() and worker in children()
        # Below the server's priority, so that requests come first.
        assert await pool.run(os.nice, 0) == min(19, os.nice(0) + WORKER_NICENESS)
        if hasattr(os, "SCHED_IDLE"):
            # Not in the idle class, unlike the title worker: a person waits for this work.
            assert await pool.run(os.sched_getscheduler, 0) != os.SCHED_IDLE
        assert len(children() - before) == 2
    finally:
        await pool.aclose()
    assert children() == before


async def test_a_call_past_its_time_budget_has_its_worker_killed_and_replaced() -> None:
    pool = WorkerPool(workers=1, time_budget_seconds=0.5)
    try:
        first = await pool.run(os.getpid)
        with pytest.raises(WorkStopped, match=r"longer than 0\.5 seconds"):
            await pool.run(time.sleep, FOREVER_S)
        assert wait_gone(first)
        second = await pool.run(os.getpid)
        assert second != first and running(second)
    finally:
        await pool.aclose()


async def test_a_cancelled_call_stops_its_worker() -> None:
    pool = WorkerPool(workers=1, time_budget_seconds=FOREVER_S)
    try:
        worker = await pool.run(os.getpid)
        call = asyncio.create_task(pool.run(time.sleep, FOREVER_S))
        await asyncio.sleep(0.5)
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        assert wait_gone(worker)
        assert await pool.run(os.getpid) != worker
    finally:
        await pool.aclose()


async def test_a_worker_that_dies_fails_its_call_and_the_next_call_gets_a_new_one() -> None:
    pool = WorkerPool(workers=1, time_budget_seconds=FOREVER_S)
    try:
        worker = await pool.run(os.getpid)
        call = asyncio.create_task(pool.run(time.sleep, FOREVER_S))
        await asyncio.sleep(0.5)
        os.kill(worker, signal.SIGKILL)
        with pytest.raises(WorkStopped, match="worker process ended"):
            await call
        assert await pool.run(os.getpid) not in (worker, os.getpid())
    finally:
        await pool.aclose()


async def test_a_pool_whose_idle_workers_all_died_starts_new_ones() -> None:
    pool = WorkerPool(workers=1, time_budget_seconds=FOREVER_S)
    try:
        worker = await pool.run(os.getpid)
        os.kill(worker, signal.SIGKILL)
        assert wait_gone(worker)
        await asyncio.sleep(0.5)  # pebble notices the death on its next round (0.1 s)
        assert await pool.run(os.getpid) not in (worker, os.getpid())
    finally:
        await pool.aclose()


async def test_closing_stops_a_busy_worker_and_an_unused_pool_starts_nothing() -> None:
    before = children()
    await WorkerPool(workers=2, time_budget_seconds=60).aclose()
    assert children() == before
    pool = WorkerPool(workers=1, time_budget_seconds=FOREVER_S)
    worker = await pool.run(os.getpid)
    call = asyncio.create_task(pool.run(time.sleep, FOREVER_S))
    await asyncio.sleep(0.5)
    await pool.aclose()
    assert wait_gone(worker)
    call.cancel()
    assert children() == before


def test_a_busy_worker_ends_when_its_parent_is_killed() -> None:
    script = (
        "import asyncio, os, signal\n"
        "from sessionhub.adapters.worker_pool import WorkerPool\n"
        "import time\n"
        "async def main():\n"
        "    pool = WorkerPool(workers=1, time_budget_seconds=600)\n"
        "    print(await pool.run(os.getpid), flush=True)\n"
        "    asyncio.get_running_loop().call_later(0.5, os.kill, os.getpid(), signal.SIGKILL)\n"
        "    await pool.run(time.sleep, 600)\n"
        "asyncio.run(main())\n"
    )
    parent = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert parent.returncode == -signal.SIGKILL, parent.stderr
    assert wait_gone(int(parent.stdout))


@pytest.mark.parametrize(
    "make",
    [
        "sessionhub.adapters.worker_pool.WorkerPool(workers=1, time_budget_seconds=600)",
        "sessionhub.adapters.offload.ProcessOffload()",
    ],
    ids=["export-workers", "title-worker"],
)
def test_ctrl_c_leaves_the_workers_to_the_server(make: str) -> None:
    """Ctrl-C sends SIGINT to the whole process group: the server stops its workers in its
    own time, and a worker that died of it first would only print a traceback."""
    module = make.split("(")[0].rsplit(".", 1)[0]
    script = (
        "import asyncio, os, signal, time\n"
        f"import {module}\n"
        "async def main():\n"
        f"    pool = {make}\n"
        "    print(await pool.run(os.getpid), flush=True)\n"
        "    interrupted = asyncio.Event()\n"
        "    asyncio.get_running_loop().add_signal_handler(signal.SIGINT, interrupted.set)\n"
        "    busy = asyncio.create_task(pool.run(time.sleep, 2))\n"
        "    await asyncio.sleep(0.5)\n"
        "    print('ready', flush=True)\n"
        "    await interrupted.wait()\n"
        "    await busy  # the call under way when Ctrl-C came ends as it would have\n"
        "    print(await pool.run(os.getpid), flush=True)\n"
        "    await pool.aclose()\n"
        "asyncio.run(main())\n"
    )
    server = subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert server.stdout is not None
        worker = int(server.stdout.readline())
        assert server.stdout.readline() == "ready\n"
        os.killpg(server.pid, signal.SIGINT)
        out, err = server.communicate(timeout=60)
    finally:
        if server.poll() is None:
            server.kill()
            server.communicate()
    assert server.returncode == 0, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert int(out) == worker  # the same worker, still at work
