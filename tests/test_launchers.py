"""The launcher presets (conf/hydra/launcher/): they compose against their plugin's schema (fast), and run a
2-job sweep of the tiny DiT with each job in its own process (joblib, submitit_local).

The sweeps take about 20 s each on 2 idle CPU cores (up to a minute or two on a busy machine: every worker
process imports torch and loads the model). The sweep extras install every plugin but Ray's (it pins cloudpickle<3,
which our other dependencies refuse; README: launchers), so Ray's preset is checked for its clear refusal instead.
"""

import csv
import importlib.util
import json
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from runners.conf_store import register_configs
from runners.overrides import check_overrides, launcher_plugin
from tests.test_sweeps import TINY, run

CONF = Path(__file__).resolve().parents[1] / "conf"
PLUGINS = {
    "cachedit_joblib": "hydra_plugins.hydra_joblib_launcher",
    "cachedit_submitit_local": "hydra_plugins.hydra_submitit_launcher",
    "cachedit_submitit_slurm": "hydra_plugins.hydra_submitit_launcher",
}
NOT_INSTALLABLE = {"cachedit_ray": "hydra-ray-launcher==1.2.2"}  # needs its own venv (README: launchers)


def test_every_launcher_preset_has_a_plugin_entry():
    assert sorted(p.stem for p in (CONF / "hydra" / "launcher").glob("*.yaml")) == sorted(PLUGINS | NOT_INSTALLABLE)
    assert all(launcher_plugin(preset)[0] == module for preset, module in PLUGINS.items())


@pytest.mark.parametrize("preset", sorted(NOT_INSTALLABLE))
def test_a_launcher_preset_whose_plugin_is_missing_is_refused_naming_the_package(preset, capsys):
    assert importlib.util.find_spec(launcher_plugin(preset)[0]) is None  # the extras leave it out on purpose
    with pytest.raises(SystemExit) as stop:
        check_overrides(["--multirun", f"hydra/launcher={preset}"])
    assert stop.value.code == 2
    assert f"pip install {NOT_INSTALLABLE[preset]}" in capsys.readouterr().err


@pytest.mark.parametrize("preset", sorted(PLUGINS))
def test_a_launcher_preset_composes_against_its_plugin_schema(preset):
    register_configs()
    GlobalHydra.instance().clear()
    with initialize_config_dir(version_base="1.3", config_dir=str(CONF)):
        config = compose("generate", overrides=[f"hydra/launcher={preset}"], return_hydra_config=True)
    GlobalHydra.instance().clear()
    assert config.hydra.launcher._target_.startswith(PLUGINS[preset])
    if preset == "cachedit_submitit_slurm":
        assert config.hydra.launcher.gpus_per_node == 1 and config.hydra.launcher.tasks_per_node == 1


def sweep_with(launcher: str, sweep_dir) -> list[dict]:
    run("--multirun", f"hydra/launcher={launcher}", *TINY, "cache.residual_diff_threshold=0.1,0.3",
        f"hydra.sweep.dir={sweep_dir}")
    with open(sweep_dir / "summary.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["status"] for r in rows] == ["ok", "ok"]
    assert (sweep_dir / "pareto.png").exists() and (sweep_dir / "grid.png").exists()
    return [json.loads((sweep_dir / r["dir"] / "stats.json").read_text()) for r in rows]


@pytest.mark.slow  # a fresh Python process per job: the default suite keeps the in-process checks
def test_joblib_runs_the_jobs_in_worker_processes_and_shares_one_baseline(tmp_path):
    stats = sweep_with("cachedit_joblib", tmp_path)
    assert sorted(s["baseline_source"] for s in stats)[0] == "computed"
    assert sum(s["baseline_source"] == "computed" for s in stats) == 1  # the other read it (disk) or shared a worker
    assert all(s["torch_threads"] == 1 for s in stats)  # loky: cpu_count // n_jobs threads per worker


@pytest.mark.slow  # a fresh Python process per job: the default suite keeps the in-process checks
def test_submitit_local_runs_each_job_in_a_fresh_process_and_shares_one_baseline(tmp_path):
    stats = sweep_with("cachedit_submitit_local", tmp_path)
    assert sorted(s["baseline_source"] for s in stats) == ["computed", "disk"]
    assert (tmp_path / ".submitit").is_dir()
