"""Admission before work: a bounded queue (429 when full) and a work estimate checked against the deadline.

The estimate is a lower bound: steps x images x pixels at the fastest per-step rate measured on this server
(between `callback_on_step_end` calls, so setup and decoding are not in it; cached steps make it faster). A request
whose deadline cannot cover `deadline_estimate_share` of it is refused before starting, instead of running a step
that cannot be stopped and answering late.
"""

from __future__ import annotations

import math
import statistics
import threading

from .errors import ApiError

__all__ = [
    "Queue", "WorkRate"
]


class Queue:
    """Counts requests admitted (running or waiting for the pipeline); refuses past `limit` with 429."""

    def __init__(self, limit: int) -> None:
        self.limit, self.admitted = limit, 0
        self._lock = threading.Lock()

    def enter(self, retry_after_s: float) -> None:
        with self._lock:
            if self.admitted >= self.limit:
                wait = max(1, math.ceil(retry_after_s))
                raise ApiError(429, f"The server's queue is full ({self.limit} requests, `server.max_queue`); "
                                    f"retry in about {wait} s.", code="queue_full", headers={"Retry-After": str(wait)})
            self.admitted += 1

    def leave(self) -> None:
        with self._lock:
            self.admitted -= 1


class WorkRate:
    """Seconds per (step x image x pixel): the fastest seen, and a recent typical one for `Retry-After`."""

    def __init__(self) -> None:
        self.fastest: float | None = None
        self.recent_request_s: list[float] = []
        self._lock = threading.Lock()

    def record_steps(self, step_seconds: list[float], units_per_step: float) -> None:
        if not step_seconds or units_per_step <= 0:
            return
        rate = statistics.median(step_seconds) / units_per_step
        with self._lock:
            self.fastest = rate if self.fastest is None else min(self.fastest, rate)

    def record_request(self, seconds: float) -> None:
        with self._lock:
            self.recent_request_s = [*self.recent_request_s[-19:], seconds]

    def estimate(self, units: float) -> float | None:
        return None if self.fastest is None else self.fastest * units

    def typical_request_s(self) -> float:
        with self._lock:
            return statistics.median(self.recent_request_s) if self.recent_request_s else 1.0
