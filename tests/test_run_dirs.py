"""Run directories: simultaneous starts get distinct directories, and a single run never overwrites another."""

import json
import multiprocessing
from pathlib import Path

from hydra import compose, initialize_config_dir

from cachedit.harness import run_dirs
from runners.conf_store import register_configs

CONF = Path(__file__).resolve().parents[1] / "conf"


def _claim(base: str) -> str:
    return run_dirs.unique_dir(base)


def test_simultaneous_processes_each_get_their_own_directory(tmp_path):
    base = str(tmp_path / "runs" / "12-00-00")
    with multiprocessing.get_context("fork").Pool(4, maxtasksperchild=1) as pool:
        dirs = pool.map(_claim, [base] * 4, chunksize=1)
    assert sorted(dirs) == [base] + [f"{base}_{n}" for n in (1, 2, 3)]


def test_the_default_run_dirs_of_two_runs_in_the_same_second_differ(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    register_configs()
    with initialize_config_dir(str(CONF), version_base="1.3"):
        run = compose("generate", return_hydra_config=True)
        bench = compose("bench", return_hydra_config=True)
    monkeypatch.setattr(run_dirs, "_CLAIMED", {})
    one = run.hydra.run.dir  # ${now:...} is cached per config: a second resolution is the same second
    assert run.hydra.run.dir == one  # resolved again in the same process: the same directory
    monkeypatch.setattr(run_dirs, "_CLAIMED", {})  # ... and by another process started in that second
    two = run.hydra.run.dir
    assert one.startswith("outputs/runs/") and two == one + "_1" and Path(one).is_dir() and Path(two).is_dir()
    assert bench.hydra.run.dir.startswith("outputs/bench/")


def test_a_single_run_refuses_a_directory_that_holds_an_earlier_run(tmp_path):
    from tests.test_runner import generate

    (tmp_path / "stats.json").write_text(json.dumps({"status": "ok", "name": "earlier"}))
    result = generate(f"hydra.run.dir={tmp_path}", check=False)
    assert result.returncode != 0 and "already holds an earlier run's stats.json" in result.stderr
    assert json.loads((tmp_path / "stats.json").read_text())["name"] == "earlier"
