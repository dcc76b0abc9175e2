"""Context parallelism in forked processes: two gloo ranks that start in a second, not two fresh interpreters.

`run_ranks` forks one process per rank (they inherit the imported torch and diffusers), joins the gloo group through
a file store with a short collective timeout, runs `work(rank, world)` and saves what it returns; the parent waits
with its own deadline and kills every rank past it, so a test can never hang on ranks that disagree.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import traceback
from datetime import timedelta
from pathlib import Path

import torch
import torch.distributed as dist

from cachedit import cache, compiling, distributed
from cachedit.caches import DBCacheConfig
from cachedit.configs import ParallelConfig, TaylorSeerConfig
from cachedit.zoo.model_config import ModelConfig
from cachedit.zoo.entries import get_entry
from cachedit.harness.pipelines import load_pipeline


def _rank_main(rank: int, world: int, tmp: Path, work, collective_timeout_s: float) -> None:
    code = 1
    try:
        torch.set_num_threads(1)  # OpenMP pools are not fork-safe; one thread per rank also fits the shared cores
        torch._dynamo.reset()  # nothing compiled in the parent applies here
        dist.init_process_group("gloo", init_method=f"file://{tmp / 'store'}", rank=rank, world_size=world,
                                timeout=timedelta(seconds=collective_timeout_s))
        result = work(rank, world)
        (tmp / f"rank{rank}.pkl").write_bytes(pickle.dumps(result))
        dist.destroy_process_group()
        code = 0
    except BaseException:
        (tmp / f"rank{rank}.err").write_text(traceback.format_exc())
    finally:
        os._exit(code)  # never run the parent's (pytest's) exit handlers in a forked child


def run_ranks(work, tmp: Path, world: int = 2, deadline_s: float = 90.0, collective_timeout_s: float = 30.0) -> list:
    """What `work(rank, world)` returned on each rank; raises with the ranks' tracebacks if any failed or hung."""
    context = multiprocessing.get_context("fork")
    processes = [context.Process(target=_rank_main, args=(r, world, tmp, work, collective_timeout_s)) for r in range(world)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(deadline_s)  # the ranks run side by side: one deadline covers them all
    hung = [r for r, p in enumerate(processes) if p.is_alive()]
    for process in processes:
        if process.is_alive():
            process.kill()
            process.join()
    errors = {r: (tmp / f"rank{r}.err").read_text() for r in range(world) if (tmp / f"rank{r}.err").exists()}
    if hung or errors:
        raise AssertionError(f"ranks {hung} still running after {deadline_s} s; errors: {errors}")
    return [pickle.loads((tmp / f"rank{r}.pkl").read_bytes()) for r in range(world)]


# ---------------------------------------------------------------- the tiny FLUX: true CFG, so two branches per step


def tiny_flux(steps: int):
    model = ModelConfig(name="tiny_flux", source="embedded", num_inference_steps=steps, num_images=1,
                        class_labels=[3], guidance_scale=1.5, device="cpu")
    pipe = load_pipeline(model)
    pipe.set_progress_bar_config(disable=True)
    return pipe, dict(get_entry("tiny_flux").inputs(pipe, model))


def cp_cache_config(threshold: float, taylorseer: bool) -> tuple[DBCacheConfig, TaylorSeerConfig]:
    """F1B0: block 0 decides for the other eleven. TaylorSeer needs two computed steps before it forecasts."""
    warmup = 2 if taylorseer else 1
    return (DBCacheConfig(Fn=1, Bn=0, residual_diff_threshold=threshold, max_warmup_steps=warmup),
            TaylorSeerConfig(order=1 if taylorseer else 0))


def cached_call(pipe, inputs: dict, threshold: float, taylorseer: bool) -> tuple[torch.Tensor, dict[str, str]]:
    """Latents and decision string per branch (`transformer/cond`, `transformer/uncond`) of one cached call."""
    config, forecast = cp_cache_config(threshold, taylorseer)
    cache.enable_cache(pipe, config, taylorseer=forecast)
    try:
        latents = pipe(**{**inputs, "output_type": "latent"}, generator=torch.Generator().manual_seed(0)).images
        return latents, {name: branch["decisions"] for name, branch in cache.summary(pipe)["branches"].items()}
    finally:
        cache.disable_cache(pipe)


def split_threshold(local: list[list[float]], skip: int) -> tuple[int, float]:
    """The metric (index into each rank's list, after the first `skip`) where two ranks' local values differ most,
    and the threshold halfway between them: a rank deciding on its own shard would disagree with the other."""
    gaps = [abs(local[0][i] - local[1][i]) for i in range(skip, len(local[0]))]
    split = skip + max(range(len(gaps)), key=gaps.__getitem__)
    return split, (local[0][split] + local[1][split]) / 2


def cp_cached(steps: int, taylorseer: bool, backend=None):
    """`work` for `run_ranks`: tiny FLUX (true CFG: cond and uncond branches) over ulysses ranks, DBCache (+ TaylorSeer)
    (+ regional compile with `backend`), at a threshold that splits the ranks' local metrics."""
    warmup = cp_cache_config(0.0, taylorseer)[0].max_warmup_steps
    skip = 2 * (warmup - 1)  # metrics of steps 1 .. warmup-1, both branches: no decision can depend on them

    def work(rank: int, world: int) -> dict:
        from torch._dynamo.utils import counters

        pipe, inputs = tiny_flux(steps)
        distributed.enable_context_parallel(pipe.transformer, ParallelConfig(mode="ulysses", degree=world))
        with distributed.local_metrics() as local:
            cached_call(pipe, inputs, 0.0, taylorseer)  # computes every step: the ranks cannot diverge here
        gathered = [None] * world
        dist.all_gather_object(gathered, local)
        split, threshold = split_threshold(gathered, skip)
        if backend is not None:
            compiling.compile(pipe, "regional", backend=backend)
        counters.clear()
        latents, decisions = cached_call(pipe, inputs, threshold, taylorseer)
        return {"local": local, "split": split, "threshold": threshold, "decisions": decisions, "latents": latents,
                "graph_breaks": sum(counters["graph_break"].values()),
                "graphs": counters["stats"]["unique_graphs"]}

    return work
