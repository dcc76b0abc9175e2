"""Prometheus text-format metrics of the server: every response by route and final status (what was sent, so a
500 after generation is a 500, and a 400, 401 or 413 refused before the route is counted too), latency and cached-share histograms."""

from __future__ import annotations

import threading

__all__ = [
    "LATENCY_BUCKETS_S", "SHARE_BUCKETS", "ROUTES", "ServerMetrics"
]

LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
SHARE_BUCKETS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
# labelled by route, never by the raw path: a client must not be able to grow the label set
ROUTES = ("/v1/images/generations", "/v1/images/edits", "/v1/models", "/v1/models/{id}", "/health", "/metrics",
          "/openapi.json", "/docs")


def route_of(path: str) -> str:
    if path.startswith("/v1/models/"):
        return "/v1/models/{id}"
    return path if path in ROUTES else "other"


class Histogram:
    def __init__(self, buckets: tuple[float, ...]) -> None:
        self.buckets, self.counts, self.sum, self.count = buckets, [0] * len(buckets), 0.0, 0

    def observe(self, value: float) -> None:
        self.sum += value
        self.count += 1
        for i, edge in enumerate(self.buckets):
            if value <= edge:
                self.counts[i] += 1

    def render(self, name: str, labels: str = "") -> list[str]:
        sep = "," if labels else ""
        lines = [f'{name}_bucket{{{labels}{sep}le="{edge:g}"}} {n}' for edge, n in zip(self.buckets, self.counts)]
        lines.append(f'{name}_bucket{{{labels}{sep}le="+Inf"}} {self.count}')
        suffix = f"{{{labels}}}" if labels else ""
        return [*lines, f"{name}_sum{suffix} {self.sum:.6f}", f"{name}_count{suffix} {self.count}"]


class ServerMetrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.responses: dict[tuple[str, int], int] = {}  # (route, status) -> count
        self.latency: dict[str, Histogram] = {}  # route -> seconds from arrival to the response's start
        self.cached_share = Histogram(SHARE_BUCKETS)
        self.cached_steps = 0
        self.steps = 0
        self.queue = None  # the app's admission queue: its length is a gauge

    def record_response(self, path: str, status: int, seconds: float) -> None:
        route = route_of(path)
        with self._lock:
            self.responses[route, status] = self.responses.get((route, status), 0) + 1
            self.latency.setdefault(route, Histogram(LATENCY_BUCKETS_S)).observe(seconds)

    def record_generation(self, cached_steps: int, steps: int) -> None:
        with self._lock:
            self.cached_steps += cached_steps
            self.steps += steps
            if steps:
                self.cached_share.observe(cached_steps / steps)

    def count(self, route: str, status: int) -> int:
        with self._lock:
            return self.responses.get((route, status), 0)

    def render(self) -> str:
        with self._lock:
            lines = ["# HELP cachedit_responses_total Responses by route and final HTTP status (499: client gone).",
                     "# TYPE cachedit_responses_total counter"]
            lines += [f'cachedit_responses_total{{route="{r}",status="{s}"}} {n}'
                      for (r, s), n in sorted(self.responses.items())]
            lines += ["# HELP cachedit_response_seconds Seconds from a request's arrival to its response.",
                      "# TYPE cachedit_response_seconds histogram"]
            for route, histogram in sorted(self.latency.items()):
                lines += histogram.render("cachedit_response_seconds", f'route="{route}"')
            lines += ["# HELP cachedit_cached_step_share Share of a generation's denoising steps served from cache.",
                      "# TYPE cachedit_cached_step_share histogram",
                      *self.cached_share.render("cachedit_cached_step_share"),
                      "# HELP cachedit_cached_steps_total Denoising steps served from the cache.",
                      "# TYPE cachedit_cached_steps_total counter",
                      f"cachedit_cached_steps_total {self.cached_steps}",
                      "# HELP cachedit_steps_total Denoising steps run (cached or computed).",
                      "# TYPE cachedit_steps_total counter",
                      f"cachedit_steps_total {self.steps}",
                      "# HELP cachedit_queue_admitted Generation requests admitted now (running or waiting).",
                      "# TYPE cachedit_queue_admitted gauge",
                      f"cachedit_queue_admitted {self.queue.admitted if self.queue is not None else 0}"]
        return "\n".join(lines) + "\n"
