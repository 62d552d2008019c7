"""`sessionhub serve` ends in bounded time after SIGTERM (or Ctrl-C), whatever it is doing.

On the signal uvicorn stops accepting connections and waits for the requests in flight,
by default without limit: one client that sent its headers and part of a body, and then
nothing, kept the process alive for good. `timeout` bounds that wait; requests still
running then are cancelled, and the lifespan closes the store as usual.

Cancelling needs the event loop. While the loop runs CPU-bound work that does not yield,
neither uvicorn's wait nor its timeout can act, and the shutdown waits for that work to
end. So the first signal also starts a watchdog thread, which ends the process outright
if it is still alive `hard_deadline` seconds later. What was acknowledged stays: a
commit in SQLite's WAL, or on MongoDB, survives the process ending at any point.
"""

from __future__ import annotations

import os
import sys
import threading
from types import FrameType

import uvicorn

EXIT_FORCED = 1


class BoundedServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, hard_deadline: float) -> None:
        super().__init__(config)
        self._hard_deadline = hard_deadline
        self._watchdog: threading.Timer | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self._watchdog is None:
            self._watchdog = threading.Timer(self._hard_deadline, _exit_now, (self._hard_deadline,))
            self._watchdog.daemon = True
            self._watchdog.start()
        super().handle_exit(sig, frame)


def _exit_now(after: float) -> None:
    sys.stderr.write(
        f"sessionhub: not stopped {after:g} s after the signal (its event loop is busy); "
        "exiting now\n"
    )
    sys.stderr.flush()
    os._exit(EXIT_FORCED)
