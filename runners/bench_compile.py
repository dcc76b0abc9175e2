"""Regional compile against eager, with the run's cache and without: medians of interleaved repeats, graph breaks,
compiled graphs (a recompile adds one), output differences and decisions.

    python -m runners.bench_compile repeats=5                                  # embedded tiny DiT, DBCache
    python -m runners.bench_compile model=flux model.source=replica model.height=128 model.width=128 repeats=5
    python -m runners.bench_compile cache=forecast taylorseer=none             # any cache setting of runners.generate

Same config as runners.generate (model, cache, taylorseer, cfg, seed, repeats). Two copies of the pipeline, one
compiled (`cachedit.compile(pipe, "regional")`, inductor), run in turn each repeat: eager uncached, compiled uncached,
eager cached, compiled cached, so the machine's drifts hit all four alike. The compiled copy is a deep copy of the
eager pipeline (loading twice would share an embedded model's transformer). The first compiled calls (compilation)
are untimed. Writes compile_bench.json into the run directory and prints the table with the load average.
"""

import copy
import dataclasses
import json
import os
import statistics
import sys
import time
from pathlib import Path

import hydra
import numpy as np
import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf
from torch._dynamo.utils import counters

import cachedit
from runners.conf_store import register_configs
from cachedit.caches import NoCacheConfig
from cachedit.harness.runs import cached_run, preflight
from cachedit.zoo.entries import get_entry
from cachedit.harness.pipelines import load_pipeline
from runners.overrides import check_overrides

register_configs()


def _compile_counts() -> dict:
    return {"graph_breaks": sum(counters["graph_break"].values()), "graphs": counters["stats"]["unique_graphs"]}


@hydra.main(version_base="1.3", config_path="../conf", config_name="generate")
def main(config: DictConfig) -> dict:
    run = OmegaConf.to_object(config)
    if isinstance(run.cache, NoCacheConfig):
        raise ValueError("`runners.bench_compile` compares cached and uncached runs: choose a cache (e.g. cache=dbcache).")
    preflight(run)
    entry = get_entry(run.model.name)
    eager = load_pipeline(run.model)
    # A copy, not a second load: embedded models share one transformer between loads, which would compile both.
    pipes = {"eager": eager, "regional": copy.deepcopy(eager)}
    if pipes["regional"].transformer is eager.transformer:
        raise RuntimeError("the copied pipeline shares the eager one's transformer; compiling it would compile both")
    for pipe in pipes.values():
        pipe.set_progress_bar_config(disable=True)
    inputs = entry.inputs(pipes["eager"], run.model)
    torch._dynamo.reset()
    counters.clear()
    cachedit.compile(pipes["regional"], "regional")
    uncached = dataclasses.replace(run, cache=NoCacheConfig(), repeats=1)
    cached = dataclasses.replace(run, repeats=1)

    start = time.perf_counter()
    for setting in (uncached, cached):  # compiles (and warms up) outside the timed repeats
        for pipe in pipes.values():
            cached_run(pipe, setting, inputs, entry.output)
    warm_s = time.perf_counter() - start
    after_warm_up = _compile_counts()

    rows = {(mode, name): [] for name in ("uncached", "cached") for mode in pipes}
    results = {}
    load_before = os.getloadavg()
    for _ in range(run.repeats):
        for (mode, name), seconds in rows.items():
            generation, summary = cached_run(pipes[mode], uncached if name == "uncached" else cached, inputs, entry.output)
            seconds.append(generation.median_seconds)
            results[mode, name] = (generation.images, summary)
    load_after = os.getloadavg()

    def decisions(summary) -> dict:
        return {branch: value["decisions"] for branch, value in summary["branches"].items()}

    medians = {f"{mode} {name}": statistics.median(seconds) for (mode, name), seconds in rows.items()}
    report = {
        "model": run.model.name, "steps": run.model.num_inference_steps, "cache": run.cache.strify(),
        "repeats": run.repeats, "torch_threads": torch.get_num_threads(),
        "load_avg_1m_before_after": [load_before[0], load_after[0]],
        "median_s": medians,
        "eager_over_regional": {name: medians[f"eager {name}"] / medians[f"regional {name}"] for name in ("uncached", "cached")},
        "first_calls_s": warm_s,  # compilation included
        "after_warm_up": after_warm_up,
        "after_all_calls": _compile_counts(),  # more graphs than after the warm-up = a recompile in the timed calls
        "max_abs_diff_regional_vs_eager": {
            name: float(np.abs(results["regional", name][0] - results["eager", name][0]).max()) for name in ("uncached", "cached")},
        "decisions": {mode: decisions(results[mode, "cached"][1]) for mode in pipes},
    }
    output_dir = Path(HydraConfig.get().runtime.output_dir)
    (output_dir / "compile_bench.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    check_overrides(sys.argv[1:], "generate")
    main()
