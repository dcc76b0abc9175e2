"""Context parallelism (one image or video split across ranks) and the one reduction every cache decision uses.

Under context parallelism each rank holds a shard of the sequence, so a metric measured on the local shard differs
between ranks; ranks that decide differently run different collectives and hang. `reduce_metric` sums a metric's
numerator and denominator over the context-parallel group in one collective, so every rank computes the metric of the
whole sequence and decides as one process would (DESIGN.md §5b). Engines never call torch.distributed themselves.
"""

from __future__ import annotations

import contextlib
import os
from datetime import timedelta

import torch
import torch.distributed as dist

from .configs import ParallelConfig, ParallelMode

__all__ = [
    "local_metrics", "context_parallel_group", "reduce_metric", "is_rank_zero", "launch_rank",
    "broadcast_from_rank_zero", "check_parallel", "init_process_group", "enable_context_parallel"
]


_LOCAL_METRICS: list[list[float]] = []  # open `local_metrics()` recorders


@contextlib.contextmanager
def local_metrics():
    """Collect this rank's metrics before the reduction (what a rank deciding alone would see); for diagnostics."""
    values: list[float] = []
    _LOCAL_METRICS.append(values)
    try:
        yield values
    finally:
        _LOCAL_METRICS.remove(values)


def context_parallel_group(transformer: torch.nn.Module):
    """The process group that shards `transformer`'s sequence (diffusers' ``enable_parallelism``), else None."""
    parallel = getattr(transformer, "_parallel_config", None)
    cp = getattr(parallel, "context_parallel_config", None)
    mesh = getattr(cp, "_flattened_mesh", None)
    if mesh is None or mesh.size() == 1:
        return None
    return mesh.get_group()


@torch.compiler.disable
def reduce_metric(numerator: torch.Tensor, denominator: torch.Tensor, group=None) -> float:
    """``numerator / denominator`` of sums over every rank of `group` (None: this process alone); one host sync.

    Pass sums, not means: shards of one sequence may differ in size, and the ratio of sums is the metric of the
    unsharded tensor."""
    pair = torch.stack([numerator.float(), denominator.float()])
    if _LOCAL_METRICS:
        local = pair.tolist()
        for values in _LOCAL_METRICS:
            values.append(local[0] / max(local[1], 1e-12))
    if group is not None:
        dist.all_reduce(pair, op=dist.ReduceOp.SUM, group=group)
    numerator, denominator = pair.tolist()
    return numerator / max(denominator, 1e-12)


# ---------------------------------------------------------------- launching under torchrun


def is_rank_zero() -> bool:
    """True outside torch.distributed and on global rank 0: only that rank writes outputs and stats."""
    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


def launch_rank() -> int:
    """This process's global rank: the process group's, else torchrun's ``RANK`` (set before any group exists)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank()
    return int(os.environ.get("RANK", "0"))


def broadcast_from_rank_zero(value):
    """Rank 0's `value` on every rank of the default group (one object broadcast); `value` itself outside one."""
    if not (dist.is_available() and dist.is_initialized()):
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def check_parallel(parallel: ParallelConfig, device: str) -> None:
    """Checks that need no process group and no weights, so a bad setting fails before any work."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if parallel.mode == ParallelMode.none:
        if world > 1:  # every process would run the whole generation alone and each write a run of its own
            raise ValueError(
                f"{world} processes were launched with `parallel=none`; set `parallel=ulysses parallel.degree={world}` "
                "to split one generation across them, or launch a single process."
            )
        return
    if parallel.mode == ParallelMode.ring and torch.device(device).type == "cpu":
        raise ValueError(
            "`parallel=ring` needs an attention backend that returns the log-sum-exp (LSE) of each block, and "
            "diffusers' `native` backend, the only one that runs on CPU, cannot. Use `parallel=ulysses` on CPU, or "
            "ring on a GPU with a flash attention backend."
        )
    if parallel.degree != world:
        raise ValueError(
            f"`parallel.degree={parallel.degree}` must equal the number of processes ({world}); launch with "
            f"`torchrun --nproc_per_node={parallel.degree} -m runners.generate parallel={parallel.mode.value} ...`."
        )


def init_process_group(device: str, timeout_s: float) -> None:
    """Join the group torchrun started (gloo on CPU, nccl on CUDA); a short timeout turns a hang into an error."""
    if dist.is_initialized():
        return
    backend = "gloo" if torch.device(device).type == "cpu" else "nccl"
    dist.init_process_group(backend, timeout=timedelta(seconds=timeout_s))
    if torch.device(device).type == "cuda":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))


@contextlib.contextmanager
def _device_count_at_least_one():
    """diffusers' `_resolve_parallel_config` picks ``rank % torch.accelerator.device_count()``, which divides by
    zero on a machine without an accelerator (CPU/gloo); the CPU device has no index, so 1 is the honest count."""
    original = torch.accelerator.device_count
    if original() > 0:
        yield
        return
    torch.accelerator.device_count = lambda: 1
    try:
        yield
    finally:
        torch.accelerator.device_count = original


def enable_context_parallel(transformer: torch.nn.Module, parallel: ParallelConfig) -> None:
    """Shard `transformer`'s sequence over the process group with diffusers' `ContextParallelConfig`."""
    from diffusers import ContextParallelConfig

    if getattr(type(transformer), "_cp_plan", None) is None:
        raise ValueError(
            f"{type(transformer).__name__} has no context-parallel plan in diffusers (`_cp_plan`), so "
            f"`parallel={parallel.mode.value}` cannot shard it; use `parallel=none` or a model that has one "
            "(e.g. `model=flux`)."
        )
    degrees = {"ulysses_degree": parallel.degree} if parallel.mode == ParallelMode.ulysses else {"ring_degree": parallel.degree}
    with _device_count_at_least_one():
        transformer.enable_parallelism(config=ContextParallelConfig(**degrees))
