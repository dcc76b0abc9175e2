"""Every `conf/bench/*.yaml` runs as `python -m runners.bench bench=<name>` with no other argument (issue 21).

A bench made for one model selects it (a defaults entry `override /model@_global_.model: <option>`); a `model=...`
on the command line still replaces it. Benches are discovered by glob, so a new one is covered without a change here.

- Default suite: every bench composes from `bench=<name>` alone, and every cachedit setting it holds passes
  `preflight` on the bench's own model (the block-count check that `bench=streams` and `bench=overhead` failed);
  the embedded-model benches also run in-process on a tiny setting (baseline, first and last setting, peers).
- `slow`: every bench runs as a subprocess in a tiny setting (1 image, 3 steps but a calibrating bench's own,
  64 px replicas, 1 repeat) and
  writes its tables (bench.md/bench.csv, or pareto.csv/pareto.md/pareto.png), one row per setting, no error
  row of cachedit's own.
"""

import csv
import os
from collections import Counter
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from cachedit.harness import pareto
from cachedit.harness.benchmark import BASELINE, run_benchmark
from cachedit.harness.peers import check_peers
from cachedit.harness.runs import preflight
from runners.bench import bench_settings, write_tables

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"
BENCHES = sorted(p.stem for p in (CONF / "bench").glob("*.yaml"))
TINY = {  # by the model the bench selects: few steps and images; the replica at 64 px
    "tiny_dit": ["model.num_inference_steps=3", "model.num_images=1", "model.class_labels=[0]"],
    "tiny_flux": ["model.num_inference_steps=3", "model.num_images=1", "model.class_labels=[0]"],
    "flux": ["model.num_inference_steps=3", "model.height=64", "model.width=64"],
}


def compose_bench(name: str, *overrides: str):
    with initialize_config_dir(str(CONF), version_base="1.3"):
        return compose("bench", overrides=[f"bench={name}", *overrides])


def cachedit_runs(config) -> list:
    """Every cachedit setting of the bench as the RunConfig it composes to on the bench's model: a `settings:`
    bench's settings (as runners.bench composes them), or each `kind: cachedit` method of a `methods:` bench with its
    fixed overrides (the grid points are run by the slow test)."""
    with initialize_config_dir(str(CONF), version_base="1.3"):
        if "settings" in config.bench:
            settings, peers = bench_settings(config)
            check_peers(peers)
            return list(settings.values())
        runs = []
        for method in OmegaConf.to_container(config.bench.methods).values():
            if method["kind"] == "cachedit":
                run = compose("generate", overrides=[f"model={config.model.name}", *method.get("overrides", [])])
                run.model = config.model
                runs.append(OmegaConf.to_object(run))
        return runs


@pytest.mark.parametrize("name", BENCHES)
def test_every_bench_composes_alone_and_its_settings_pass_preflight_on_its_model(name):
    config = compose_bench(name)
    runs = cachedit_runs(config)
    assert runs, f"bench={name} has no cachedit setting"
    for run in runs:
        assert run.model == OmegaConf.to_object(config.model)
        preflight(run)  # raises e.g. "`Fn` + `Bn` = 8 + 0 = 8 must be smaller than the 6 blocks of `tiny_dit`"


@pytest.mark.parametrize(("name", "model", "source"), [("streams", "tiny_flux", "embedded"),
                                                       ("overhead", "flux", "replica")])
def test_a_bench_selects_its_model_and_the_command_line_replaces_it(name, model, source):
    own = compose_bench(name).model
    assert (own.name, own.source.value) == (model, source)
    assert compose_bench(name, "model=tiny_dit").model.name == "tiny_dit"
    assert compose_bench(name, "model.source=hub").model.source.value == "hub"  # e.g. the real FLUX.1-dev


def in_process_params() -> list:
    """The `settings:` benches on the embedded models run in the default suite; the FLUX-replica ones (about a
    minute each on 2 cores) are slow. The embedded DiT's benches are the tiny FLUX's too (issue 11)."""
    params = []
    for name in BENCHES:
        config = compose_bench(name)
        if "settings" not in config.bench:
            continue
        model = config.model.name
        params.append(pytest.param(name, [], id=name, marks=[pytest.mark.slow] if model == "flux" else []))
        if model == "tiny_dit":
            params.append(pytest.param(name, ["model=tiny_flux"], id=f"{name}-tiny_flux"))
    return params


@pytest.mark.parametrize(("name", "model"), in_process_params())
def test_every_settings_bench_runs_and_writes_one_row_per_setting(name, model, tmp_path):
    own = compose_bench(name, *model).model.name
    config = compose_bench(name, *model, *TINY[own], "repeats=1")
    with initialize_config_dir(str(CONF), version_base="1.3"):
        settings, peers = bench_settings(config)
    assert list(settings) == list(config.bench.settings)
    assert all(run.model.num_inference_steps == 3 and run.model.name == own for run in settings.values())
    timed = {label: settings[label] for label in dict.fromkeys([*settings][:1] + [*settings][-1:])}
    table = run_benchmark(timed, repeats=1, peers=peers)
    assert [row["setting"] for row in table] == [BASELINE, *timed, *peers]
    for row in table[1 : 1 + len(timed)]:
        assert row["time_s"] > 0
        if row["skipped_share"] == 0:  # nothing skipped: the images are the uncached ones exactly
            assert row["max_abs_diff"] == 0, row
    write_tables(table, tmp_path)
    table_lines = [line for line in (tmp_path / "bench.md").read_text().splitlines() if line.startswith("|")]
    assert len(table_lines) == len(table) + 2  # header and rule; notes may follow (measured above ideal speedup)
    assert (tmp_path / "bench.csv").read_text().count("\n") == len(table) + 1


def tiny_overrides(config) -> list[str]:
    """The bench's tiny setting. A bench that calibrates keeps its model's step count (its calibrator refuses budgets
    that skip nothing, or that cost more than its generation budget at fewer steps); a held-out bench evaluates its
    own call (`~bench.conditions`: the conditions rerun every method at 20 and 50 steps)."""
    tiny = TINY[config.model.name]
    methods = config.bench.get("methods") or {}
    if any("calibrate" in method for method in methods.values()):
        tiny = [o for o in tiny if not o.startswith("model.num_inference_steps=")]
    return tiny + (["~bench.conditions"] if "conditions" in config.bench else [])


@pytest.mark.slow
@pytest.mark.parametrize("name", BENCHES)
def test_every_bench_runs_as_a_command_with_only_tiny_overrides(name, tmp_path):
    config = compose_bench(name)
    command = [sys.executable, "-m", "runners.bench", f"bench={name}", "repeats=1", *tiny_overrides(config),
               f"hydra.run.dir={tmp_path}"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr[-3000:]
    if "settings" in config.bench:
        with open(tmp_path / "bench.csv", newline="") as f:
            rows = list(csv.DictReader(f))
        peers = config.bench.get("peers") or {}
        assert [row["setting"] for row in rows] == [BASELINE, *config.bench.settings, *peers]
        assert (tmp_path / "bench.md").read_text().startswith("| setting")
        return
    with open(tmp_path / "pareto.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    methods = OmegaConf.to_container(config.bench.methods)
    fitted = {m: len(spec.pop("calibrate")["budgets"]) for m, spec in methods.items() if "calibrate" in spec}
    expected = Counter(setting.method for setting in pareto.expand(methods) if setting.method not in fitted)
    assert Counter(row["method"] for row in rows) == expected + Counter(fitted)  # a calibrated method: one per budget
    # cachedit's own settings and the fewer-steps reference all run; a peer may be refused as an error row (one
    # that skips no block at any of its settings, e.g. diffusers' FirstBlockCache over only 3 steps)
    assert [row for row in rows if row["error"] and row["kind"] in ("cachedit", "fewer_steps")] == []
    assert (tmp_path / "pareto.md").stat().st_size > 0 and (tmp_path / "pareto.png").stat().st_size > 0
