"""The auto-tuner optimises counted work and never answers with a setting that skips nothing; a measured speedup
above the ideal one is flagged wherever speedups are printed (#16.5).

The issue's case: `sweep=tune cache=fbcache tune.target_speedup=1.5` picked a threshold that cached nothing (PSNR
inf, a noisy measured 7.46x); a PSNR floor picked it too (PSNR inf clears any floor).
"""

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from cachedit.harness import tuning
from cachedit.harness.benchmark import markdown as bench_markdown
from cachedit.harness.run_config import TuneConfig
from cachedit.harness.runs import one_line
from cachedit.harness.sweep import summarize
from cachedit.stats import speedup_notes
from runners.callbacks import SweepSummaryCallback

ROOT = Path(__file__).resolve().parents[1]
CACHE = {"steps": 10, "cached_steps": 0, "skipped_share": 0.0, "diff_percentiles": None, "branches": {}}


def stats(threshold: float, skipped: float, psnr: float, measured: float, num: int = 0) -> dict:
    return {
        "status": "ok", "name": f"FBCache_R{threshold}", "model": "tiny_dit", "job": {"num": num},
        "choices": {"model": "tiny_dit", "cache": "fbcache"}, "overrides": [f"cache.residual_diff_threshold={threshold}"],
        "config": {"cache": {"name": "fbcache", "Fn": 1, "Bn": 0, "residual_diff_threshold": threshold},
                   "model": {"num_inference_steps": 10}, "seed": 0, "tune": {"objective": "psnr_at_speedup"}},
        "cache": {**CACHE, "cached_steps": round(10 * skipped), "skipped_share": skipped},
        "time_s": 1.0 / measured, "baseline_time_s": 1.0, "speedup": measured, "ideal_speedup": 1 / (1 - skipped),
        "fidelity": {"psnr": psnr, "ssim": 1.0, "mse": 0.0, "max_abs_diff": 0.0},
    }


NOTHING = stats(0.0277, skipped=0.0, psnr=math.inf, measured=7.46)  # the winner
SKIPS = stats(0.2, skipped=0.4, psnr=31.0, measured=1.3, num=1)


@pytest.mark.parametrize("tune", [TuneConfig(target_speedup=1.5), TuneConfig(objective="speedup_above_psnr", psnr_floor=30)])
def test_a_setting_that_skips_nothing_never_wins(tune):
    winner, value = tuning.best([NOTHING, SKIPS], tune)
    assert winner is SKIPS and tuning.is_feasible(value)  # ideal 1.67x >= 1.5; PSNR 31 >= 30
    assert tuning.sweeper_value(NOTHING, tune) == tuning.NOTHING_SKIPPED_VALUE < tuning.sweeper_value(SKIPS, tune)


def test_a_tune_where_every_trial_skipped_nothing_says_so_and_writes_no_preset(tmp_path):
    with pytest.raises(tuning.NothingSkipped, match="No trial skipped any block"):
        tuning.best([NOTHING, {**NOTHING, "job": {"num": 1}}], TuneConfig())
    job = tmp_path / "0_x" / "seed=0"
    (job / ".hydra").mkdir(parents=True)
    (job / "stats.json").write_text(json.dumps(NOTHING))
    config = OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path)}}})
    with pytest.raises(SystemExit) as exited:  # after writing the summary
        SweepSummaryCallback().on_multirun_end(config)
    assert exited.value.code == 1 and not (tmp_path / "tuned").exists()
    text = (tmp_path / "summary.md").read_text()
    assert "## Tuned preset\n\n**None.** No trial skipped any block" in text
    assert "No cached setting reached 30 dB" in text  # not suggested as a preset either


def test_the_measured_speedup_is_only_a_check():
    with pytest.raises(ValueError, match="`tune.speedup_metric` must be `ideal_speedup`.*Got `speedup`"):
        TuneConfig(speedup_metric="speedup")
    assert "EXCEEDS THE IDEAL" in tuning.speedup_check(NOTHING) and "EXCEEDS" not in tuning.speedup_check(SKIPS)


def test_a_measured_speedup_above_the_ideal_is_flagged_in_runs_and_tables():
    run = {**NOTHING, "speedup": 5.77}
    assert "MEASURED SPEEDUP 5.77x EXCEEDS THE IDEAL 1.00x" in one_line(run)
    assert "EXCEEDS" not in one_line(SKIPS)  # 1.3x measured against 1.67x ideal: plausible
    table = [{"setting": "uncached", "speedup": 1.0, "ideal_speedup": 1.0},
             {"setting": "fbcache R0.03", "speedup": 5.77, "ideal_speedup": 1.0},
             {"setting": "peer", "speedup": 1.4, "ideal_speedup": "-"}]
    notes = bench_markdown(table).split("\n")[5:]
    assert notes == ["", "**fbcache R0.03**: MEASURED SPEEDUP 5.77x EXCEEDS THE IDEAL 1.00x (counted block "
                         "executions): timing noise, not the cache; compare by ideal speedup or time longer runs."]
    many = [{"setting": f"R{i}", "speedup": 3.0, "ideal_speedup": 1.0} for i in range(5)] + table
    capped = speedup_notes(many, most=2)  # a Pareto bench's hundreds of single timings: two named, then a count
    assert [line.split(":")[0] for line in capped[1:3]] == ["**R0**", "**R1**"]
    assert capped[3:] == ["... and 4 more of the 8 settings measured above their ideal speedup (timing noise at these "
                          "repeats; the fronts use ideal speedups)."]
    assert len(speedup_notes(many)) == 1 + 6


def test_a_tune_on_the_tiny_model_picks_a_setting_that_skips(tmp_path):
    """PSNR floor 99: only the threshold that caches nothing (PSNR inf) clears it, so the old objective chose it."""
    args = ["--multirun", "sweep=tune", "hydra.sweeper.n_trials=2", "cache.residual_diff_threshold=choice(0.0,0.5)",
            "cache=fbcache", "cache.Fn=1", "cache.Bn=0", "taylorseer=none", "cache.max_warmup_steps=2",
            "tune.objective=speedup_above_psnr", "tune.psnr_floor=99", "model.num_images=1",
            "model.num_inference_steps=10", f"hydra.sweep.dir={tmp_path}"]
    result = subprocess.run([sys.executable, "-m", "runners.generate", *args], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = summarize(tmp_path).rows
    assert sorted(r["threshold"] for r in rows) == [0.0, 0.5]  # both settings ran (seeded sampler)
    preset = (tmp_path / "tuned" / "experiment" / "tuned_tiny_dit_fbcache.yaml").read_text()
    assert "residual_diff_threshold: 0.5" in preset and "NO TRIAL MET THE CONSTRAINT" in preset
    assert "check: measured speedup" in preset
