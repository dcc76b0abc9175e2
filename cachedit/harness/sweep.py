"""A sweep directory's answer: ``summary.csv``, ``summary.md``, ``pareto.png`` and ``grid.png`` from its jobs.

Works from the files alone (each job's ``stats.json`` and images), so the Hydra callback at the end of a multirun
and ``python -m runners.collect <sweep_dir>`` later produce the same summary. Job directories are those Hydra
made (they hold ``.hydra/``); one without ``stats.json`` was killed before it could write it and is listed.

A sweep started in a directory that holds an earlier sweep (fixed ``hydra.sweep.dir``, as for Slurm and Ray) first
moves the earlier sweep's files to ``earlier/<time>/`` (`set_aside_earlier`): its rows, made with other weights or
settings, never mix into this summary, nothing is deleted, and the summary says what it left out.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import shlex
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..caches import CacheConfig, NoCacheConfig
from ..stats import speedup_notes
from .fronts import pareto_mask, speedup_at
from .metrics import FIDELITY_COLUMNS
from .plots import plot_grid, plot_pareto
from .run_config import TuneConfig

__all__ = [
    "EARLIER", "KEPT", "SWEEP_FILES", "COLUMNS", "SweepSummary", "set_aside_earlier", "earlier_sweeps", "collect",
    "fewer_steps_references", "verdict", "mark_pareto", "write_csv", "command", "recommend", "markdown", "summarize"
]

log = logging.getLogger(__name__)

EARLIER = "earlier"  # where earlier sweeps' files go when a sweep reuses their directory
# Baselines stay for the next sweep: they are keyed by everything that determines them (weights, seed, steps, ...).
KEPT = ("baselines", EARLIER)
SWEEP_FILES = ("summary.csv", "summary.md", "pareto.png", "grid.png", "multirun.yaml", "optimization_results.yaml")

COLUMNS = [
    "job", "status", "label", "series", "algorithm", "Fn", "Bn", "threshold", "taylorseer_order", "model", "steps",
    "seed", "cached_steps", "total_steps", "skipped_share", "time_s", "baseline_time_s", "speedup", "ideal_speedup",
    *FIDELITY_COLUMNS, "baseline_reused", "pareto", "objective", "error", "overrides", "dir",
]  # task-quality columns (e.g. accuracy, baseline_accuracy) are inserted after the fidelity columns


@dataclass
class SweepSummary:
    sweep_dir: Path
    rows: list[dict]
    missing: list[str]  # job directories without stats.json
    files: dict[str, Path] = field(default_factory=dict)
    tuned: dict | None = None  # {"path", "command", "job", "objective", "check"} after a tuning sweep; {"error"}
    # when every trial skipped nothing
    # (model, seed, steps) -> the uncached fewer-steps rows its jobs carry ({"steps", "ideal_speedup", "psnr", ...})
    fewer_steps: dict[tuple, list[dict]] = field(default_factory=dict)


def _get(mapping: dict | None, *keys, default=None):
    for key in keys:
        if not isinstance(mapping, dict) or key not in mapping:
            return default
        mapping = mapping[key]
    return mapping


def _describe(cache: dict, algorithm: str | None) -> tuple[str, str]:
    """(series, setting) as the cache config describes itself; e.g. ``("fbcache F1B0", "R0.08")``."""
    try:
        config = CacheConfig.from_dict(cache)
    except (KeyError, TypeError, ValueError):  # a failed job may hold no valid config
        return f"{algorithm} (invalid config)", ""
    if isinstance(config, NoCacheConfig):
        return "none (uncached)", ""
    return f"{algorithm} {config.series()}", config.setting()


def _row(stats: dict, job_dir: str) -> dict:
    """One flat row from a job's stats (ok or failed)."""
    config = stats.get("config") or {}
    cache = config.get("cache") or {}
    choices = stats.get("choices") or {}
    algorithm = choices.get("cache") or cache.get("name") or stats.get("name")
    order = _get(config, "taylorseer", "order")
    series, setting = _describe(cache, algorithm)
    series += f" T{order}" if order else ""
    threshold = cache.get("residual_diff_threshold")
    fidelity = stats.get("fidelity") or {}
    row = {
        "job": _get(stats, "job", "num"), "status": stats.get("status", "unknown"),
        "label": f"{series} {setting}".rstrip(),
        "series": series,
        "algorithm": algorithm, "Fn": cache.get("Fn"), "Bn": cache.get("Bn"), "threshold": threshold,
        "taylorseer_order": order, "model": stats.get("model"), "steps": _get(config, "model", "num_inference_steps"),
        "seed": config.get("seed"), "cached_steps": _get(stats, "cache", "cached_steps"),
        "total_steps": _get(stats, "cache", "steps"), "skipped_share": _get(stats, "cache", "skipped_share"),
        "time_s": stats.get("time_s"), "baseline_time_s": stats.get("baseline_time_s"),
        "speedup": stats.get("speedup"), "ideal_speedup": stats.get("ideal_speedup"),
        **{name: fidelity.get(name) for name in FIDELITY_COLUMNS}, "baseline_reused": stats.get("baseline_reused"),
        "error": stats.get("error"), "overrides": " ".join(stats.get("overrides") or []), "dir": job_dir,
        "_overrides": list(stats.get("overrides") or []),
    }
    if algorithm == "none" and row["status"] == "ok" and row["speedup"] is None:
        row.update(speedup=1.0, ideal_speedup=1.0, **FIDELITY_COLUMNS)  # the baseline itself: identical outputs
    row.update(stats.get("quality") or {})
    row.update({f"baseline_{k}": v for k, v in (stats.get("baseline_quality") or {}).items()})
    return row


def set_aside_earlier(sweep_dir: Path) -> Path | None:
    """Move what an earlier sweep left in `sweep_dir` (job directories, summaries, tuned presets) to
    ``earlier/<time>/``; return that folder, or None when there was nothing. Runs before any job of the new sweep."""
    sweep_dir = Path(sweep_dir)
    entries = sorted(p for p in sweep_dir.iterdir() if _sweep_output(p)) if sweep_dir.is_dir() else []
    if not entries:
        return None
    target = sweep_dir / EARLIER / time.strftime("%Y-%m-%d_%H-%M-%S")
    suffix = 0
    while True:  # two sweeps set aside in the same second get their own folders
        candidate = target.with_name(f"{target.name}_{suffix}") if suffix else target
        try:
            candidate.mkdir(parents=True)
            break
        except FileExistsError:
            suffix += 1
    for entry in entries:
        entry.rename(candidate / entry.name)
    jobs = sum(1 for _ in candidate.rglob(".hydra"))
    log.warning(f"`{sweep_dir}` held an earlier sweep ({jobs} job directories): moved to `{candidate}`, out of this "
                f"sweep's summary. Disk baselines stay (keyed by weights, seed, steps, size, dtype and scheduler).")
    return candidate


def _sweep_output(path: Path) -> bool:
    """What a sweep writes at the top of its directory; anything else (a user's own files) stays where it is."""
    if path.name in KEPT:
        return False
    if path.is_dir():
        return path.name == "tuned" or any(path.rglob(".hydra")) or any(path.rglob("stats.json"))
    return path.name in SWEEP_FILES


def earlier_sweeps(sweep_dir: Path) -> list[tuple[str, int]]:
    """``(folder, job directories)`` for each earlier sweep set aside in `sweep_dir`."""
    folder = Path(sweep_dir) / EARLIER
    if not folder.is_dir():
        return []
    return [(p.relative_to(sweep_dir).as_posix(), sum(1 for _ in p.rglob(".hydra")))
            for p in sorted(folder.iterdir()) if p.is_dir()]


def collect(sweep_dir: Path) -> tuple[list[dict], list[str], list[dict]]:
    """Rows (sorted by job number), job directories without stats, and the raw stats of every job of this sweep
    (not of earlier sweeps set aside under ``earlier/``)."""
    sweep_dir = Path(sweep_dir)
    stats_files = sorted(p for p in sweep_dir.rglob("stats.json") if not set(KEPT) & set(p.relative_to(sweep_dir).parts))
    records, rows = [], []
    for path in stats_files:
        try:
            stats = json.loads(path.read_text())
            if not isinstance(stats, dict):
                raise ValueError(f"a JSON {type(stats).__name__}, not an object")
        except (OSError, ValueError) as error:  # truncated or foreign: reported as a failed row, the rest still count
            log.error(f"Unreadable {path}: {error}")
            stats = {"status": "unreadable", "error": f"unreadable stats.json: {type(error).__name__}: {error}"}
        records.append(stats)
        rows.append(_row(stats, path.parent.relative_to(sweep_dir).as_posix()))
    with_stats = {p.parent for p in stats_files}
    job_dirs = sorted(p.parent for p in sweep_dir.rglob(".hydra")
                      if p.parent != sweep_dir and EARLIER not in p.relative_to(sweep_dir).parts)
    missing = [d.relative_to(sweep_dir).as_posix() for d in job_dirs if d not in with_stats]
    order = sorted(range(len(rows)), key=lambda i: (rows[i]["job"] is None, rows[i]["job"] or 0, rows[i]["dir"]))
    return [rows[i] for i in order], missing, [records[i] for i in order]


def _group(row: dict) -> tuple:
    return row.get("model"), row.get("seed"), row.get("steps")


def fewer_steps_references(rows: list[dict], records: list[dict]) -> dict[tuple, list[dict]]:
    """Per (model, seed, steps): the fewer-steps reference the first job with that baseline recorded."""
    references: dict[tuple, list[dict]] = {}
    for row, stats in zip(rows, records):
        if stats.get("fewer_steps"):
            references.setdefault(_group(row), stats["fewer_steps"])
    return references


def verdict(pick: dict, reference: list[dict] | None) -> str:
    """One line: does `pick` beat simply running fewer steps at its PSNR, and by how much (ideal speedups)."""
    if not reference:
        return ("No fewer-steps reference was run for this baseline (`fewer_steps=[]`, or a single run): "
                "add `fewer_steps=[0.5,0.7,0.9]` to compare.")
    ideal, psnr = pick.get("ideal_speedup"), pick.get("psnr")
    if ideal is None or psnr is None:
        return "The suggested setting has no ideal speedup or PSNR to compare with fewer steps."
    rival = speedup_at([(r["ideal_speedup"], r["psnr"]) for r in reference], psnr)
    if rival is None:
        fewest = max(reference, key=lambda r: r["psnr"])
        return (f"**Beats fewer steps:** no fewer-steps run reaches its {_fmt(psnr, '.1f')} dB (the best, "
                f"{fewest['steps']} steps, reaches {_fmt(fewest['psnr'], '.1f')} dB); it runs {ideal:.2f}x less work.")
    steps = pick.get("steps")
    equal_steps = f" (about {steps / rival:.0f} of {steps} steps)" if steps else ""
    if ideal > rival:
        return (f"**Beats fewer steps by {ideal / rival:.2f}x:** at its {_fmt(psnr, '.1f')} dB, fewer steps give "
                f"{rival:.2f}x{equal_steps}; this setting gives {ideal:.2f}x (ideal speedups: counted work).")
    return (f"**Does not beat fewer steps** ({ideal / rival:.2f}x): at its {_fmt(psnr, '.1f')} dB, simply running "
            f"fewer steps gives {rival:.2f}x{equal_steps} against this setting's {ideal:.2f}x (ideal speedups). "
            f"Use `model.num_inference_steps` instead, or a stronger cache.")


def _reference_lines(summary: SweepSummary) -> list[str]:
    lines = ["", "## Reference: fewer steps, no cache", ""]
    if not summary.fewer_steps:
        return lines + ["Not run (`fewer_steps=[]`, or no job compared with a baseline)."]
    for (model, seed, steps), reference in summary.fewer_steps.items():
        quality = sorted({k for r in reference for k in r} - {"steps", "ideal_speedup", "speedup", "psnr", "ssim",
                                                               "max_abs_diff"})
        lines += [f"`{model}`, seed {seed}: the baseline's {steps} steps against fewer, uncached. "
                  f"A cache is worth it only above this front.", ""]
        head = ["steps", "ideal", "speedup", "PSNR", "SSIM", "max diff", *quality]
        lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for r in sorted(reference, key=lambda r: -r["steps"]):
            cells = [str(r["steps"]), _fmt(r["ideal_speedup"], ".2f"), _fmt(r.get("speedup"), ".2f"),
                     _fmt(r["psnr"], ".1f"), _fmt(r.get("ssim"), ".3f"), _fmt(r.get("max_abs_diff"), ".3g"),
                     *(_fmt(r.get(q), ".3f") for q in quality)]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    return lines[:-1]


def mark_pareto(rows: list[dict], x: str = "speedup") -> None:
    ok = [r for r in rows if r["status"] == "ok" and r.get(x) is not None and r.get("psnr") is not None]
    for row in rows:
        row["pareto"] = False
    for row, keep in zip(ok, pareto_mask([(r[x], r["psnr"]) for r in ok])):
        row["pareto"] = keep


def write_csv(rows: list[dict], path: Path) -> Path:
    quality = _quality_columns(rows)
    at = COLUMNS.index(list(FIDELITY_COLUMNS)[-1]) + 1
    columns = COLUMNS[:at] + quality + COLUMNS[at:]
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: "" if row.get(k) is None else row[k] for k in columns})
    return Path(path)


def _quality_columns(rows: list[dict]) -> list[str]:
    return sorted({k for r in rows for k in r if not k.startswith("_")} - set(COLUMNS))


def command(row: dict) -> str:
    """The command that reruns one job alone: its overrides without the sweep and Hydra settings."""
    keep = [o for o in row["_overrides"] if not o.startswith(("sweep=", "hydra.", "hydra/", "tune.", "+tune"))]
    return shlex.join(["python", "-m", "runners.generate", *keep])


def _fmt(value, spec: str = ".3g") -> str:
    if value is None:
        return ""
    if isinstance(value, float) and math.isinf(value):
        return "inf"
    return format(value, spec) if isinstance(value, (int, float)) and not isinstance(value, bool) else str(value)


def _timing_note(rows: list[dict]) -> list[str]:
    """A warning when jobs that skipped nothing still measured a speedup far from 1: the timings are noise."""
    idle = [r["speedup"] for r in rows if r["status"] == "ok" and r["algorithm"] != "none"
            and r.get("skipped_share") == 0 and r.get("speedup") is not None]
    if not idle or max(abs(s - 1) for s in idle) <= 0.15:
        return []
    return [f"**Timing noise:** jobs that skipped nothing measured {min(idle):.2f}x-{max(idle):.2f}x. Compare "
            f"settings by `ideal` (share of blocks skipped), or time longer runs with `repeats=3` or more."]


def recommend(rows: list[dict], psnr_floor: float) -> dict | None:
    """The fastest setting that skips blocks and whose PSNR is at least `psnr_floor` (measured speedup): one that
    skips nothing reaches any floor (PSNR = inf) and is never a suggestion."""
    good = [r for r in rows if r["status"] == "ok" and r["algorithm"] != "none" and r.get("speedup") is not None
            and r.get("psnr") is not None and r["psnr"] >= psnr_floor and r.get("skipped_share")]  # skips something
    return max(good, key=lambda r: r["speedup"]) if good else None


def markdown(summary: SweepSummary, psnr_floor: float) -> str:
    rows = summary.rows
    quality = _quality_columns(rows)
    failed = [r for r in rows if r["status"] != "ok"]
    lines = [f"# Sweep summary: `{summary.sweep_dir}`", ""]
    lines.append(f"{len(rows)} jobs with stats: {len(rows) - len(failed)} ok, {len(failed)} failed; "
                 f"{len(summary.missing)} without stats.")
    for folder, jobs in earlier_sweeps(summary.sweep_dir):
        lines.append(f"Not in this summary: {jobs} job(s) of an earlier sweep in this directory, set aside in "
                     f"`{folder}/` when a later sweep started here.")
    computed = [r for r in rows if r["status"] == "ok" and r.get("baseline_reused") is False]
    reused = [r for r in rows if r.get("baseline_reused")]
    if computed or reused:
        lines.append(f"Uncached baseline computed by {len(computed)} job(s) (one per model/seed/steps) and reused "
                     f"by {len(reused)}.")
    lines += _timing_note(rows)
    head = ["job", "status", "setting", "cached", "skipped", "speedup", "ideal", "PSNR", "SSIM", "max diff",
            *quality, "Pareto"]
    lines += ["", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cached = f"{r['cached_steps']}/{r['total_steps']}" if r.get("total_steps") else ""
        cells = [_fmt(r["job"]), r["status"], r["label"], cached, _fmt(r.get("skipped_share"), ".0%"),
                 _fmt(r.get("speedup"), ".2f"), _fmt(r.get("ideal_speedup"), ".2f"), _fmt(r.get("psnr"), ".1f"),
                 _fmt(r.get("ssim"), ".3f"), _fmt(r.get("max_abs_diff"), ".3g"),
                 *(_fmt(r.get(q), ".3f") for q in quality), "★" if r.get("pareto") else ""]
        lines.append("| " + " | ".join(cells) + " |")
    lines += speedup_notes([{**r, "job": f"job {r['job']}"} for r in rows if r["status"] == "ok"], label="job")
    front = [r for r in rows if r.get("pareto")]
    lines += ["", "## Pareto front (measured speedup vs PSNR)", ""]
    lines += [f"- job {r['job']}: {r['label']}: {_fmt(r['speedup'], '.2f')}x, PSNR {_fmt(r['psnr'], '.1f')} dB"
              f" — `{command(r)}`" for r in sorted(front, key=lambda r: r["speedup"])] or ["- (none)"]
    pick = recommend(rows, psnr_floor)
    lines += ["", f"## Suggested preset (fastest with PSNR >= {psnr_floor:g} dB)", ""]
    if pick is None:
        lines.append(f"No cached setting reached {psnr_floor:g} dB; lower the thresholds or raise Fn.")
    else:
        lines.append(f"Job {pick['job']}: {pick['label']}, {pick['speedup']:.2f}x, PSNR {_fmt(pick['psnr'], '.1f')} dB. "
                     f"Run it with `{command(pick)}`, or commit its `cache.*` values as "
                     f"`conf/preset/{pick['model']}_{pick['algorithm']}.yaml`.")
        lines += ["", verdict(pick, summary.fewer_steps.get(_group(pick)))]
    if summary.tuned is not None and "error" in summary.tuned:
        lines += ["", "## Tuned preset", "", f"**None.** {summary.tuned['error']}"]
    elif summary.tuned is not None:
        t = summary.tuned
        lines += ["", "## Tuned preset", "", f"Best trial: job {t['job']} (objective {t['objective']:.4g}, on ideal "
                  f"speedup; {t['check']}). Written to `{t['path']}`; use it with:", "", f"    {t['command']}"]
        best = next((r for r in rows if r["job"] == t["job"] and r["status"] == "ok"), None)
        if best is not None:
            lines += ["", verdict(best, summary.fewer_steps.get(_group(best)))]
    lines += _reference_lines(summary)
    if failed:
        lines += ["", "## Failed jobs", ""] + [f"- job {r['job']} (`{command(r)}`): {r['error']}" for r in failed]
    if summary.missing:
        lines += ["", "## Jobs without stats.json", ""] + [f"- `{d}`" for d in summary.missing]
    return "\n".join(lines) + "\n"


def _tune_config(records: list[dict]):
    for stats in records:
        tune = _get(stats, "config", "tune")
        if tune:
            return TuneConfig(**tune)
    return None


def summarize(sweep_dir: Path, psnr_floor: float = 30.0) -> SweepSummary:
    """Collect every job of `sweep_dir` and write summary.csv, summary.md, pareto.png and grid.png there.

    After a ``sweep=tune`` run (the jobs' configs carry ``tune``) the best job is also written as a preset.
    """
    from . import tuning

    sweep_dir = Path(sweep_dir)
    rows, missing, records = collect(sweep_dir)
    mark_pareto(rows)
    summary = SweepSummary(sweep_dir, rows, missing, fewer_steps=fewer_steps_references(rows, records))
    tune = _tune_config(records)
    if tune is not None:
        for row, stats in zip(rows, records):
            row["objective"] = tuning.objective(stats, tune)
        try:
            winner = tuning.best(records, tune)
        except tuning.NothingSkipped as error:  # said in summary.md; the sweep's callback then exits non-zero
            log.error(str(error))
            summary.tuned = {"error": str(error)}
            winner = None
        if winner is not None:
            stats, value = winner
            path, command = tuning.write_preset(stats, tune, value, sweep_dir)
            summary.tuned = {"path": path, "command": command, "job": _get(stats, "job", "num"), "objective": value,
                             "check": tuning.speedup_check(stats)}
            summary.files["preset"] = path
    summary.files["csv"] = write_csv(rows, sweep_dir / "summary.csv")
    summary.files["md"] = sweep_dir / "summary.md"
    summary.files["md"].write_text(markdown(summary, psnr_floor))
    summary.files["pareto"] = plot_pareto(rows, sweep_dir / "pareto.png", summary.fewer_steps)
    summary.files["grid"] = plot_grid(rows, sweep_dir, sweep_dir / "grid.png")
    return summary
