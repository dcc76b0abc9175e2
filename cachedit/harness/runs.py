"""One generation run, as `runners.generate` performs it: check, load, baseline, cached run, compare, write.

Plain Python (no Hydra): ``run_generation(RunConfig(...), Path("out"))`` does the same as the runner.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import socket
import statistics
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from ..cache import disable_cache, enable_cache, summary
from ..compiling import compile as compile_pipe
from ..caches import NoCacheConfig
from ..configs import CompileMode, ParallelMode, StepMaskName
from ..distributed import (
    broadcast_from_rank_zero,
    check_parallel,
    enable_context_parallel,
    init_process_group,
    is_rank_zero,
    launch_rank,
)
from ..adapters import adapters_for_class
from ..plan import resolve_plan
from ..zoo.disk_once import kept_on_disk
from ..zoo.entries import get_entry
from ..stats import format_summary, speedup_warning
from .images import save_grid
from .metrics import fidelity
from .pipelines import block_counts, load_pipeline, resolve_device, runnable_transformers
from .run_config import DEFAULT_FEWER_STEPS, RunConfig

__all__ = [
    "Generation", "preflight", "generate", "warm_up", "cached_run", "shared_output_dir", "run_name",
    "run_generation", "fewer_steps_fractions", "pipeline_fingerprint", "write_failure", "write_json", "one_line"
]

log = logging.getLogger(__name__)
_BASELINES: dict[str, object] = {}  # uncached runs (and fewer-steps references), reused by every job of a sweep
_WARM: set[int] = set()


@dataclass
class Generation:
    images: np.ndarray  # (N, H, W, C) floats in [0, 1]; videos (N, F, H, W, C)
    seconds: list[float]

    @property
    def median_seconds(self) -> float:
        return statistics.median(self.seconds)


def preflight(run: RunConfig) -> dict[str, int]:
    """Everything that can be checked without loading weights, the cache plan resolved on meta-device transformers
    included; returns the block count per transformer."""
    if run.compile == CompileMode.full and not isinstance(run.cache, NoCacheConfig):
        raise ValueError(
            "`compile=full` compiles the cache hooks into the graph (a break per block, recompiles, then eager); "
            "use `compile=regional` with a cache, or `cache=none` with `compile=full`."
        )
    check_parallel(run.parallel, resolve_device(run.model))
    transformers = runnable_transformers(run.model)
    pipeline_class = get_entry(run.model.name).pipeline_class
    plan = resolve_plan(transformers, run.cache, taylorseer=run.taylorseer, scm=run.scm, cfg=run.cfg,
                        adapters=adapters_for_class(pipeline_class), label=run.model.name)
    return plan.block_counts() if plan.stacks else block_counts(transformers, pipeline_class)  # each check once


def generate(pipe, inputs: dict, seed: int, repeats: int, output: str = "images") -> Generation:
    """`output`: the attribute of the pipeline output to keep (the family's: ``frames`` for videos)."""
    seconds = []
    for _ in range(repeats):
        generator = torch.Generator().manual_seed(seed)
        start = time.perf_counter()
        result = pipe(**inputs, generator=generator)
        images = result if "output" in inputs else getattr(result, output)  # modular calls return `output` itself
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        seconds.append(time.perf_counter() - start)
    return Generation(np.asarray(images, dtype=np.float32), seconds)


def warm_up(pipe, inputs: dict, output: str = "images") -> None:
    """One short untimed call per pipeline, so one-time start-up costs do not land in the first timed run."""
    if id(pipe) not in _WARM:
        short = {"num_inference_steps": 2} if "num_inference_steps" in inputs else {}  # RFD4-Proteina's call takes none
        generate(pipe, {**inputs, **short}, seed=0, repeats=1, output=output)
        _WARM.add(id(pipe))


def cached_run(pipe, run: RunConfig, inputs: dict, output: str = "images") -> tuple[Generation, dict | None]:
    if isinstance(run.cache, NoCacheConfig):
        return generate(pipe, inputs, run.seed, run.repeats, output), None
    enable_cache(pipe, run.cache, taylorseer=run.taylorseer, scm=run.scm, cfg=run.cfg)
    try:  # always removed: sweeps reuse the pipeline in the same process
        return generate(pipe, inputs, run.seed, run.repeats, output), dict(summary(pipe))
    finally:
        disable_cache(pipe)


def _parallelize(pipe, run: RunConfig) -> None:
    """Context parallelism over the processes torchrun started; a pipeline loaded earlier is sharded already."""
    if run.parallel.mode == ParallelMode.none:
        return
    init_process_group(resolve_device(run.model), run.parallel.timeout_s)
    if getattr(pipe.transformer, "_parallel_config", None) is None:
        enable_context_parallel(pipe.transformer, run.parallel)


def shared_output_dir(run: RunConfig, output_dir: Path) -> Path:
    """Rank 0's run directory on every rank of a context-parallel launch (joining the process group for it), so a
    failure on another rank is reported beside rank 0's outputs; `output_dir` itself for a single process."""
    if run.parallel.mode == ParallelMode.none:
        return Path(output_dir)
    device = resolve_device(run.model)
    check_parallel(run.parallel, device)  # the clear error for a launch without torchrun, before any rendezvous
    init_process_group(device, run.parallel.timeout_s)
    return Path(broadcast_from_rank_zero(str(output_dir)))


def run_name(run: RunConfig) -> str:
    """E.g. ``DBCache_F8B0_W8_M-1_MC-1_R0.08_T1_SCMfast-dynamic``."""
    if isinstance(run.cache, NoCacheConfig):
        return "NoCache"
    name = run.cache.strify()
    if run.taylorseer.order > 0:
        name += f"_T{run.taylorseer.order}"
    if run.scm.mask != StepMaskName.none:
        name += f"_SCM{run.scm.mask.value}-{run.scm.policy.value}"
    return name


def run_generation(
    run: RunConfig,
    output_dir: Path,
    config: dict | None = None,
    overrides: list[str] | None = None,
    extra: dict | None = None,
    baseline_dir: Path | None = None,
) -> dict:
    """Generate with and (if asked) without the cache; write images and ``stats.json``; return the stats.

    `extra` is merged into the stats (the runner adds the Hydra job number and group choices); `baseline_dir`
    (a sweep's ``baselines/``) shares the uncached run between the processes of a parallel launcher.
    """
    blocks = preflight(run)
    family = get_entry(run.model.name)
    pipe = load_pipeline(run.model)
    _parallelize(pipe, run)
    compile_pipe(pipe, run.compile)  # every run: `none` restores a pipeline an earlier job of the sweep compiled
    inputs = family.inputs(pipe, run.model)
    warm_up(pipe, inputs, family.output)  # also pays the compilation, outside the timed runs

    baseline, baseline_source, reference = None, None, []
    if run.compare_baseline and not isinstance(run.cache, NoCacheConfig):
        fingerprint = pipeline_fingerprint(pipe)  # sums every weight: once per job, for both keys below
        baseline, baseline_source = _baseline(pipe, run, inputs, baseline_dir, family.output, fingerprint)
        reference = _fewer_steps(pipe, run, inputs, baseline, baseline_dir, family, baseline_dir is not None,
                                 fingerprint)
    result, cache_summary = cached_run(pipe, run, inputs, family.output)

    stats = {
        "status": "ok",
        "name": run_name(run),
        "model": run.model.name,
        "blocks": blocks,
        "overrides": overrides or [],
        "time_s": result.median_seconds,
        "times_s": result.seconds,
        "cache": cache_summary,
        "config": config,
        "host": socket.gethostname(),
        "torch_threads": torch.get_num_threads(),  # parallel launchers split the cores between jobs
        "compile": run.compile.value,
        "parallel": {"mode": run.parallel.mode.value, "degree": run.parallel.degree},
        **(extra or {}),
    }
    if cache_summary is not None:
        stats["ideal_speedup"] = 1 / max(1e-9, 1 - cache_summary["skipped_share"])
    if baseline is not None:
        stats["baseline_time_s"] = baseline.median_seconds
        stats["speedup"] = baseline.median_seconds / result.median_seconds
        stats["baseline_reused"] = baseline_source != "computed"  # computed once per (model, seed, steps, repeats)
        stats["baseline_source"] = baseline_source  # computed | memory (earlier job, same process) | disk (sweep dir)
        if reference:
            stats["fewer_steps"] = reference  # the uncached fewer-steps front this setting must beat

    # Outputs first: a metric that runs out of memory on a long video must not lose the images and timings.
    output_dir = Path(output_dir)
    writer = is_rank_zero()  # every rank holds the same gathered output and stats; one writes them
    if writer:
        output_dir.mkdir(parents=True, exist_ok=True)
        if run.save_images:
            _save_images(family, inputs, result, baseline, output_dir)
        write_json(output_dir / "stats.json", {**stats, "status": "measuring"})  # summaries list it as not finished
    if baseline is not None:
        stats["fidelity"] = fidelity(baseline.images, result.images)
    if family.quality is not None:
        stats["quality"] = family.quality(result.images, inputs)
        if baseline is not None:
            stats["baseline_quality"] = family.quality(baseline.images, inputs)
    if not writer:
        return stats
    write_json(output_dir / "stats.json", stats)
    log.info(one_line(stats))
    return stats


def _baseline(
    pipe, run: RunConfig, inputs: dict, baseline_dir: Path | None, output: str = "images", fingerprint: str | None = None
) -> tuple[Generation, str]:
    """The uncached run for this model, seed and step count, and where it came from: this process's memo (an
    earlier job of a serial sweep), `baseline_dir` (a job of a parallel launcher; a file lock makes the first
    job compute it while the others wait), or computed now. Timings then come from the job that computed it."""
    # run.model holds the step count, size, dtype and guidance; the fingerprint the weights and the scheduler.
    key = repr((run.model, run.seed, run.repeats, fingerprint or pipeline_fingerprint(pipe)))

    def load(path: Path) -> Generation:
        with np.load(path) as data:
            return Generation(data["images"], data["seconds"].tolist())

    def save(generation: Generation, path: Path) -> None:
        np.savez(path, images=generation.images, seconds=np.asarray(generation.seconds))

    compute = lambda: generate(pipe, inputs, run.seed, run.repeats, output)  # noqa: E731
    return _once(key, baseline_dir, ".npz", compute, load, save)


def fewer_steps_fractions(run: RunConfig, in_sweep: bool) -> list[float]:
    """`run.fewer_steps`, or by default the standard reference in a sweep and none in a single run."""
    if run.fewer_steps is not None:
        return list(run.fewer_steps)
    return list(DEFAULT_FEWER_STEPS) if in_sweep else []


def _fewer_steps(pipe, run: RunConfig, inputs: dict, baseline: Generation, baseline_dir: Path | None,
                 family, in_sweep: bool, fingerprint: str) -> list[dict]:
    """The same model uncached with fewer steps, scored against `baseline` like a cached run: the reference a cache
    must beat. Computed once per baseline (memo, or beside the sweep's baselines on disk) and shared by its jobs.
    Ideal speedup is steps / fewer steps: every step runs every block."""
    steps = inputs.get("num_inference_steps")
    fractions = fewer_steps_fractions(run, in_sweep)
    if not fractions or not isinstance(steps, int):  # a call without a step count (RFD4-Proteina) has no reference
        return []
    counts = sorted({max(1, round(f * steps)) for f in fractions} - {steps})
    key = repr(("fewer_steps", counts, run.model, run.seed, run.repeats, fingerprint))

    def compute() -> list[dict]:
        rows = []
        for count in tqdm(counts, desc="fewer steps (uncached reference)", leave=False):
            generation = generate(pipe, {**inputs, "num_inference_steps": count}, run.seed, run.repeats, family.output)
            scores = fidelity(baseline.images, generation.images)
            row = {"steps": count, "ideal_speedup": steps / count,
                   "speedup": baseline.median_seconds / generation.median_seconds,
                   **{k: scores[k] for k in ("psnr", "ssim", "max_abs_diff")}}
            if family.quality is not None:
                row.update(family.quality(generation.images, inputs))
            rows.append(row)
        return rows

    rows, _ = _once(key, baseline_dir, ".fewer_steps.json", compute, lambda path: json.loads(path.read_text()),
                    lambda rows, path: path.write_text(json.dumps(rows)))
    return rows


def _once(key: str, directory: Path | None, suffix: str, compute, load, save):
    """`compute()` once per `key`, and where the value came from: this process's memo, `directory` (shared by the
    processes of a parallel launcher: a file lock makes the first compute while the others wait), or computed."""
    if key in _BASELINES:
        return _BASELINES[key], "memory"
    if directory is None:
        _BASELINES[key] = compute()
        return _BASELINES[key], "computed"
    path = Path(directory) / f"{hashlib.sha1(key.encode()).hexdigest()[:16]}{suffix}"
    value, source = kept_on_disk(path, compute, load, save)
    _BASELINES[key] = value
    return value, source


def pipeline_fingerprint(pipe) -> str:
    """A digest of the pipeline's weights (every parameter's name, shape, dtype and sum) and scheduler config:
    a reused sweep directory must not serve a baseline made with other weights or another schedule."""
    digest = hashlib.sha1()
    scheduler = getattr(pipe, "scheduler", None)
    digest.update(repr(sorted(dict(getattr(scheduler, "config", {}) or {}).items())).encode())
    for component_name, component in sorted(getattr(pipe, "components", {}).items()):
        if isinstance(component, torch.nn.Module):
            for name, tensor in component.state_dict().items():
                total = float(tensor.detach().double().sum()) if tensor.is_floating_point() else int(tensor.sum())
                digest.update(f"{component_name}.{name}{tuple(tensor.shape)}{tensor.dtype}{total!r}".encode())
    return digest.hexdigest()[:16]


def write_failure(
    error: BaseException, output_dir: Path, config: dict | None = None, overrides: list[str] | None = None,
    extra: dict | None = None,
) -> dict:
    """Write ``stats.json`` with ``status: failed`` and the error for a job that raised; return those stats.

    Under torchrun only rank 0 writes ``stats.json``; another rank writes ``failure.rank<r>.json`` instead: its error
    is often the root cause (rank 0 then times out in a collective or is stopped by torchrun before it can write),
    and a rank-suffixed name never overwrites rank 0's record or passes for a job's stats in a sweep summary."""
    cache = (config or {}).get("cache") or {}
    stats = {
        "status": "failed",
        "error": f"{type(error).__name__}: {error}",
        "traceback": traceback.format_exception(type(error), error, error.__traceback__)[-6:],
        "name": cache.get("name", "unknown"),
        "model": ((config or {}).get("model") or {}).get("name", "unknown"),
        "overrides": overrides or [],
        "config": config,
        "host": socket.gethostname(),
        **(extra or {}),
    }
    rank = launch_rank()
    if rank != 0:
        stats["rank"] = rank
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    write_json(output_dir / ("stats.json" if rank == 0 else f"failure.rank{rank}.json"), stats)
    return stats


def write_json(path: Path, data: dict) -> None:
    """Write `data` to `path` atomically: a job killed mid-write leaves the old file or none, never half of one."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps(data, indent=2, default=str))
    os.replace(temporary, path)


def _save_images(family, inputs: dict, result: Generation, baseline: Generation | None, output_dir: Path) -> None:
    if family.output == "audios":  # waveforms (N, channels, samples): kept as they are
        np.save(output_dir / "audio.npy", result.images)
        if baseline is not None:
            np.save(output_dir / "baseline_audio.npy", baseline.images)
        return
    if result.images.ndim == 5:  # videos (N, F, H, W, C): the first video's frames side by side
        save_grid(result.images[0], output_dir / "image.png", len(result.images[0]))
        if baseline is not None:
            save_grid(baseline.images[0], output_dir / "baseline.png", len(baseline.images[0]))
        return
    rows = family.grid_rows(inputs) if family.grid_rows is not None else None
    ncols = len(result.images) // len(rows) if rows else min(len(result.images), 4)
    save_grid(result.images, output_dir / "image.png", ncols, rows)
    if baseline is not None:
        save_grid(baseline.images, output_dir / "baseline.png", ncols, rows)


def one_line(stats: dict) -> str:
    """``<model> <cache>: cached ..., speedup ..., PSNR ..., accuracy ...`` for the end of a run."""
    parts = [f"{stats['model']} {stats['name']}:"]
    parts.append(format_summary(stats["cache"]) if stats["cache"] else "no cache")
    if "speedup" in stats:
        parts.append(f"| speedup {stats['speedup']:.2f}x (ideal {stats['ideal_speedup']:.2f}x)")
        warning = speedup_warning(stats["speedup"], stats["ideal_speedup"])
        if warning:
            parts.append(f"-- {warning}")
        parts.append(f"| PSNR {stats['fidelity']['psnr']:.1f} dB, max diff {stats['fidelity']['max_abs_diff']:.3g}")
    else:
        parts.append(f"| {stats['time_s']:.2f} s")
    if "quality" in stats:
        quality = ", ".join(f"{k} {v:.3f}" for k, v in stats["quality"].items())
        if "baseline_quality" in stats:
            quality += " (uncached " + ", ".join(f"{v:.3f}" for v in stats["baseline_quality"].values()) + ")"
        parts.append(f"| {quality}")
    return " ".join(parts)
