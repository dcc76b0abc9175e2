"""`python -m runners.generate` end to end, through a subprocess, into temporary directories."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FLUX_SMALL = [
    "model=flux", "model.source=replica", "model.height=64", "model.width=64", "model.num_inference_steps=6",
    "cache.Fn=2", "cache.max_warmup_steps=1",
]


def generate(*overrides: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "HYDRA_FULL_ERROR": "0"}
    result = subprocess.run(
        [sys.executable, "-m", "runners.generate", *overrides], cwd=ROOT, env=env, capture_output=True, text=True
    )
    if check and result.returncode != 0:
        raise AssertionError(f"runner failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def test_a_run_writes_images_and_stats(tmp_path):
    result = generate(*FLUX_SMALL, "cache.residual_diff_threshold=1.0", f"hydra.run.dir={tmp_path}")
    stats = json.loads((tmp_path / "stats.json").read_text())
    assert {p.name for p in tmp_path.iterdir()} >= {"image.png", "baseline.png", "stats.json"}
    assert stats["status"] == "ok" and stats["name"].startswith("DBCache_F2B0")
    assert stats["config"]["cache"]["Fn"] == 2 and "cache.Fn=2" in stats["overrides"]
    cache = stats["cache"]
    assert cache["steps"] == 6 and 0 < cache["cached_steps"] == cache["branches"]["transformer/cond"]["decisions"].count("c")
    assert len(cache["branches"]["transformer/cond"]["diffs"]) == 6
    assert stats["speedup"] > 0 and stats["baseline_time_s"] > 0
    assert 0 < stats["fidelity"]["psnr"] < float("inf") and stats["fidelity"]["max_abs_diff"] > 0
    assert f"cached {cache['cached_steps']}/6 steps" in result.stdout  # the one-line summary


def test_threshold_zero_run_matches_its_baseline_exactly(tmp_path):
    generate(*FLUX_SMALL, "cache.residual_diff_threshold=0", f"hydra.run.dir={tmp_path}")
    stats = json.loads((tmp_path / "stats.json").read_text())
    assert stats["cache"]["cached_steps"] == 0
    assert stats["fidelity"]["max_abs_diff"] == 0 and stats["fidelity"]["psnr"] == float("inf")


@pytest.mark.slow  # a fresh Python process per job: the default suite keeps the in-process checks
def test_a_video_family_saves_the_first_videos_frames_and_compares_every_frame(tmp_path):
    from PIL import Image

    generate("model=wan", "model.source=replica", "model.num_inference_steps=4", "cache.Fn=1",
             "cache.max_warmup_steps=1", "cache.residual_diff_threshold=2.0", f"hydra.run.dir={tmp_path}")
    stats = json.loads((tmp_path / "stats.json").read_text())
    assert stats["status"] == "ok" and stats["cache"]["cached_steps"] > 0
    assert stats["fidelity"]["frames"] == 5 and stats["fidelity"]["max_abs_diff"] > 0  # the replica's 5 frames
    with Image.open(tmp_path / "image.png") as grid, Image.open(tmp_path / "baseline.png") as baseline:
        assert grid.size == baseline.size and grid.width > 4 * grid.height  # 5 frames side by side, one row


@pytest.mark.slow  # a fresh Python process per job: the default suite keeps the in-process checks
def test_a_modular_only_family_runs_through_the_runner(tmp_path):
    # FLUX.3 exists only as a Modular Diffusers pipeline: two guidance branches of 4 steps, decoded 64 px images.
    generate("model=flux3", "model.source=replica", "model.num_inference_steps=4", "cache.Fn=1",
             "cache.max_warmup_steps=1", "cache.residual_diff_threshold=2.0", f"hydra.run.dir={tmp_path}")
    stats = json.loads((tmp_path / "stats.json").read_text())
    assert stats["status"] == "ok" and stats["cache"]["steps"] == 8 and stats["cache"]["cached_steps"] > 0
    assert stats["fidelity"]["max_abs_diff"] > 0 and (tmp_path / "image.png").is_file()


def test_a_bad_key_fails_before_any_work_and_names_the_allowed_keys(tmp_path):
    result = generate(*FLUX_SMALL, "cache.residual_diff_treshold=0.1", f"hydra.run.dir={tmp_path}", check=False)
    assert result.returncode == 2
    assert "Did you mean `cache.residual_diff_threshold`?" in result.stderr
    assert not (tmp_path / "stats.json").exists()


def test_a_multirun_runs_one_job_per_threshold(tmp_path):
    generate("--multirun", *FLUX_SMALL, "cache.residual_diff_threshold=0,1.0", f"hydra.sweep.dir={tmp_path}")
    stats = sorted(tmp_path.rglob("stats.json"))
    assert len(stats) == 2
    cached = sorted(json.loads(p.read_text())["cache"]["cached_steps"] for p in stats)
    assert cached[0] == 0 and cached[1] > 0
    assert {p.parent.name for p in stats} == {"seed=0"}  # <job>_<overrides>/seed=<seed> folders
