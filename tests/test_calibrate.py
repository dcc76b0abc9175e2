"""The calibrator (issue 22, item 2): recorded trajectories, steps chosen offline, a bounded and reported cost, and
committed presets that are exactly what the command in their comment produces."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from cachedit import ForecastCacheConfig
from cachedit.caches.forecast import ForecastTarget
from cachedit.harness.calibrate import calibrate, planned_generations
from cachedit.harness.schedule_fit import best_schedules, gap_costs
from cachedit.harness.trajectories import Trajectory, record_trajectory
from cachedit.zoo.tiny_dit import load_tiny_dit

ROOT = Path(__file__).resolve().parents[1]


def kinked(steps: int = 8) -> Trajectory:
    """A residual that is 0 up to step 4, then grows by 1 a step; timesteps 8, 7, ..., 1 (each step advances 1)."""
    residuals = [torch.tensor([float(max(0, s - 4))]) for s in range(steps)]
    return Trajectory(timesteps=[float(steps - s) for s in range(steps)], features=[residuals])


def test_the_fit_computes_where_the_trajectory_bends():
    found = best_schedules(gap_costs([kinked()], order=1), budgets=[2, 3], candidates=2)
    # two computed steps on the new slope (4 and 5) forecast 6 and 7 exactly; 1-3 are step 0's value, exactly
    assert found[3][0] == ([0, 4, 5], 0.0)
    # with one step to place: [0, 6] misses step 5 by 1 (before the gap) and step 7 by 2/3 (linear from 0 and 6)
    assert found[2][0][0] == [0, 6] and found[2][0][1] == pytest.approx(1 + (2 / 3) ** 2)
    assert found[2][1][0] == [0, 5] and found[2][1][1] == pytest.approx((0.8 + 1.6) ** 2)  # one gap: errors add up


def test_order_zero_fits_reuse():
    found = best_schedules(gap_costs([kinked()], order=0), budgets=[3])
    assert found[3][0] == ([0, 5, 6], 1.0)  # step 7 reuses step 6's residual: off by 1


def test_the_fit_refuses_what_it_cannot_score():
    with pytest.raises(ValueError, match=r"`cache.order` in \[0, 1\], got 2"):
        gap_costs([kinked()], order=2)
    with pytest.raises(ValueError, match=r"`budgets` \[9\] must lie in \[1, 8\]"):
        best_schedules(gap_costs([kinked()], order=1), budgets=[9])


def test_a_recorded_trajectory_holds_every_step_of_the_uncached_call():
    pipe = load_tiny_dit()
    pipe.set_progress_bar_config(disable=True)
    call = {"class_labels": [1, 7], "num_inference_steps": 5, "output_type": "np"}
    trajectory = record_trajectory(pipe, call, seed=0, target=ForecastTarget.residual)
    uncached = pipe(**call, generator=torch.Generator().manual_seed(0)).images
    assert (trajectory.images == uncached).all()  # recording changes nothing
    assert trajectory.blocks == 5 * 6 and len(trajectory.timesteps) == 5
    assert len(trajectory.features) == 1 and len(trajectory.features[0]) == 5  # batched CFG: one branch


def test_with_target_output_the_trajectory_holds_the_transformer_outputs():
    pipe = load_tiny_dit()
    pipe.set_progress_bar_config(disable=True)
    call = {"class_labels": [1, 7], "num_inference_steps": 4, "output_type": "np"}
    outputs = []
    handle = pipe.transformer.register_forward_hook(lambda module, args, out: outputs.append(out[0].flatten().clone()))
    try:
        pipe(**call, generator=torch.Generator().manual_seed(0))
    finally:
        handle.remove()
    trajectory = record_trajectory(pipe, call, seed=0, target=ForecastTarget.output)
    assert len(trajectory.features) == 1 and all(torch.equal(a, b) for a, b in zip(trajectory.features[0], outputs))
    assert len(outputs) == 4 and trajectory.blocks == 4 * 6


def test_with_two_transformers_the_output_trajectory_holds_every_step_of_both():
    from tests.conftest import Replica

    replica = Replica("wan22")  # transformer takes the early steps, transformer_2 the late ones
    call = {**replica.inputs, "output_type": "latent"}
    recorded = {target: record_trajectory(replica.pipe, call, seed=0, output=replica.output, target=target)
                for target in ForecastTarget}
    steps = len(recorded[ForecastTarget.residual].timesteps)
    assert steps > 2 and len(recorded[ForecastTarget.output].timesteps) == steps
    assert [len(branch) for branch in recorded[ForecastTarget.output].features] == [steps] * 2


def test_a_fit_over_the_generation_budget_is_refused_before_any_work():
    pipe = load_tiny_dit()
    call = {"class_labels": [1], "num_inference_steps": 28, "output_type": "np"}
    assert planned_generations(28, 6, list(range(5, 15)), 2) == pytest.approx(1 + 2 * 95 / 28)
    with pytest.raises(ValueError, match=r"costs up to 30\.0 uncached generations of block work, above `max_generations=10`"):
        calibrate(pipe, call, [1], list(range(1, 29)), ForecastCacheConfig(), powers=(0.5,))


def test_the_committed_preset_is_what_its_command_produces(tmp_path):
    preset = ROOT / "conf/preset/tiny_dit_forecast.yaml"
    command = re.search(r"# Fitted by `(python -m runners\.calibrate [^`]*)`", preset.read_text()).group(1)
    budget = int(re.search(r"budgets=\[(\d+)\]", command).group(1))
    result = subprocess.run([sys.executable, *command.split()[1:], f"hydra.run.dir={tmp_path}"],
                            capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / f"forecast_{budget}.yaml").read_text() == preset.read_text()
    # the cost it reports is what it ran: one recorded call per seed, then one run per seed of each distinct schedule
    # the powers gave
    report = (tmp_path / "calibration.md").read_text().splitlines()
    cost, fitted = report[4], report[-1]
    seeds, candidates, blocks = 2, fitted.split("|")[5].count(" dB"), 6
    assert fitted.startswith(f"| {budget} |") and 1 <= candidates <= 2
    calls = seeds * (1 + candidates)
    executions = seeds * 28 * blocks + seeds * candidates * budget * blocks
    assert cost.startswith(f"| {calls} | {executions} | {executions / (seeds * 28 * blocks):.2f} | ")
