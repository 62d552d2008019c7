"""The `Offload` port (domain/ports.py) in a thread or a worker process: where CPU-heavy
background work runs, so that it does not stall the event loop.

A thread is not enough for that: Python code in a thread holds the GIL for slices of
`sys.getswitchinterval()` (5 ms) at a time, and every slice is a request the event loop
answers late. The server therefore runs such work in a worker process (`ProcessOffload`);
tests and tools that do not mind use a thread (`ThreadOffload`), which starts nothing.

What is offloaded must be a module-level function (or a method of a picklable object) that
takes and returns plain, picklable data: it crosses to the worker process and back.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import multiprocessing.connection
import os
import signal
import threading
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import TypeVar, TypeVarTuple

T = TypeVar("T")
Ts = TypeVarTuple("Ts")

# How much lower the worker process's priority is than the server's (added to its
# niceness, as nice(1) does).
WORKER_NICENESS = 10


class ThreadOffload:
    """In a thread of the default executor: off the event loop, but not off its GIL."""

    async def run(self, fn: Callable[[*Ts], T], *args: *Ts) -> T:
        return await asyncio.to_thread(fn, *args)

    async def aclose(self) -> None:
        pass


class ProcessOffload:
    """In one worker process, of lower priority than the server's, started on first use (a
    server whose chat apps make no titles never starts it) and stopped by `aclose`; a
    worker that died is replaced on the next call. 'spawn': a fork would copy the server's
    threads, locks and open database connections into the worker."""

    def __init__(self) -> None:
        self._pool: ProcessPoolExecutor | None = None

    async def run(self, fn: Callable[[*Ts], T], *args: *Ts) -> T:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=1,
                mp_context=multiprocessing.get_context("spawn"),
                # Background work: where the scheduler has an idle class (Linux), the
                # worker runs only on a core nothing else wants; a nice value alone still
                # lets it hold a core for a few milliseconds while a request waits.
                initializer=prepare_worker,
                initargs=(True,),
            )
        pool = self._pool
        try:
            return await asyncio.get_running_loop().run_in_executor(pool, fn, *args)
        except BrokenProcessPool:
            if self._pool is pool:
                self._pool = None
            pool.shutdown(wait=False)
            raise

    async def aclose(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await asyncio.to_thread(pool.shutdown, wait=True, cancel_futures=True)


def prepare_worker(idle: bool) -> None:
    """Set up a worker process (every pool's initializer: the title worker's here, the
    export workers' in worker_pool.py): it ends with the server, at the server's
    word, and on a busy machine requests come first. With `idle`, it runs in the
    scheduler's idle class where there is one (Linux)."""
    # Ctrl-C reaches the whole process group; the server stops the worker in its own time
    # (aclose), and a worker dying of KeyboardInterrupt first would only print a traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.nice(WORKER_NICENESS)
    if idle and hasattr(os, "SCHED_IDLE"):
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    threading.Thread(target=exit_with_the_parent, name="exit-with-parent", daemon=True).start()


def exit_with_the_parent() -> None:
    """Run in a thread of a worker process: ends the worker as soon as its parent ends."""
    # A server killed outright (SIGKILL, out of memory) never stops its worker, which
    # would otherwise wait for work forever.
    parent = multiprocessing.parent_process()
    if parent is not None:
        multiprocessing.connection.wait([parent.sentinel])
        os._exit(1)
