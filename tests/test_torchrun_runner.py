"""`runners.generate` under torchrun: two gloo ranks, one run directory written by rank 0 only."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# The tiny FLUX (true CFG) has a context-parallel plan; 3 steps keep each rank's run to a few seconds.
ARGS = ["model=tiny_flux", "model.num_inference_steps=3", "model.num_images=1", "model.class_labels=[3]",
        "cache=dbcache", "cache.Fn=1", "cache.Bn=0", "cache.max_warmup_steps=1", "parallel=ulysses",
        "parallel.timeout_s=30"]  # a collective timeout short enough that ranks which disagree fail, not hang


def _torchrun(module: str, args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", module, *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    # Bounds start-up (two interpreters importing diffusers) and a wedged launcher; the ranks' own timeout is 30 s.
    return subprocess.run(command, capture_output=True, text=True, timeout=300, env=env, cwd=cwd)


@pytest.mark.slow  # two fresh interpreters import diffusers and run baseline + cached: ~40 s on 2 shared cores
def test_only_rank_zero_writes_one_run_directory_under_the_default_run_dir(tmp_path):
    done = _torchrun("runners.generate", ARGS, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    runs = [path for path in (tmp_path / "outputs" / "runs").glob("*/*")]
    assert len(runs) == 1, runs  # rank 1 resolved `${unique_dir:...}` too, but claimed nothing
    files = {path.name for path in runs[0].iterdir()}
    assert {"stats.json", "image.png", "baseline.png", ".hydra"} <= files and not any("rank" in f for f in files)
    stats = json.loads((runs[0] / "stats.json").read_text())
    assert stats["status"] == "ok" and stats["parallel"] == {"mode": "ulysses", "degree": 2}
    assert set(stats["cache"]["branches"]) == {"transformer/cond", "transformer/uncond"}


@pytest.mark.slow  # as above, once more
def test_a_failure_on_rank_one_is_reported_beside_rank_zero_outputs(tmp_path):
    run_dir = tmp_path / "run"
    done = _torchrun("tests.helpers.failing_rank", [*ARGS, f"hydra.run.dir={run_dir}"], cwd=ROOT)
    assert done.returncode != 0
    report = json.loads((run_dir / "failure.rank1.json").read_text())
    assert report["status"] == "failed" and report["rank"] == 1
    assert report["error"] == "RuntimeError: injected failure on rank 1"
    # Rank 0's stats.json, if torchrun let it write one before stopping it, holds its own error (its peer closed the
    # connection, or a collective timed out), never rank 1's.
    if (run_dir / "stats.json").exists():
        assert "injected" not in (run_dir / "stats.json").read_text()
    assert sorted(p.name for p in run_dir.iterdir() if p.name.startswith("failure")) == ["failure.rank1.json"]
