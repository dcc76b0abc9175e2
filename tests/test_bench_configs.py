"""Every `conf/bench/*.yaml` composes and runs through `runners.bench`'s code on a tiny setting.

All of a bench's settings are composed (that is where `runners.bench` broke); to keep the suite fast, the timed
run covers the uncached baseline, the first and the last setting and every peer row, at 3 steps on the documented model.
"""

import shlex
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from cachedit.harness.benchmark import BASELINE, run_benchmark
from runners.bench import bench_settings, write_tables

CONF = Path(__file__).resolve().parents[1] / "conf"
TINY = {  # few steps and images; the replica at 64 px
    "tiny_dit": ["model.num_inference_steps=3", "model.num_images=1", "model.class_labels=[0]"],
    "flux": ["model.height=64", "model.width=64", "model.num_inference_steps=3"],
    "tiny_flux": ["model.num_inference_steps=3", "model.num_images=1", "model.class_labels=[0]"],
}


def documented_model(path: Path) -> list[str]:
    """The `model=`/`model.source=` overrides of the command on the bench file's first line."""
    words = shlex.split(path.read_text().splitlines()[0].lstrip("# "))
    assert words[:3] == ["python", "-m", "runners.bench"], f"{path.name} must start with its command"
    return [w for w in words if w.startswith(("model=", "model.source="))] or ["model=tiny_dit"]


def bench_files() -> list:
    """The embedded-model benches run by default; the FLUX-replica ones (about a minute each on 2 cores) are slow.

    bench=pareto (`methods:`, not `settings:`) runs end to end in tests/test_pareto.py.
    """
    files = [p for p in sorted((CONF / "bench").glob("*.yaml")) if "\nmethods:" not in p.read_text()]
    slow = pytest.mark.slow
    params = []
    for p in files:
        model = documented_model(p)
        params.append(pytest.param(p, model, id=p.stem, marks=[slow] if "model=flux" in model else []))
        if model == ["model=tiny_dit"]:  # the embedded DiT's benches are the tiny FLUX's too (issue 11)
            params.append(pytest.param(p, ["model=tiny_flux"], id=f"{p.stem}-tiny_flux"))
    return params


@pytest.mark.parametrize(("path", "model"), bench_files())
def test_every_bench_config_runs_and_writes_one_row_per_setting(path, model, tmp_path):
    name = model[0].split("=", 1)[1]
    with initialize_config_dir(str(CONF), version_base="1.3"):
        config = compose("bench", overrides=[f"bench={path.stem}", *model, *TINY[name], "repeats=1"])
        settings, peers = bench_settings(config)
    assert list(settings) == list(config.bench.settings)
    assert all(run.model.num_inference_steps == 3 and run.model.name == name for run in settings.values())
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
