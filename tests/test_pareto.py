"""bench=pareto (issue 10): fronts, interpolated levels, error rows, and a tiny end-to-end run."""

import csv
import subprocess
import sys
from pathlib import Path

import pytest

from cachedit.harness import pareto
from cachedit.zoo.tiny_dit import load_tiny_dit


def test_front_keeps_only_points_nobody_beats():
    points = [(1.0, 60.0), (2.0, 50.0), (2.0, 40.0), (3.0, 55.0), (4.0, 30.0)]
    assert pareto.front(points) == [(1.0, 60.0), (3.0, 55.0), (4.0, 30.0)]


def test_speedup_at_interpolates_between_front_points():
    points = [(1.0, 60.0), (2.0, 50.0), (4.0, 30.0)]
    assert pareto.speedup_at(points, 50.0) == pytest.approx(2.0)
    assert pareto.speedup_at(points, 40.0) == pytest.approx(3.0)  # halfway between 50 dB at 2x and 30 dB at 4x
    assert pareto.speedup_at(points, 70.0) is None
    assert pareto.speedup_at(points, 20.0) == pytest.approx(4.0)
    # Fréchet: lower is better
    assert pareto.speedup_at([(1.0, 0.7), (3.0, 0.9)], 0.8, higher_is_better=False) == pytest.approx(2.0)


def test_method_specs_are_checked_before_any_work():
    with pytest.raises(ValueError, match="`kind: magic` is not one of cachedit, diffusers, cache_dit, fewer_steps"):
        pareto.expand({"m": {"kind": "magic"}})
    with pytest.raises(ValueError, match=r"Method `m` has unknown keys \['gird'\]"):
        pareto.expand({"m": {"kind": "cachedit", "gird": {}}})
    settings = pareto.expand({"m": {"kind": "diffusers", "config": "X", "grid": {"a": [1, 2], "b": [3]}}})
    assert [s.label for s in settings] == ["a=1 b=3", "a=2 b=3"]


def test_a_diffusers_cache_that_hooks_nothing_is_an_error():
    pipe = load_tiny_dit()
    # diffusers' TaylorSeerCache with default identifiers looks for attention modules a DiT block does not name
    with pytest.raises(pareto.MethodError, match="hooked nothing on DiTTransformer2DModel"):
        pareto.enable_diffusers(pipe, "TaylorSeerCacheConfig", {})


def test_block_counter_counts_executions_not_calls():
    pipe = load_tiny_dit()
    pipe.set_progress_bar_config(disable=True)
    counter = pareto.BlockCounter(pipe.transformer)
    pipe([1], num_inference_steps=3, output_type="np")
    assert counter.count == 3 * 6  # three steps of six blocks
    undo = pareto.enable_diffusers(pipe, "TaylorSeerCacheConfig", {"cache_identifiers": [r"transformer_blocks\.\d+"],
                                                                  "cache_interval": 3, "disable_cache_before_step": 1})
    counter.count = 0
    pipe([1], num_inference_steps=4, output_type="np")
    undo()
    counter.remove()
    assert counter.count < 4 * 6  # the forecast steps ran no block


def test_magcache_is_calibrated_first_then_skips_a_counted_number_of_blocks():
    pipe = load_tiny_dit()
    pipe.set_progress_bar_config(disable=True)
    call = {"class_labels": [1, 7], "num_inference_steps": 10, "output_type": "np"}
    ratios = pareto.mag_ratios(pipe, call, seed=1, output="images")
    assert len(ratios) == 10 and ratios[0] == 1.0  # diffusers logs 1.0 for the first step, which has no predecessor
    assert pareto.mag_ratios(pipe, call, seed=1, output="images") is ratios  # calibrated once per pipeline and call
    settings = pareto.expand({"mag": {"kind": "diffusers", "config": "MagCacheConfig",
                                      "fixed": {"mag_ratios": "calibrate", "retention_ratio": 0.2},
                                      "grid": {"threshold": [0.0, 0.5]}}})
    reference, outcomes = pareto.run_pareto(pipe, call, settings, None, seed=0, output="images")
    table = pareto.rows(reference, outcomes, None)
    assert [r["error"] for r in table] == ["", ""]
    assert table[0]["blocks"] == reference.blocks == 10 * 6 and table[0]["psnr"] == float("inf")  # threshold 0: exact
    assert table[1]["blocks"] < reference.blocks  # the steps MagCache skipped ran fewer blocks
    assert table[0]["hooked"] == ("mag_cache_block_hook on 5: transformer_blocks.1 … transformer_blocks.5; "
                                  "mag_cache_leader_block_hook on 1: transformer_blocks.0")  # what the peer hooked
    assert "What each peer hooked" in pareto.markdown(table, "t")


def test_cache_dit_runs_the_tiny_dit_through_its_block_adapter_with_the_benchmark_shim():
    from cache_dit.caching.cache_blocks.pattern_base import CachedBlocks_Pattern_Base

    pipe = load_tiny_dit()
    pipe.set_progress_bar_config(disable=True)
    call = {"class_labels": [1, 7], "num_inference_steps": 8, "output_type": "np"}
    settings = pareto.expand({"cache-dit": {"kind": "cache_dit", "grid": {"residual_diff_threshold": [0.0, 0.3]},
                                            "fixed": {"Fn_compute_blocks": 1, "Bn_compute_blocks": 0,
                                                      "max_warmup_steps": 0, "taylorseer_order": 1}}})
    reference, outcomes = pareto.run_pareto(pipe, call, settings, None, seed=0, output="images")
    exact, cached = pareto.rows(reference, outcomes, None)
    assert exact["error"] == "" and exact["psnr"] == float("inf") and exact["blocks"] == 8 * 6
    assert cached["error"] == "" and cached["blocks"] < 8 * 6
    assert not hasattr(CachedBlocks_Pattern_Base, "norm1")  # the shim lives only while the cache is on


def test_tiny_pareto_run_writes_table_csv_and_plot(tmp_path):
    out = tmp_path / "run"
    result = subprocess.run(
        [sys.executable, "-m", "runners.bench", "--config-dir", "tests/data/conf", "bench=pareto_tiny",
         "model.num_inference_steps=6", "model.num_images=1", "repeats=1", f"hydra.run.dir={out}"],
        capture_output=True, text=True, timeout=900,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    with open(out / "pareto.csv") as f:
        rows = list(csv.DictReader(f))
    assert [(r["method"], r["setting"]) for r in rows] == [
        ("fewer steps", "steps=3"), ("fewer steps", "steps=4"),
        ("cachedit Forecast", "interval=2"), ("cachedit Forecast", "interval=3"),
    ]
    assert float(rows[0]["ideal_speedup"]) == pytest.approx(2.0)  # 6 / 3 steps, counted in block executions
    assert float(rows[2]["ideal_speedup"]) == pytest.approx(6 / 3)  # interval 2 from step 0: steps 0, 2, 4
    table = (out / "pareto.md").read_text()
    assert "| fewer steps |" in table and "| cachedit Forecast |" in table and "PSNR ≥ 35" in table
    assert (out / "pareto.png").stat().st_size > 1000


# ------------------------------------------------------------------ held out (issue 22, item 4)


def test_held_out_run_calibrates_once_then_reports_every_condition_and_the_margins(tmp_path):
    out = tmp_path / "run"
    result = subprocess.run(
        [sys.executable, "-m", "runners.bench", "--config-dir", "tests/data/conf", "bench=pareto_heldout_tiny",
         "model.num_inference_steps=6", "model.num_images=1", "model.class_labels=[0]", "repeats=1",
         f"hydra.run.dir={out}"],
        capture_output=True, text=True, timeout=900,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    with open(out / "pareto.csv") as f:
        rows = list(csv.DictReader(f))
    by_condition = {c: [r for r in rows if r["condition"] == c] for c in ("seed 2", "4 steps")}
    assert sorted({r["condition"] for r in rows}) == ["4 steps", "seed 2"]
    # fewer steps are given for 6 steps and scaled to the 4-step condition: 3 -> 2, 4 -> 3 (rounded)
    assert [r["setting"] for r in by_condition["seed 2"] if r["kind"] == "fewer_steps"] == ["steps=3", "steps=4"]
    assert [r["setting"] for r in by_condition["4 steps"] if r["kind"] == "fewer_steps"] == ["steps=2", "steps=3"]
    # the calibrated grid is the fit (budgets 3 and 4 of 6 steps), the same schedules on every condition
    fitted = [r["setting"] for r in by_condition["seed 2"] if r["method"] == "cachedit Forecast (calibrated)"]
    assert len(fitted) == 2 and all(s.startswith("compute_steps=[0,") for s in fitted)
    assert fitted == [r["setting"] for r in by_condition["4 steps"] if r["method"] == "cachedit Forecast (calibrated)"]
    seed2 = {r["setting"]: r for r in by_condition["seed 2"]}
    assert float(seed2[fitted[0]]["ideal_speedup"]) == pytest.approx(6 / 3)  # 3 of 6 steps compute
    report = (out / "pareto.md").read_text()
    assert "Calibrated once, on seeds [1]" in report and "## seed 2:" in report and "## 4 steps:" in report
    margins = report.split("Margin of the best calibrated cachedit")[1]
    assert "| seed 2 |" in margins and "| 4 steps |" in margins
    assert (out / "pareto_seed_2.png").exists() and (out / "pareto_4_steps.png").exists()


def test_a_condition_may_not_evaluate_a_calibration_seed():
    from cachedit.zoo.model_config import ModelConfig
    from cachedit.harness import heldout

    model = ModelConfig(name="tiny_dit")
    with pytest.raises(ValueError, match=r"Condition `seed 1` evaluates seed 1, which `calibration.seeds` \[1, 4\]"):
        heldout.conditions({"seed 1": {"seed": 1}}, model, 0, [1, 4])
    with pytest.raises(ValueError, match=r"Condition `x` sets \['model.height'\]; a condition may set seed, "):
        heldout.conditions({"x": {"model.height": 8}}, model, 0, [1])
    found = heldout.conditions({"g4": {"model.guidance_scale": 4.0}}, model, 0, [1, 4])
    assert found[0].seed == 0 and found[0].model.guidance_scale == 4.0


def test_a_peer_whose_best_lies_on_its_grid_edge_is_named():
    from cachedit.harness import heldout

    spec = {"peer": {"kind": "diffusers", "grid": {"cache_interval": [2, 3, 4], "disable_cache_before_step": [1, 2]},
                     "bounds": {"cache_interval": [2]}}}
    table = [{"method": "peer", "setting": f"cache_interval={i} disable_cache_before_step={d}", "error": "",
              "ideal_speedup": i - 0.1 * d, "psnr": 62.0 - 5 * i - d} for i in (2, 3, 4) for d in (1, 2)]
    edges = heldout.grid_edges(table, spec, levels=(35.0, 45.0))
    # a longer interval and a shorter warmup buy speed; at 35 dB the best is interval 4 (the grid's highest) with the
    # lowest warmup (1): both are edges to widen; at 45 dB it is interval 3, warmup 1: only the warmup is on an edge
    assert edges == [
        "peer: at PSNR ≥ 35 its best setting (cache_interval=4 disable_cache_before_step=1) has the highest "
        "`cache_interval` of its grid (4), the end that buys speed; widen the grid",
        "peer: at PSNR ≥ 35 its best setting (cache_interval=4 disable_cache_before_step=1) has the lowest "
        "`disable_cache_before_step` of its grid (1), the end that buys speed; widen the grid",
        "peer: at PSNR ≥ 45 its best setting (cache_interval=3 disable_cache_before_step=1) has the lowest "
        "`disable_cache_before_step` of its grid (1), the end that buys speed; widen the grid",
    ]
    spec["peer"]["bounds"]["disable_cache_before_step"] = [1]  # a limit of the knob is no edge
    assert len(heldout.grid_edges(table, spec, levels=(35.0, 45.0))) == 1
    slower = [{**r, "psnr": 80.0 - 5 * r["ideal_speedup"]} for r in table]  # at 70.8 dB only interval 2, warmup 2
    assert heldout.grid_edges(slower, {"peer": {"kind": "diffusers", "grid": spec["peer"]["grid"]}}, levels=(70.8,)) == []


def test_our_own_grid_and_smallest_fitted_budget_are_named_when_a_level_is_reached_at_their_edge():
    from cachedit.harness import heldout

    spec = {"uncalibrated": {"kind": "cachedit", "grid": {"cache.interval": [2, 4], "cache.warmup": [1, 2]},
                             "bounds": {"cache.warmup": [1]}},
            "calibrated": {"kind": "cachedit", "calibrate": {"budgets": [4, 7]}}}
    table = [{"method": "uncalibrated", "setting": f"interval={i} warmup={w}", "error": "",
              "ideal_speedup": i - 0.1 * w, "psnr": 50.0 - 2 * i - w} for i in (2, 4) for w in (1, 2)]
    table += [{"method": "calibrated", "setting": f"compute_steps={list(range(k))}", "error": "",
               "ideal_speedup": 28 / k, "psnr": 30.0 + 2 * k} for k in (4, 7)]
    # at 40 dB: interval 4, warmup 1 (41 dB) is the uncalibrated best, on the interval's edge (warmup 1 is a bound);
    # the calibrated budget 4 (38 dB) misses 40 but reaches 35: only the 35 dB level names it
    assert heldout.grid_edges(table, spec, levels=(35.0, 40.0)) == [
        "uncalibrated: at PSNR ≥ 35 its best setting (interval=4 warmup=1) has the highest `cache.interval` of its "
        "grid (4), the end that buys speed; widen the grid",
        "uncalibrated: at PSNR ≥ 40 its best setting (interval=4 warmup=1) has the highest `cache.interval` of its "
        "grid (4), the end that buys speed; widen the grid",
        "calibrated: at PSNR ≥ 35 its best setting (compute_steps=[0, 1, 2, 3]) is its smallest fitted budget; fit "
        "smaller `budgets`",
    ]


@pytest.mark.parametrize(("model", "bench"), [("tiny_dit", "pareto"), ("tiny_flux", "pareto_small")])
def test_the_readme_margins_are_over_peers_whose_best_lies_inside_their_grids(model, bench):
    """The README's held-out margins divide by the best peer at each level: its best setting must not sit on the end of
    its grid that buys speed (tests/data/pareto: the peer and fewer-steps rows of the committed held-out runs)."""
    import yaml

    from cachedit.harness import heldout

    text = (Path(__file__).resolve().parents[1] / f"conf/bench/{bench}.yaml").read_text()
    methods = yaml.safe_load(text.split("# @package bench\n", 1)[1])["methods"]
    with open(Path(__file__).parent / f"data/pareto/heldout_{model}_peers.csv") as f:
        rows = [{**r, "ideal_speedup": float(r["ideal_speedup"] or 0), "psnr": float(r["psnr"] or 0)}
                for r in csv.DictReader(f)]
    assert {r["condition"] for r in rows} == {"seed 2", "seed 3", "guidance 4.0", "20 steps", "50 steps"}
    for condition in dict.fromkeys(r["condition"] for r in rows):
        table = [r for r in rows if r["condition"] == condition]
        names, levels = pareto.levels_table(table)
        for level in heldout.EDGE_LEVELS:
            scored = [(v[f"PSNR ≥ {level:g}"], m) for m, v in levels.items() if v[f"PSNR ≥ {level:g}"] is not None]
            best = max(scored)[1]
            edges = heldout.grid_edges(table, {best: methods[best]}, levels=(level,))
            assert edges == [], f"{condition}: {edges}"
