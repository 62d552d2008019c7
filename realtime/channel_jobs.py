"""Each channel's jobs, run one at a time in arrival order: what the broker reports for a
channel (a notification, or that the channel was subscribed again) reaches the hub in
order, by a worker task that exists only while the channel has work, so that the broker
itself never waits for the hub."""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog

from .notifications import Notification

log = structlog.get_logger("sessionhub.realtime")


@dataclass(frozen=True, slots=True)
class CatchUp:
    """The broker (re)subscribed the channel. Turns committed before that may not have been
    notified; after an outage (`resumed`) anything may have been missed: deletions,
    renames, revocations."""

    resumed: bool


FIRST = CatchUp(False)
RESUMED = CatchUp(True)

Job = Notification | CatchUp


class ChannelJobs:
    def __init__(self, handle: Callable[[str, Job], Awaitable[None]]) -> None:
        self._handle = handle
        self._jobs: dict[str, deque[Job]] = {}
        self._workers: dict[str, asyncio.Task[None]] = {}
        self._closing = False

    def add(self, channel: str, job: Job) -> None:
        if self._closing:
            return
        self._jobs.setdefault(channel, deque()).append(job)
        if channel not in self._workers:
            self._start(channel)

    def drop(self, channel: str) -> None:
        """Nobody follows the channel any more: its waiting jobs are moot."""
        self._jobs.pop(channel, None)

    def stats(self) -> dict[str, int | float]:
        return {
            "channel_workers": len(self._workers),
            "pending_notifications": sum(len(jobs) for jobs in self._jobs.values()),
        }

    async def close(self) -> None:
        self._closing = True
        workers = list(self._workers.values())
        for worker in workers:
            worker.cancel()
        for worker in workers:
            with contextlib.suppress(asyncio.CancelledError):
                await worker

    def _start(self, channel: str) -> None:
        self._workers[channel] = asyncio.get_running_loop().create_task(
            self._work(channel), name=f"realtime:{channel}"
        )

    async def _work(self, channel: str) -> None:
        """Handles the channel's jobs one at a time, in order; exits when idle."""
        try:
            while True:
                jobs = self._jobs.get(channel)
                if not jobs:
                    return
                job = jobs.popleft()
                try:
                    await self._handle(channel, job)
                except Exception:
                    log.exception("realtime.notification_failed", channel=channel)
        finally:
            self._workers.pop(channel, None)
            if self._jobs.get(channel) and not self._closing:
                # A job came in while this worker was finishing.
                self._start(channel)
            else:
                self._jobs.pop(channel, None)
