"""Sweeps end in an answer: per-job stats that survive failures, the summary files, collect, tuning presets.

Each test runs ``python -m runners.generate --multirun`` in a subprocess into ``tmp_path``, on the embedded tiny
DiT made small (2 images per digit, 10 steps), so a job takes about a second after start-up.
"""

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.types import RunMode

from runners.conf_store import register_configs
from runners import collect

ROOT = Path(__file__).resolve().parents[1]
TINY = ["model.num_images=2", "model.num_inference_steps=10", "cache=fbcache", "cache.max_warmup_steps=2"]
PNG = b"\x89PNG\r\n\x1a\n"


def run(*args: str, module: str = "runners.generate", check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "HYDRA_FULL_ERROR": "0"}
    result = subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, env=env, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(f"{module} failed ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.parametrize("preset", sorted(p.stem for p in (ROOT / "conf" / "sweep").glob("*.yaml")))
def test_every_sweep_preset_is_a_multirun_with_its_command_on_top(preset):
    text = (ROOT / "conf" / "sweep" / f"{preset}.yaml").read_text()
    assert text.startswith(f"# @package _global_\n# python -m runners.generate sweep={preset}")
    register_configs()
    GlobalHydra.instance().clear()
    with initialize_config_dir(version_base="1.3", config_dir=str(ROOT / "conf")):
        config = compose("generate", overrides=[f"sweep={preset}"], return_hydra_config=True)
    GlobalHydra.instance().clear()
    assert config.hydra.mode == RunMode.MULTIRUN and len(config.hydra.sweeper.params) >= 1


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> Path:
    """Three jobs, the third with Fn larger than tiny_dit's 6 blocks: it must fail alone."""
    sweep_dir = tmp_path_factory.mktemp("sweep")
    result = run("--multirun", *TINY, "cache.residual_diff_threshold=0.3", "cache.Fn=1,2,99",
                 f"hydra.sweep.dir={sweep_dir}", check=False)
    assert result.returncode == 1 and (sweep_dir / "summary.md").exists()  # non-zero, after writing the summary
    return sweep_dir


def test_a_sweep_writes_one_summary_row_per_job_and_the_plots(sweep):
    rows = read_csv(sweep / "summary.csv")
    assert [r["job"] for r in rows] == ["0", "1", "2"]
    assert [r["Fn"] for r in rows] == ["1", "2", "99"]
    for name in ("pareto.png", "grid.png"):
        assert (sweep / name).read_bytes()[:8] == PNG
    table = (sweep / "summary.md").read_text()
    assert "3 jobs with stats: 2 ok, 1 failed" in table and "## Pareto front" in table


def test_a_failing_job_is_recorded_and_the_others_complete(sweep):
    rows = read_csv(sweep / "summary.csv")
    assert [r["status"] for r in rows] == ["ok", "ok", "failed"]
    assert "`Fn` + `Bn` = 99 + 0" in rows[2]["error"]
    failed = json.loads((sweep / rows[2]["dir"] / "stats.json").read_text())
    assert failed["status"] == "failed" and "cache.Fn=99" in failed["overrides"]
    assert all(float(r["psnr"]) > 20 and float(r["speedup"]) > 0 for r in rows[:2])


def test_the_baseline_is_computed_once_and_reused(sweep):
    stats = [json.loads((sweep / r["dir"] / "stats.json").read_text()) for r in read_csv(sweep / "summary.csv")[:2]]
    assert [s["baseline_source"] for s in stats] == ["computed", "memory"]
    assert [s["baseline_reused"] for s in stats] == [False, True]
    assert stats[0]["baseline_time_s"] == stats[1]["baseline_time_s"]
    assert len(list((sweep / "baselines").glob("*.npz"))) == 1


def test_the_sweep_runs_fewer_steps_once_as_the_reference_its_summary_and_plot_show(sweep):
    stats = [json.loads((sweep / r["dir"] / "stats.json").read_text()) for r in read_csv(sweep / "summary.csv")[:2]]
    reference = stats[0]["fewer_steps"]
    assert stats[1]["fewer_steps"] == reference  # computed once, shared by the jobs of this baseline
    assert [r["steps"] for r in reference] == [2, 4, 5, 6, 7, 8, 9]  # the default fractions 0.25-0.9 of 10 steps
    assert [r["ideal_speedup"] for r in reference] == [10 / k for k in (2, 4, 5, 6, 7, 8, 9)]
    assert reference[-1]["psnr"] > reference[0]["psnr"] and "accuracy" in reference[0]
    assert len(list((sweep / "baselines").glob("*.fewer_steps.json"))) == 1
    table = (sweep / "summary.md").read_text()
    assert "## Reference: fewer steps, no cache" in table and "| 9 | 1.11 |" in table
    suggested = table.split("## Suggested preset")[1].split("##")[0]
    assert "beat fewer steps" in suggested.lower()  # the one-line verdict under the suggested preset


def test_collect_reproduces_the_summary_and_lists_jobs_without_stats(sweep, tmp_path, capsys):
    copy = tmp_path / "sweep"
    shutil.copytree(sweep, copy)
    written = {name: (copy / name).read_text() for name in ("summary.csv", "summary.md")}
    for name in ("summary.csv", "summary.md", "pareto.png", "grid.png"):
        (copy / name).unlink()
    assert collect.main([str(copy)]) == 0
    assert (copy / "summary.csv").read_text() == written["summary.csv"]
    assert (copy / "summary.md").read_text() == written["summary.md"].replace(str(sweep), str(copy))
    assert (copy / "pareto.png").exists() and (copy / "grid.png").exists()

    (copy / "killed_job" / ".hydra").mkdir(parents=True)  # a job killed before it wrote stats.json
    assert collect.main([str(copy)]) == 0
    assert "no stats.json: " in capsys.readouterr().out
    assert "## Jobs without stats.json" in (copy / "summary.md").read_text()

    job = copy / read_csv(copy / "summary.csv")[0]["dir"] / "stats.json"
    job.write_text(job.read_text()[:100])  # truncated, as by a job killed mid-write before writes were atomic
    assert collect.main([str(copy)]) == 0
    assert f"bad stats.json: {job}" in capsys.readouterr().out
    assert [r["status"] for r in read_csv(copy / "summary.csv")] == ["ok", "failed", "unreadable"]  # Fn=1 became unreadable


def test_a_single_run_that_fails_exits_non_zero_and_records_why(tmp_path):
    result = run(*TINY, "cache.Fn=99", f"hydra.run.dir={tmp_path}", check=False)
    assert result.returncode != 0 and "must be smaller than the 6 blocks" in result.stderr
    stats = json.loads((tmp_path / "stats.json").read_text())
    assert stats["status"] == "failed" and stats["error"].startswith("ValueError")


@pytest.mark.slow  # a fresh Python process per job: the default suite keeps the in-process checks
def test_a_tuning_run_writes_a_preset_that_composes(tmp_path):
    run("sweep=tune", "hydra.sweeper.n_trials=4", "tune.speedup_metric=ideal_speedup", "tune.target_speedup=1.1",
        *TINY, f"hydra.sweep.dir={tmp_path}")
    assert len(read_csv(tmp_path / "summary.csv")) == 4
    presets = list((tmp_path / "tuned" / "experiment").glob("*.yaml"))
    assert [p.name for p in presets] == ["tuned_tiny_dit_fbcache.yaml"]
    text = presets[0].read_text()
    assert text.startswith("# @package _global_\n# python -m runners.generate --config-dir ")
    assert "Fn:" in text and "residual_diff_threshold:" in text

    composed = run("--config-dir", str(tmp_path / "tuned"), "experiment=tuned_tiny_dit_fbcache", "--cfg", "job")
    best = (tmp_path / "optimization_results.yaml").read_text()  # Optuna's own record of the best trial
    assert f"Fn: {next(l.split()[-1] for l in best.splitlines() if 'cache.Fn' in l)}" in composed.stdout
    assert "num_inference_steps: 10" in composed.stdout
