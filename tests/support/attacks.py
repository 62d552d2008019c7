"""Request-cost attacks and what they cost others, for tests/security/test_request_limits.py
and bench/attacks.py: fragment chains, whose validation explodes, and a bystander that keeps
asking a small query on its own connection while an attack runs."""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx2 as httpx

SMALL = "{ me { userId } }"
ANSWER_TIMEOUT_S = 120.0
WAIT_TIMEOUT_S = 60.0


def fragment_chain(levels: int) -> str:
    """`fragment Fn on Query { ...Fn-1 ...Fn-1 }`: 2^levels fields in about 40 bytes a level."""
    lines = ["fragment F0 on Query { me { userId } }"]
    lines += [f"fragment F{i} on Query {{ ...F{i - 1} ...F{i - 1} }}" for i in range(1, levels + 1)]
    return f"query {{ ...F{levels} }}\n" + "\n".join(lines)


class Bystander:
    """Asks SMALL at `url` again and again, `pause` seconds after each answer, from `with`
    to its end. Keeps how long each answer took (seconds) and, where `expected` is given,
    the answers that were not it."""

    def __init__(self, url: str, token: str, pause: float, expected: Any = None) -> None:
        self._url = url
        self._headers = {"Authorization": f"Bearer {token}"}
        self._pause = pause
        self._expected = expected
        self._stop = threading.Event()
        self.latencies: list[float] = []
        self.failures: list[str] = []
        self._thread = threading.Thread(target=self._run, daemon=True)

    @property
    def answers(self) -> int:
        return len(self.latencies)

    @property
    def longest(self) -> float:
        return max(self.latencies, default=0.0)

    def _run(self) -> None:
        with httpx.Client(timeout=ANSWER_TIMEOUT_S) as client:
            while not self._stop.is_set():
                started = time.perf_counter()
                response = client.post(self._url, json={"query": SMALL}, headers=self._headers)
                self.latencies.append(time.perf_counter() - started)
                if self._expected is not None and response.json() != self._expected:
                    self.failures.append(response.text)
                self._stop.wait(self._pause)

    def wait_for(self, answers: int) -> None:
        """Returns once it has had `answers` answers in all."""
        deadline = time.monotonic() + WAIT_TIMEOUT_S
        while self.answers < answers:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the bystander had {self.answers} answers, not {answers}")
            time.sleep(0.005)

    def __enter__(self) -> Bystander:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=ANSWER_TIMEOUT_S)
        if self._thread.is_alive():
            raise TimeoutError("the bystander's query never came back")
