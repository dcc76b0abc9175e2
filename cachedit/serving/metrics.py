"""Prometheus text-format counters of the server: requests, latency, cached share, timeouts, disconnects."""

from __future__ import annotations

import threading


class ServerMetrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: dict[int, int] = {}  # HTTP status -> count
        self.latency_sum = 0.0
        self.latency_count = 0
        self.cached_steps = 0
        self.steps = 0
        self.timeouts = 0
        self.disconnects = 0

    def record(self, status: int, seconds: float | None = None, cached_steps: int = 0, steps: int = 0,
               timeout: bool = False, disconnected: bool = False) -> None:
        with self._lock:
            self.requests[status] = self.requests.get(status, 0) + 1
            self.timeouts += timeout
            self.disconnects += disconnected
            if seconds is not None:
                self.latency_sum += seconds
                self.latency_count += 1
            self.cached_steps += cached_steps
            self.steps += steps

    def render(self) -> str:
        with self._lock:
            lines = ["# HELP cachedit_requests_total Generation requests by HTTP status.",
                     "# TYPE cachedit_requests_total counter"]
            lines += [f'cachedit_requests_total{{status="{s}"}} {n}' for s, n in sorted(self.requests.items())]
            lines += ["# HELP cachedit_request_seconds Latency of successful generations.",
                      "# TYPE cachedit_request_seconds summary",
                      f"cachedit_request_seconds_sum {self.latency_sum:.6f}",
                      f"cachedit_request_seconds_count {self.latency_count}",
                      "# HELP cachedit_cached_steps_total Denoising steps served from the cache.",
                      "# TYPE cachedit_cached_steps_total counter",
                      f"cachedit_cached_steps_total {self.cached_steps}",
                      "# HELP cachedit_steps_total Denoising steps run (cached or computed).",
                      "# TYPE cachedit_steps_total counter",
                      f"cachedit_steps_total {self.steps}",
                      "# HELP cachedit_cached_share Share of denoising steps served from the cache.",
                      "# TYPE cachedit_cached_share gauge",
                      f"cachedit_cached_share {self.cached_steps / self.steps if self.steps else 0.0:.6f}",
                      "# HELP cachedit_request_timeouts_total Requests stopped at their timeout (answered 504).",
                      "# TYPE cachedit_request_timeouts_total counter",
                      f"cachedit_request_timeouts_total {self.timeouts}",
                      "# HELP cachedit_client_disconnects_total Requests stopped because their client went away.",
                      "# TYPE cachedit_client_disconnects_total counter",
                      f"cachedit_client_disconnects_total {self.disconnects}"]
        return "\n".join(lines) + "\n"
