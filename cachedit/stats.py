"""What the cache did during the last pipeline call.

Kept outside hook state on purpose: diffusers pipelines reset stateful hooks in ``maybe_free_model_hooks()``
before ``pipe(...)`` returns, so anything stored there is gone when the user asks for it.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np

__all__ = [
    "PERCENTILES", "IDEAL_TOLERANCE", "speedup_warning", "speedup_notes", "StepRecord", "CacheStats",
    "format_summary"
]

PERCENTILES = {"min": 0, "p25": 25, "p50": 50, "p75": 75, "p95": 95, "max": 100}
# Skipping blocks cannot make a run faster than the share of block work it removes; a measured speedup more than this
# far above that (ideal) speedup is timing noise or an unfair baseline, never the cache.
IDEAL_TOLERANCE = 0.05


def speedup_warning(measured: float | None, ideal: float | None) -> str | None:
    """A warning when a measured speedup exceeds the ideal one (counted block executions), else None."""
    if not isinstance(measured, (int, float)) or not isinstance(ideal, (int, float)) or ideal <= 0:
        return None
    if measured <= ideal * (1 + IDEAL_TOLERANCE):
        return None
    return (f"MEASURED SPEEDUP {measured:.2f}x EXCEEDS THE IDEAL {ideal:.2f}x (counted block executions): timing "
            f"noise, not the cache; compare by ideal speedup or time longer runs")


def speedup_notes(table: list[dict], label: str = "setting", most: int | None = None) -> list[str]:
    """Lines to print under a table: one per row whose measured speedup exceeds its ideal one (peers: ideal `-`);
    with `most`, that many and then one line counting the rest (a Pareto bench times each of its hundreds of settings
    once, so many such rows say the same thing)."""
    notes = []
    for row in table:
        warning = speedup_warning(row.get("speedup"), row.get("ideal_speedup"))
        if warning:
            notes.append(f"**{row[label]}**: {warning}.")
    if most is not None and len(notes) > most:
        rest = len(notes) - most
        notes = notes[:most] + [f"... and {rest} more of the {len(table)} settings measured above their ideal speedup "
                                f"(timing noise at these repeats; the fronts use ideal speedups)."]
    return ["", *notes] if notes else []

@dataclass
class StepRecord:
    step: int
    computed: bool  # True when the step skipped no block
    diff: float | None  # the change that decided (DBCache: first-Fn residual; DBPrune: mean block input change)
    skipped_blocks: int = 0
    drift_corrected: bool = False  # a computed step whose output and forecast were corrected for the drift before it


def _percentiles(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    return {k: float(np.percentile(values, q)) for k, q in PERCENTILES.items()}


class CacheStats:
    """Per transformer and guidance branch: the decision and change at each step, and block computation counts."""

    def __init__(self) -> None:
        self.begin_call()

    def begin_call(self) -> None:
        self.steps: dict[str, list[StepRecord]] = defaultdict(list)  # "<transformer>/<branch>" -> records
        self.blocks_total = 0
        self.blocks_skipped = 0
        self.cannot_skip: dict[str, str] = {}  # per stack: why its policy can skip nothing in this call
        self.drift_not_corrected: dict[str, str] = {}  # per stack: why drift correction, though on, did not apply

    def note_cannot_skip(self, stack: str, reason: str) -> None:
        """Record that `stack`'s policy can skip no step of this call, and why (the summary says it by name)."""
        self.cannot_skip[stack] = reason

    def note_drift_not_corrected(self, stack: str, reason: str) -> None:
        """Record that `stack`'s drift correction is on but could not apply in this call, and why."""
        self.drift_not_corrected[stack] = reason

    def record_step(self, branch: str, step: int, computed: bool, diff: float | None) -> StepRecord:
        record = StepRecord(step, computed, diff)
        self.steps[branch].append(record)
        return record

    def record_drift_corrected(self, branch: str) -> None:
        """Mark the branch's latest step as one whose output and forecast were corrected for the drift before it."""
        self.steps[branch][-1].drift_corrected = True

    def record_block(self, branch: str, skipped: bool, count: int = 1) -> None:
        """Count `count` block calls; a skipped one is charged to the branch's latest step."""
        self.blocks_total += count
        if skipped:
            self.blocks_skipped += count
            self.steps[branch][-1].skipped_blocks += count

    def summary(self) -> dict:
        """A JSON-ready summary: cached steps, skipped block share, diff percentiles, per-branch decisions."""
        records = [r for branch in self.steps.values() for r in branch]
        diffs = [r.diff for r in records if r.diff is not None]
        cached = sum(not r.computed for r in records)
        return {
            "steps": len(records),
            "cached_steps": cached,
            "cached_share": cached / len(records) if records else 0.0,
            "blocks_total": self.blocks_total,
            "blocks_skipped": self.blocks_skipped,
            "skipped_share": self.blocks_skipped / self.blocks_total if self.blocks_total else 0.0,
            "diff_percentiles": _percentiles(diffs),
            "cannot_skip": dict(self.cannot_skip),
            "drift_corrected_steps": sum(r.drift_corrected for r in records),
            "drift_not_corrected": dict(self.drift_not_corrected),
            "branches": {
                name: {
                    # one character per step: C computed, c cached
                    "decisions": "".join("C" if r.computed else "c" for r in branch),
                    "cached_steps": sum(not r.computed for r in branch),
                    "diffs": [r.diff for r in branch],
                    "skipped_blocks": [r.skipped_blocks for r in branch],
                    "drift_corrected_steps": [r.step for r in branch if r.drift_corrected],
                    "diff_percentiles": _percentiles([r.diff for r in branch if r.diff is not None]),
                }
                for name, branch in self.steps.items()
            },
        }


def format_summary(summary: dict) -> str:
    """One line a person reads: cached steps, skipped share, diff median; loud when nothing was cached."""
    if summary["steps"] == 0:
        return "cache: no transformer step ran"
    line = (
        f"cached {summary['cached_steps']}/{summary['steps']} steps, "
        f"skipped {summary['skipped_share']:.1%} of block computations"
    )
    pct = summary["diff_percentiles"]
    if pct is not None:
        line += f", residual diff p50 {pct['p50']:.3f} (min {pct['min']:.3f}, max {pct['max']:.3f})"
    if summary["cached_steps"] == 0:
        reasons = summary.get("cannot_skip") or {}
        if reasons:
            line += " -- NOTHING WAS CACHED: " + "; ".join(f"{stack}: {why}" for stack, why in reasons.items())
        else:
            line += " -- NOTHING WAS CACHED: the threshold is below every measured diff, or warmup covers all steps"
    if summary.get("drift_corrected_steps"):
        line += f", drift corrected at {summary['drift_corrected_steps']} computed steps"
    for stack, why in (summary.get("drift_not_corrected") or {}).items():
        line += f" -- DRIFT CORRECTION DID NOT APPLY ({stack}): {why}"
    return line
