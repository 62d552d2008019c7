"""Clocks for tests: the domain's `Clock` port with time that the test decides."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

START = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


class SettableClock:
    """Stands still at `current` until the test moves it."""

    def __init__(self, now: datetime = START) -> None:
        self.current = now

    def now(self) -> datetime:
        return self.current


class SteppingClock:
    """Each reading is `step` after the last, so that orderings are deterministic."""

    def __init__(self, start: datetime = START, step: timedelta = timedelta(seconds=1)) -> None:
        self.current = start
        self.step = step

    def now(self) -> datetime:
        self.current += self.step
        return self.current
