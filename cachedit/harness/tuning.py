"""Auto-tuning support for ``sweep=tune``: the objective a job returns, and the winning setting as a preset.

Hydra's Optuna sweeper maximises the float each job returns. A constrained goal ("best PSNR at >= 1.5x") becomes
one number: feasible settings score their goal (PSNR in dB, or the speedup), infeasible ones score below every
feasible one, higher the closer they come, so the sampler is pulled towards the constraint. The winner is
picked again from the ``stats.json`` files with the same function, so ``runners.collect`` agrees with the sweep.

The speedup in the objective is the ideal one, from counted block executions: measured speedups of short runs are
noise (a setting that skipped nothing measured 7.46x and won). A setting that skips nothing is never the answer:
its PSNR is infinite, so under a PSNR floor it looked like the best feasible trial.
"""

from __future__ import annotations

import math
from datetime import datetime
from pathlib import Path

from .run_config import TuneConfig, TuneObjective

__all__ = [
    "PSNR_CAP", "FAILED_TRIAL_VALUE", "NOTHING_SKIPPED_VALUE", "PRESET_GROUPS", "skipped_nothing", "objective",
    "sweeper_value", "is_feasible", "NothingSkipped", "best", "speedup_check", "preset_name", "write_preset"
]

PSNR_CAP = 100.0  # identical outputs (PSNR = inf) count as 100 dB so that the objective stays finite
# What a failed job returns to the sweeper. Not nan: hydra-optuna-sweeper 1.3 with Optuna 2.10 aborts the whole
# study on nan. A finite floor far below any setting's score also teaches the sampler to avoid the region.
FAILED_TRIAL_VALUE = -1e6
# What a trial that skipped nothing returns: below every setting that skips (infeasible ones included), above failures.
NOTHING_SKIPPED_VALUE = -1e5
PRESET_GROUPS = ("model", "cache", "taylorseer", "cfg", "scm")  # group choices a preset pins
_NOT_IN_PRESET = ("seed", "sweep", "experiment", "tune", "hydra", "preset", "local")


def skipped_nothing(stats: dict) -> bool:
    """Whether an ok job computed every block (no cache, or a setting that never skipped)."""
    share = (stats.get("cache") or {}).get("skipped_share")
    return stats.get("status") == "ok" and not share


def objective(stats: dict, tune: TuneConfig) -> float:
    """The value to maximise for one job's stats; ``nan`` (Optuna records a failed trial) when it has none."""
    speed = stats.get(tune.speedup_metric.value)
    psnr = (stats.get("fidelity") or {}).get("psnr")
    if stats.get("status") != "ok" or speed is None or psnr is None or math.isnan(psnr):
        return float("nan")
    if skipped_nothing(stats):
        return NOTHING_SKIPPED_VALUE
    psnr = min(psnr, PSNR_CAP)
    if tune.objective == TuneObjective.psnr_at_speedup:
        return psnr if speed >= tune.target_speedup else -PSNR_CAP * (tune.target_speedup - speed)
    return speed if psnr >= tune.psnr_floor else -(tune.psnr_floor - psnr)


def sweeper_value(stats: dict, tune: TuneConfig) -> float:
    """The float a ``sweep=tune`` job returns: the objective, or `FAILED_TRIAL_VALUE` when there is none."""
    value = objective(stats, tune)
    return FAILED_TRIAL_VALUE if math.isnan(value) else value


def is_feasible(value: float) -> bool:
    return not math.isnan(value) and value >= 0


class NothingSkipped(ValueError):
    """Every trial that produced a result computed every block: there is no setting to recommend."""


def best(records: list[dict], tune: TuneConfig) -> tuple[dict, float] | None:
    """The record with the highest objective (the first one on ties) among settings that skip blocks, or None if no
    job produced one. Raises `NothingSkipped` when the jobs that did all skipped nothing."""
    scored = [(r, objective(r, tune)) for r in records]
    scored = [(r, v) for r, v in scored if not math.isnan(v)]
    skipping = [(r, v) for r, v in scored if not skipped_nothing(r)]
    if scored and not skipping:
        raise NothingSkipped(
            f"No trial skipped any block ({len(scored)} trial(s) computed every block), so there is no setting to "
            f"recommend and no preset was written. Widen the search towards caching: higher "
            f"`cache.residual_diff_threshold`, lower `cache.max_warmup_steps`, or more steps."
        )
    return max(skipping, key=lambda item: item[1]) if skipping else None


def speedup_check(stats: dict) -> str:
    """The measured speedup next to the ideal one the tune optimised, with a warning when it exceeds it."""
    from ..stats import speedup_warning

    measured, ideal = stats.get("speedup"), stats.get("ideal_speedup")
    if measured is None or ideal is None:
        return "no measured speedup"
    warning = speedup_warning(measured, ideal)
    return f"measured speedup {measured:.2f}x (ideal {ideal:.2f}x)" + (f"; {warning}" if warning else "")


def _preset_keys(overrides: list[str]) -> list[str]:
    """``key=value`` overrides a preset should carry: no group choices, seeds, sweeps or Hydra settings."""
    keep = []
    for override in overrides:
        key, _, value = override.lstrip("+").partition("=")
        if override.startswith("~") or ("." not in key and key in PRESET_GROUPS + _NOT_IN_PRESET):
            continue
        if key.split(".")[0] in _NOT_IN_PRESET:
            continue
        keep.append(f"{key}={value}")
    return keep


def preset_name(stats: dict, tune: TuneConfig) -> str:
    choices = stats.get("choices") or {}
    return tune.preset_name or f"tuned_{choices.get('model', stats.get('model'))}_{choices.get('cache', 'cache')}"


def write_preset(stats: dict, tune: TuneConfig, value: float, sweep_dir: Path) -> tuple[Path, str]:
    """Write the winning job's setting as ``<sweep_dir>/tuned/experiment/<name>.yaml``; return it and its command.

    The file is an experiment (``# @package _global_``, ``override /group:`` defaults, then the tuned keys), so
    it composes from the sweep directory with ``--config-dir`` or, copied to ``conf/experiment/``, by name.
    """
    from omegaconf import OmegaConf

    name = preset_name(stats, tune)
    config_dir = Path(sweep_dir).resolve() / "tuned"
    path = config_dir / "experiment" / f"{name}.yaml"
    command = f"python -m runners.generate --config-dir {config_dir} experiment={name}"
    choices = stats.get("choices") or {}
    fidelity = stats.get("fidelity") or {}
    goal = (
        f"highest PSNR at {tune.speedup_metric.value} >= {tune.target_speedup:g}"
        if tune.objective == TuneObjective.psnr_at_speedup
        else f"highest {tune.speedup_metric.value} at PSNR >= {tune.psnr_floor:g} dB"
    )
    met = "" if is_feasible(value) else "  NO TRIAL MET THE CONSTRAINT: this is the closest miss."
    lines = [
        "# @package _global_",
        f"# {command}",
        f"# Tuned by `sweep=tune` on {datetime.now():%Y-%m-%d %H:%M} ({goal}): job {stats.get('job', {}).get('num')}, "
        f"PSNR {fidelity.get('psnr', float('nan')):.2f} dB, ideal speedup {stats.get('ideal_speedup', float('nan')):.2f}x, "
        f"skipped {(stats.get('cache') or {}).get('skipped_share', float('nan')):.1%} of block computations; "
        f"check: {speedup_check(stats)}.{met}",
        f"# To keep it: copy this file to conf/experiment/{name}.yaml and run `python -m runners.generate experiment={name}`.",
        "defaults:",
        *(f"  - override /{group}: {choices[group]}" for group in PRESET_GROUPS if choices.get(group)),
    ]
    keys = OmegaConf.to_yaml(OmegaConf.from_dotlist(_preset_keys(stats.get("overrides") or []))).strip()
    text = "\n".join(lines) + "\n" + ("" if keys == "{}" else keys + "\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path, command
