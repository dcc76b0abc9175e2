"""Fronts of speed against fidelity, as plain maths on (speedup, score) points: no model, no plotting.

`pareto_mask` marks the points nothing beats on both axes; `front` keeps those points sorted by speedup;
`speedup_at` interpolates along a front the highest speedup that still reaches a fidelity level.
"""

from __future__ import annotations

import math


def pareto_mask(points: list[tuple[float, float]]) -> list[bool]:
    """True for points no other point beats on both axes (higher is better on both; ``inf`` beats any finite)."""
    return [
        not any(qx >= px and qy >= py and (qx > px or qy > py) for qx, qy in points)
        for px, py in points
    ]


def front(points: list[tuple[float, float]], higher_is_better: bool = True) -> list[tuple[float, float]]:
    """Non-dominated (speedup, score) points, by increasing speedup: each is faster than the previous, and worse."""
    best = []
    sign = 1 if higher_is_better else -1
    for speed, score in sorted(points, key=lambda p: (-p[0], -sign * p[1])):
        if not best or sign * score > sign * best[-1][1]:
            best.append((speed, score))
    return sorted(best)


def speedup_at(points: list[tuple[float, float]], level: float, higher_is_better: bool = True) -> float | None:
    """The highest speedup on the front that reaches `level`, interpolated linearly between front points."""
    sign = 1 if higher_is_better else -1
    pts = front(points, higher_is_better)
    ok = [(s, v) for s, v in pts if sign * v >= sign * level]
    if not ok:
        return None
    best = max(s for s, _ in ok)
    faster = [(s, v) for s, v in pts if s > best]
    if faster:
        (s0, v0), (s1, v1) = max(ok), min(faster)
        if v0 != v1 and math.isfinite(v0):
            best = s0 + (s1 - s0) * (v0 - level) / (v0 - v1)
    return best
