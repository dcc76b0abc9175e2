"""Context-parallel DBCache on the FLUX replica, one process per rank, as the tests and the README table run it:

    torchrun --nproc_per_node=2 -m cachedit.harness.parallel_check OUT_DIR [STEPS]

Each rank writes ``rank<r>.json`` (its local metric at every step, the threshold, its decision string) and
``rank<r>.pt`` (its output). The threshold is picked between the two ranks' *local* metrics at one step, so a rank
that decided on its own shard would disagree with the other and hang; with `reduce_metric` both decide alike.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
import torch.distributed as dist

from .. import distributed
from ..cache import disable_cache, enable_cache, summary
from ..caches import DBCacheConfig
from ..configs import ParallelConfig
from ..zoo.model_config import ModelConfig
from ..zoo.entries import get_entry
from .pipelines import load_pipeline


def flux_replica(steps: int):
    model = ModelConfig(name="flux", source="replica", num_inference_steps=steps, height=64, width=64, device="cpu")
    pipe = load_pipeline(model)
    return pipe, get_entry("flux").inputs(pipe, model)


def cached_run(pipe, inputs: dict, threshold: float) -> tuple[torch.Tensor, str]:
    """Latents and decision string ("C" computed, "c" cached) of one cached call."""
    enable_cache(pipe, DBCacheConfig(Fn=1, Bn=0, residual_diff_threshold=threshold, max_warmup_steps=1))
    try:
        latents = pipe(**{**inputs, "output_type": "latent"}, generator=torch.Generator().manual_seed(0)).images
        return latents, "|".join(branch["decisions"] for branch in summary(pipe)["branches"].values())
    finally:
        disable_cache(pipe)


def main(out: Path, steps: int) -> None:
    distributed.init_process_group("cpu", timeout_s=60)
    rank = dist.get_rank()
    pipe, inputs = flux_replica(steps)
    distributed.enable_context_parallel(pipe.transformer, ParallelConfig(mode="ulysses", degree=dist.get_world_size()))
    with distributed.local_metrics() as local:
        cached_run(pipe, inputs, threshold=0.0)  # computes every step: no rank can diverge
    gathered = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, local)
    gaps = [abs(gathered[0][i] - gathered[1][i]) for i in range(len(local))]
    split = max(range(len(local)), key=gaps.__getitem__)  # the step where the ranks' local metrics differ most
    threshold = (gathered[0][split] + gathered[1][split]) / 2
    latents, decided = cached_run(pipe, inputs, threshold)
    out.mkdir(parents=True, exist_ok=True)
    report = {"rank": rank, "local": local, "split_step": split, "threshold": threshold, "decisions": decided}
    (out / f"rank{rank}.json").write_text(json.dumps(report))
    torch.save(latents, out / f"rank{rank}.pt")
    dist.destroy_process_group()


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 6)
