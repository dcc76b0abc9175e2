"""Hydra callbacks, registered in ``conf/hydra/default.yaml``.

``SweepSummaryCallback`` ends every multirun with the sweep's answer (``summary.csv``, ``summary.md``,
``pareto.png``, ``grid.png``; after ``sweep=tune`` also the winning preset) and makes sure every job leaves a
``stats.json``, even one whose exception escaped the runner. It starts every multirun by setting aside what an
earlier sweep left in the same directory (``earlier/<time>/``), so the summary holds this sweep's jobs only.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

log = logging.getLogger(__name__)


class SweepSummaryCallback(Callback):
    """Args:
    psnr_floor (`float`, defaults to `30.0`): the PSNR (dB) a setting needs to be suggested in ``summary.md``.
    """

    def __init__(self, psnr_floor: float = 30.0) -> None:
        self.psnr_floor = psnr_floor

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        output_dir = Path(config.hydra.runtime.output_dir)
        if job_return.status != JobStatus.FAILED or (output_dir / "stats.json").exists():
            return  # the runner wrote it (it records its own failures)
        from cachedit.harness.runs import write_failure

        error = getattr(job_return, "_return_value", None)
        num = OmegaConf.select(config, "hydra.job.num", default=None)
        error = error if isinstance(error, BaseException) else RuntimeError(str(error))
        write_failure(error, output_dir, overrides=list(job_return.overrides or []), extra={"job": {"num": num}})

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        from cachedit.harness.sweep import set_aside_earlier

        set_aside_earlier(Path(config.hydra.sweep.dir))  # before any job: a reused directory mixes no old rows in

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        from cachedit.harness.sweep import summarize

        summary = summarize(Path(config.hydra.sweep.dir), self.psnr_floor)
        failed = [r for r in summary.rows if r["status"] != "ok"]
        log.info("Sweep summary:\n" + summary.files["md"].read_text())
        log.info(f"Wrote {', '.join(str(p) for p in summary.files.values())}")
        if failed or summary.missing:
            log.error(f"{len(failed)} job(s) failed and {len(summary.missing)} left no stats: see {summary.files['md']}")
            raise SystemExit(1)  # after the summary: scripts and schedulers see that the sweep is incomplete
        if summary.tuned is not None and "error" in summary.tuned:
            raise SystemExit(1)  # a tune without an answer (every trial skipped nothing) is no success either
