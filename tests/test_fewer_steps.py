"""Fewer steps, uncached, is the reference every cache must beat: the verdict line a sweep summary prints, and the
configuration that asks for it. The reference as a sweep computes it is tested in ``test_sweeps.py``."""

import pytest

from cachedit.caches import NoCacheConfig
from cachedit.zoo.model_config import ModelConfig
from cachedit.harness.run_config import RunConfig
from cachedit.harness.sweep import verdict

REFERENCE = [  # 20 steps uncached, against fewer
    {"steps": 16, "ideal_speedup": 1.25, "psnr": 45.0},
    {"steps": 12, "ideal_speedup": 20 / 12, "psnr": 40.0},
    {"steps": 8, "ideal_speedup": 2.5, "psnr": 32.0},
]


def test_a_setting_above_the_fewer_steps_front_beats_it_by_the_interpolated_ratio():
    line = verdict({"ideal_speedup": 2.5, "psnr": 40.0, "steps": 20}, REFERENCE)
    assert line.startswith("**Beats fewer steps by 1.50x:**") and "1.67x (about 12 of 20 steps)" in line


def test_a_setting_below_the_front_is_told_to_run_fewer_steps():
    line = verdict({"ideal_speedup": 1.5, "psnr": 36.0, "steps": 20}, REFERENCE)
    # 36 dB lies halfway between 12 steps (40 dB, 1.67x) and 8 steps (32 dB, 2.5x): 2.08x
    assert line.startswith("**Does not beat fewer steps** (0.72x)") and "2.08x (about 10 of 20 steps)" in line
    assert "`model.num_inference_steps`" in line


def test_a_fidelity_no_fewer_steps_run_reaches_is_a_win_with_the_closest_shown():
    line = verdict({"ideal_speedup": 1.2, "psnr": 50.0, "steps": 20}, REFERENCE)
    assert line.startswith("**Beats fewer steps:**") and "16 steps, reaches 45.0 dB" in line


def test_without_a_reference_the_line_says_how_to_get_one():
    assert "`fewer_steps=[0.5,0.7,0.9]`" in verdict({"ideal_speedup": 2.0, "psnr": 40.0}, [])


@pytest.mark.parametrize("fractions", [[0.0], [1.0], [0.5, 1.5]])
def test_fractions_outside_zero_one_are_refused_naming_the_key(fractions):
    with pytest.raises(ValueError, match=r"`fewer_steps` are fractions of `model.num_inference_steps` in \(0, 1\)"):
        RunConfig(model=ModelConfig(name="tiny_dit"), cache=NoCacheConfig(), fewer_steps=fractions)
