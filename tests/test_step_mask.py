"""Step computation masks: the promised budget of computed steps, regenerated when the step count changes."""

import pytest

from cachedit.configs import StepMaskConfig
from cachedit.hooks.step_mask import COMPUTE, DECIDE, REUSE, StepMask, masked_in_steps

PROMISED_OF_28 = {"slow": 18, "medium": 15, "fast": 11, "ultra": 8}


@pytest.mark.parametrize("mask", PROMISED_OF_28)
@pytest.mark.parametrize("num_steps", [28, 50])
def test_named_masks_compute_their_budget(mask, num_steps):
    steps = masked_in_steps(StepMaskConfig(mask=mask), num_steps)
    assert len(steps) == round(PROMISED_OF_28[mask] * num_steps / 28)
    assert 0 in steps and num_steps - 1 in steps and max(steps) < num_steps
    first_third = (len(steps) + 2) // 3
    assert set(range(first_third)) <= steps  # the first steps, where the image takes shape, all compute


def test_fast_at_28_steps_exactly():
    assert sorted(masked_in_steps(StepMaskConfig(mask="fast"), 28)) == [0, 1, 2, 3, 6, 10, 13, 17, 20, 24, 27]


def test_custom_mask_and_its_bounds():
    config = StepMaskConfig(mask="custom", compute_steps=[0, 2, 9])
    assert masked_in_steps(config, 10) == {0, 2, 9}
    with pytest.raises(ValueError, match=r"\[9\] lie beyond this call's 8 steps"):
        masked_in_steps(config, 8)


def test_a_different_step_count_regenerates_the_mask():
    mask = StepMask(StepMaskConfig(mask="medium"))
    mask.begin_call(28)
    at_28 = mask.steps
    mask.begin_call(50)
    assert len(at_28) == 15 and len(mask.steps) == 27


def test_rules_for_dynamic_and_static_policies():
    dynamic, static = StepMask(StepMaskConfig(mask="ultra")), StepMask(StepMaskConfig(mask="ultra", policy="static"))
    for mask in (dynamic, static):
        mask.begin_call(28)
    assert dynamic.rule(0) == static.rule(0) == COMPUTE
    assert dynamic.rule(5) == DECIDE and static.rule(5) == REUSE


def test_bad_mask_configs_are_refused():
    with pytest.raises(ValueError, match="`scm.mask` must be one of"):
        StepMaskConfig(mask="turbo")
    with pytest.raises(ValueError, match="needs `scm.compute_steps`"):
        StepMaskConfig(mask="custom")
    with pytest.raises(ValueError, match="only used with `scm.mask=custom`"):
        StepMaskConfig(mask="fast", compute_steps=[0])


@pytest.mark.parametrize("num_steps", [1, 2, 3, 4])
@pytest.mark.parametrize("mask", ["slow", "medium", "fast", "ultra"])
def test_few_steps_still_compute_the_first_and_the_last_step(mask, num_steps):
    steps = masked_in_steps(StepMaskConfig(mask=mask), num_steps)
    assert {0, num_steps - 1} <= steps <= set(range(num_steps)), sorted(steps)
