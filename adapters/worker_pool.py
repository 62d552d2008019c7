"""Worker processes for CPU-heavy work that a request waits for (documents for exports),
each call with a time budget: past it, the call's worker is killed and replaced, so that
a render that would never end does not keep a core forever.

The domain's `Offload` port (domain/ports.py), over pebble's ProcessPool, which stops a
call at its timeout by ending its process (SIGTERM, then SIGKILL after 3 s) and starts
another in its place; the standard library's pool can only give up waiting and leaves the
work running. Started on first use ('spawn': a fork would copy the server's threads,
locks and open database connections into the workers) and stopped by `aclose`.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import threading
from collections.abc import Callable
from concurrent.futures.process import BrokenProcessPool
from typing import TypeVar, TypeVarTuple

from pebble import ProcessExpired, ProcessPool

from ..domain.errors import WorkStopped
from .offload import prepare_worker

T = TypeVar("T")
Ts = TypeVarTuple("Ts")


class WorkerPool:
    def __init__(self, workers: int, time_budget_seconds: float) -> None:
        self._workers = workers
        self._time_budget = time_budget_seconds
        self._pool: ProcessPool | None = None

    async def run(self, fn: Callable[[*Ts], T], *args: *Ts) -> T:
        """`fn(*args)` in a worker; WorkStopped when it runs past the time budget or its
        worker dies. Cancelling the caller stops the call too."""
        future = self._running_pool().schedule(fn, args, timeout=self._time_budget)
        try:
            return await asyncio.wrap_future(future)
        except TimeoutError as exc:
            raise WorkStopped(f"it took longer than {self._time_budget:g} seconds.") from exc
        except (ProcessExpired, BrokenProcessPool) as exc:
            raise WorkStopped(
                "its worker process ended before it finished (out of memory?)."
            ) from exc

    async def aclose(self) -> None:
        """Stop the workers, and whatever they are doing."""
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.stop()
            await asyncio.to_thread(pool.join)

    def _running_pool(self) -> ProcessPool:
        if self._pool is not None and not self._pool.active:
            # pebble gives up on a pool whose every worker died while idle.
            broken, self._pool = self._pool, None
            broken.stop()
            threading.Thread(target=broken.join, name="worker-pool-join", daemon=True).start()
        if self._pool is None:
            self._pool = ProcessPool(
                max_workers=self._workers,
                # Niced like the title worker, but not in the idle class: a person is
                # waiting for this work, and on a busy machine the idle class would hold it
                # back until its time budget ran out.
                initializer=prepare_worker,
                initargs=(False,),
                context=multiprocessing.get_context("spawn"),
            )
        return self._pool
