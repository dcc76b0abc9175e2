"""A sweep started in a directory that holds an earlier sweep summarises its own jobs only (#16.3).

Fixed sweep directories are what the README advises for Slurm and Ray; reusing one mixed the earlier sweep's rows
(other weights, other settings) into the summary. The earlier files are moved aside, never deleted, and the summary
says what it left out.
"""

import json
from pathlib import Path

from omegaconf import OmegaConf

from cachedit.harness.sweep import summarize
from runners import collect
from runners.callbacks import SweepSummaryCallback


def job(sweep_dir: Path, num: int, threshold: float) -> Path:
    folder = sweep_dir / f"{num}_cache.residual_diff_threshold={threshold}" / "seed=0"
    (folder / ".hydra").mkdir(parents=True)
    (folder / "stats.json").write_text(json.dumps({
        "status": "ok", "model": "tiny_dit", "job": {"num": num}, "choices": {"cache": "fbcache"},
        "config": {"cache": {"Fn": 1, "Bn": 0, "residual_diff_threshold": threshold}, "seed": 0},
        "cache": {"steps": 10, "cached_steps": 4, "skipped_share": 0.4}, "speedup": 1.5, "ideal_speedup": 1.67,
        "fidelity": {"psnr": 30.0 + threshold},
    }))
    return folder


def test_a_reused_sweep_directory_sets_the_earlier_sweep_aside(tmp_path, capsys):
    old = [job(tmp_path, 0, 0.3), job(tmp_path, 1, 0.4)]
    summarize(tmp_path)
    (tmp_path / "baselines").mkdir()
    (tmp_path / "baselines" / "abc.npz").write_bytes(b"kept")
    (tmp_path / "notes.txt").write_text("the user's own file")

    SweepSummaryCallback().on_multirun_start(OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path)}}}))
    job(tmp_path, 0, 0.1)  # the new sweep's only job, in the directory name an old job had
    summary = summarize(tmp_path)

    assert [r["threshold"] for r in summary.rows] == [0.1]
    (earlier,) = (tmp_path / "earlier").iterdir()
    assert sorted(p.parent.relative_to(earlier).as_posix() for p in earlier.rglob("stats.json")) == [
        p.relative_to(tmp_path).as_posix() for p in old]  # moved whole, not deleted
    assert (earlier / "summary.md").exists()  # the old summary went with its jobs
    assert (tmp_path / "baselines" / "abc.npz").read_bytes() == b"kept" and (tmp_path / "notes.txt").exists()
    text = (tmp_path / "summary.md").read_text()
    assert f"Not in this summary: 2 job(s) of an earlier sweep in this directory, set aside in `earlier/{earlier.name}/`" in text
    assert "1 jobs with stats: 1 ok" in text

    assert collect.main([str(tmp_path)]) == 0  # summarising again later agrees
    assert [r["threshold"] for r in summarize(tmp_path).rows] == [0.1]


def test_a_fresh_sweep_directory_sets_nothing_aside(tmp_path):
    SweepSummaryCallback().on_multirun_start(OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path / "new")}}}))
    assert not (tmp_path / "new" / "earlier").exists()  # a missing directory is no earlier sweep
