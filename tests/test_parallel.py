"""Context parallelism: two gloo ranks decide alike and reproduce the single-process cached output."""

import json
import os
import subprocess
import sys

import pytest
import torch

from cachedit.caches import DBCacheConfig
from cachedit.configs import ParallelConfig
from cachedit.zoo.model_config import ModelConfig
from cachedit.harness.run_config import RunConfig
from cachedit.distributed import check_parallel, local_metrics, reduce_metric
from cachedit.harness.runs import preflight
from cachedit.harness.parallel_check import cached_run, flux_replica
from tests.helpers.parallel import cached_call, cp_cached, run_ranks, tiny_flux

STEPS = 6


def _assert_split_and_single_process_decisions(ranks: list[dict], steps: int, taylorseer: bool) -> None:
    split, threshold = ranks[0]["split"], ranks[0]["threshold"]
    local = sorted(rank["local"][split] for rank in ranks)
    assert local[0] < threshold < local[1]  # alone, one rank would skip this step and the other compute it
    assert ranks[0]["decisions"] == ranks[1]["decisions"]
    pipe, inputs = tiny_flux(steps)
    expected, decided = cached_call(pipe, inputs, threshold, taylorseer)  # one process, eager
    assert set(decided) == {"transformer/cond", "transformer/uncond"}  # true CFG: two branches, each deciding
    assert ranks[0]["decisions"] == decided and any("c" in d for d in decided.values())
    for rank in ranks:
        assert torch.allclose(rank["latents"], expected, atol=1e-5), (rank["latents"] - expected).abs().max()


def test_two_forked_ulysses_ranks_with_true_cfg_decide_as_one_process(tmp_path):
    # Forked ranks share the imported diffusers: ~10 s, so the default suite holds one real context-parallel run.
    ranks = run_ranks(cp_cached(steps=4, taylorseer=False), tmp_path, deadline_s=90, collective_timeout_s=30)
    _assert_split_and_single_process_decisions(ranks, 4, taylorseer=False)


# eager: dynamo captures the blocks (breaks and graphs counted), ~30 s; inductor also generates code for them on each
# rank, ~4 min on 2 shared cores under load.
@pytest.mark.slow
@pytest.mark.parametrize("backend", ["eager", "inductor"])
def test_context_parallel_cache_taylorseer_cfg_and_regional_compile_together(tmp_path, backend):
    ranks = run_ranks(cp_cached(steps=6, taylorseer=True, backend=backend), tmp_path, deadline_s=540,
                      collective_timeout_s=180)
    _assert_split_and_single_process_decisions(ranks, 6, taylorseer=True)
    for rank in ranks:
        assert rank["graph_breaks"] == 0  # the decisions and the reduction stay outside the compiled blocks
        assert rank["graphs"] <= 4  # one per block class, at most one recompile each (dynamic shapes): none per call


@pytest.mark.slow  # two processes each import diffusers and build the replica: ~85 s on 2 shared cores
def test_two_ulysses_ranks_decide_alike_at_a_threshold_that_splits_their_local_metrics(tmp_path):
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
               "-m", "cachedit.harness.parallel_check", str(tmp_path), str(STEPS)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    # The ranks' collective timeout is 60 s; this one bounds start-up and a wedged launcher.
    done = subprocess.run(command, capture_output=True, text=True, timeout=240, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    split, threshold = ranks[0]["split_step"], ranks[0]["threshold"]
    local = sorted(rank["local"][split] for rank in ranks)
    assert local[0] < threshold < local[1]  # alone, one rank would skip this step and the other compute it
    assert ranks[0]["decisions"] == ranks[1]["decisions"]
    assert "c" in ranks[0]["decisions"]

    pipe, inputs = flux_replica(STEPS)
    expected, decided = cached_run(pipe, inputs, threshold)
    assert ranks[0]["decisions"] == decided
    for r in (0, 1):
        assert torch.allclose(torch.load(tmp_path / f"rank{r}.pt"), expected, atol=1e-4)


def test_reduce_metric_without_a_group_is_the_ratio_of_sums_and_records_local_values():
    with local_metrics() as seen:
        value = reduce_metric(torch.tensor(3.0), torch.tensor(4.0))
    assert value == 0.75 and seen == [0.75]
    assert reduce_metric(torch.tensor(1.0), torch.tensor(4.0)) == 0.25 and seen == [0.75]


def _run(parallel: ParallelConfig, **overrides) -> RunConfig:
    return RunConfig(model=ModelConfig(name="flux", source="replica", device="cpu"), cache=DBCacheConfig(), parallel=parallel, **overrides)


def test_ring_on_cpu_is_refused_before_any_work_and_says_why():
    with pytest.raises(ValueError, match=r"`parallel=ring` needs .*log-sum-exp.*`parallel=ulysses` on CPU"):
        preflight(_run(ParallelConfig(mode="ring", degree=2)))


def test_a_degree_that_differs_from_the_launched_processes_is_refused(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "1")
    with pytest.raises(ValueError, match=r"`parallel.degree=2` must equal the number of processes \(1\).*torchrun --nproc_per_node=2"):
        check_parallel(ParallelConfig(mode="ulysses", degree=2), "cpu")


def test_bad_parallel_values_name_the_key_and_the_allowed_values():
    with pytest.raises(ValueError, match=r"`parallel.mode` must be one of \['none', 'ulysses', 'ring'\], got 'tree'"):
        ParallelConfig(mode="tree")
    with pytest.raises(ValueError, match=r"`parallel.degree=2` needs `parallel=ulysses` or `parallel=ring`"):
        ParallelConfig(degree=2)


def test_a_transformer_without_a_context_parallel_plan_is_refused():
    from cachedit.distributed import enable_context_parallel
    from cachedit.zoo.tiny_dit import load_tiny_dit

    with pytest.raises(ValueError, match=r"DiTTransformer2DModel has no context-parallel plan"):
        enable_context_parallel(load_tiny_dit().transformer, ParallelConfig(mode="ulysses", degree=2))


def test_several_processes_with_parallel_none_are_refused(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(ValueError, match=r"2 processes were launched with `parallel=none`; set `parallel=ulysses parallel.degree=2`"):
        check_parallel(ParallelConfig(), "cpu")


def test_a_failure_on_a_nonzero_rank_is_written_under_a_rank_suffixed_name(tmp_path, monkeypatch):
    from cachedit.harness.runs import write_failure

    monkeypatch.setenv("RANK", "1")  # as torchrun sets it; no process group in this test
    stats = write_failure(RuntimeError("out of memory"), tmp_path, {"model": {"name": "flux"}})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["failure.rank1.json"]  # rank 0's stats.json stays its own
    assert json.loads((tmp_path / "failure.rank1.json").read_text())["error"] == "RuntimeError: out of memory"
    assert stats["rank"] == 1
    monkeypatch.setenv("RANK", "0")
    write_failure(RuntimeError("timeout"), tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["failure.rank1.json", "stats.json"]


def test_a_nonzero_rank_runs_hydra_in_a_scratch_directory_of_its_own(monkeypatch):
    from runners.generate import _quiet_nonzero_rank

    argv = ["generate.py", "parallel=ulysses", "hydra.run.dir=outputs/mine"]
    monkeypatch.setenv("RANK", "0")
    assert _quiet_nonzero_rank(argv) == argv
    monkeypatch.setenv("RANK", "1")
    quiet = _quiet_nonzero_rank(argv)
    run_dirs = [arg.split("=", 1)[1] for arg in quiet if arg.startswith("hydra.run.dir=")]
    assert len(run_dirs) == 1 and "cachedit-rank1-" in run_dirs[0]  # never the shared dir, never `${unique_dir:}`
    assert os.path.isdir(run_dirs[0]) and "hydra.output_subdir=null" in quiet
