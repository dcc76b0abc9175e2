"""TaylorSeer, DBPrune, step masks, CFG routing and per-transformer overrides (DESIGN §3, issue 4)."""

import math

import pytest
import torch

import cachedit
from cachedit import CFGCacheConfig, DBCacheConfig, DBPruneConfig, StepMaskConfig, TaylorSeerConfig
from cachedit.hooks.step_mask import masked_in_steps
from cachedit.zoo import replicas as replica_models
from tests.helpers.toy import TOY_ADAPTERS, ToyPipeline, steady_inputs

ALWAYS = 1e9


def toy_run(config, inputs, branches=("cond",), pipe=None, **companions):
    pipe = pipe or ToyPipeline()
    cachedit.enable_cache(pipe, config, adapters=TOY_ADAPTERS, **companions)
    outputs = pipe(inputs, branches, num_inference_steps=len(inputs))
    return pipe, outputs, cachedit.summary(pipe)


def decisions(summary, branch="transformer/cond"):
    return summary["branches"][branch]["decisions"]


# ------------------------------------------------------------------ exactness when nothing is skipped

NOTHING_SKIPPED = {
    "taylorseer_order1": dict(config=DBCacheConfig(Fn=1, residual_diff_threshold=0), taylorseer=TaylorSeerConfig(order=1)),
    "taylorseer_order2_hidden": dict(
        config=DBCacheConfig(Fn=2, Bn=1, residual_diff_threshold=0), taylorseer=TaylorSeerConfig(order=2, cache_type="hidden_states")
    ),
    "dbprune": dict(config=DBPruneConfig(residual_diff_threshold=0, max_warmup_steps=0)),
    "dbprune_dynamic": dict(config=DBPruneConfig(residual_diff_threshold=0, max_warmup_steps=0, enable_dynamic_prune_threshold=True)),
    "scm_dynamic": dict(config=DBCacheConfig(Fn=1, residual_diff_threshold=0, max_warmup_steps=0), scm=StepMaskConfig(mask="ultra")),
    "cfg_shared_diff": dict(config=DBCacheConfig(Fn=1, residual_diff_threshold=0), cfg=CFGCacheConfig(cfg_diff_compute_separate=False)),
}


def true_cfg_inputs(replica) -> dict:
    """FLUX with true CFG: the pipeline calls the transformer separately for `cond` and `uncond`."""
    cond = replica.inputs
    return {
        "true_cfg_scale": 2.0,
        "negative_prompt_embeds": replica_models.prompt_embeddings("", cond["prompt_embeds"].shape),
        "negative_pooled_prompt_embeds": replica_models.prompt_embeddings("pooled:", cond["pooled_prompt_embeds"].shape),
    }


@pytest.mark.parametrize("option", NOTHING_SKIPPED)
def test_every_option_reproduces_the_uncached_flux_output_when_it_skips_nothing(replicas, option):
    replica = replicas("flux")
    kwargs = dict(NOTHING_SKIPPED[option])
    config = kwargs.pop("config")
    call = true_cfg_inputs(replica) if option == "cfg_shared_diff" else {}
    baseline = replica(**call) if call else replica.baseline()
    cachedit.enable_cache(replica.pipe, config, **kwargs)
    try:
        output = replica(**call)
        summary = cachedit.summary(replica.pipe)
    finally:
        cachedit.disable_cache(replica.pipe)
    assert torch.equal(output, baseline)
    assert summary["blocks_skipped"] == 0 and summary["steps"] >= replica.model.num_inference_steps


# ------------------------------------------------------------------ TaylorSeer


def test_taylorseer_forecasts_better_than_reuse_under_steady_drift():
    inputs = steady_inputs(10, drift=0.02)
    reference = ToyPipeline()(inputs)
    config = DBCacheConfig(Fn=1, Bn=0, residual_diff_threshold=ALWAYS, max_warmup_steps=3, max_continuous_cached_steps=3)
    errors = {}
    for order in (0, 1, 2):
        _, outputs, summary = toy_run(config, inputs, taylorseer=TaylorSeerConfig(order=order))
        assert decisions(summary) == "CCCcccCccc"
        errors[order] = sum((o - r).abs().mean().item() for o, r in zip(outputs, reference))
    assert errors[1] < 0.5 * errors[0] and errors[2] < 0.5 * errors[0]


def test_taylorseer_builds_no_difference_from_the_first_two_steps():
    # the input jumps between steps 0 and 1 and then stays: a slope through steps 0-1 would extrapolate the jump
    x = steady_inputs(1)[0]
    inputs = [x + 1.0] + [x] * 6
    reference = ToyPipeline()(inputs)
    config = DBCacheConfig(Fn=1, residual_diff_threshold=ALWAYS, max_warmup_steps=2)  # fewer than order + 2: allowed
    _, outputs, summary = toy_run(config, inputs, taylorseer=TaylorSeerConfig(order=2))
    assert decisions(summary) == "CCccccc"
    assert all(torch.allclose(o, r, atol=1e-6) for o, r in zip(outputs[2:], reference[2:]))  # reuse of step 1, no slope
    _, through_jump, _ = toy_run(config, inputs, taylorseer=TaylorSeerConfig(order=1, differences_from_step=0))
    assert (through_jump[2] - reference[2]).abs().max() > 1e-3


def test_taylorseer_only_combines_with_dbcache():
    with pytest.raises(ValueError, match="needs `cache=dbcache` or `cache=fbcache`"):
        toy_run(DBPruneConfig(), steady_inputs(2), taylorseer=TaylorSeerConfig(order=1))


# ------------------------------------------------------------------ DBPrune


def test_dbprune_prunes_a_measured_share_on_the_flux_replica(replicas):
    replica = replicas("flux")
    cachedit.enable_cache(replica.pipe, DBPruneConfig(Fn=1, Bn=1, residual_diff_threshold=0.5, max_warmup_steps=2))
    try:
        output = replica()
        summary = cachedit.summary(replica.pipe)
    finally:
        cachedit.disable_cache(replica.pipe)
    per_step = summary["branches"]["transformer/cond"]["skipped_blocks"]
    assert summary["blocks_skipped"] == sum(per_step) > 0
    assert per_step[:2] == [0, 0]  # warmup
    assert max(per_step) <= 18 - 2  # Fn and Bn never pruned
    assert torch.isfinite(output).all() and not torch.equal(output, replica.baseline())


def test_dbprune_never_prunes_protected_blocks_and_refreshes_on_interval():
    pipe = ToyPipeline(num_blocks=6)
    ran = [0] * 6
    for i, block in enumerate(pipe.transformer.transformer_blocks):
        block.linear.register_forward_pre_hook(lambda module, args, i=i: ran.__setitem__(i, ran[i] + 1))
    config = DBPruneConfig(Fn=1, Bn=1, residual_diff_threshold=ALWAYS, max_warmup_steps=1, non_prune_blocks_ids=[3], residual_cache_update_interval=2)
    _, outputs, summary = toy_run(config, steady_inputs(7), pipe=pipe)
    # Blocks 1, 2, 4: computed at step 0, pruned twice, refreshed, pruned twice, refreshed -> 3 computations.
    assert ran == [7, 3, 3, 7, 3, 7]
    assert summary["branches"]["transformer/cond"]["skipped_blocks"] == [0, 3, 3, 0, 3, 3, 0]
    for got, expected in zip(outputs, ToyPipeline()(steady_inputs(7))):
        torch.testing.assert_close(got, expected)  # identical inputs: pruned estimates are exact


def test_dbprune_max_pruned_steps_caps_the_steps_with_pruning():
    config = DBPruneConfig(residual_diff_threshold=ALWAYS, max_warmup_steps=0, max_pruned_steps=2, residual_cache_update_interval=99)
    _, _, summary = toy_run(config, steady_inputs(6))
    assert decisions(summary) == "CccCCC"


def test_dbprune_dynamic_threshold_prunes_more_than_the_static_one():
    inputs = steady_inputs(8, drift=0.01)
    _, _, probe = toy_run(DBPruneConfig(residual_diff_threshold=0, max_warmup_steps=0), inputs)
    static = DBPruneConfig(residual_diff_threshold=1e-6, max_warmup_steps=1)
    dynamic = DBPruneConfig(residual_diff_threshold=1e-6, max_warmup_steps=1, enable_dynamic_prune_threshold=True,
                            dynamic_prune_threshold_relax_ratio=4.0, max_dynamic_prune_threshold=1.0)
    skipped = {name: toy_run(c, inputs)[2]["blocks_skipped"] for name, c in (("static", static), ("dynamic", dynamic))}
    assert skipped["static"] == 0 < skipped["dynamic"]


# ------------------------------------------------------------------ step masks


def test_static_mask_computes_exactly_the_masked_steps():
    scm = StepMaskConfig(mask="fast", policy="static")
    _, _, summary = toy_run(DBCacheConfig(Fn=1, residual_diff_threshold=0, max_warmup_steps=0), steady_inputs(28), scm=scm)
    computed = {i for i, d in enumerate(decisions(summary)) if d == "C"}
    assert computed == masked_in_steps(scm, 28)


def test_dynamic_mask_lets_the_cache_decide_off_mask():
    scm = StepMaskConfig(mask="ultra", policy="dynamic")
    config = DBCacheConfig(Fn=1, residual_diff_threshold=ALWAYS, max_warmup_steps=0, max_continuous_cached_steps=1)
    _, _, summary = toy_run(config, steady_inputs(28), scm=scm)
    steps = decisions(summary)
    assert all(steps[i] == "C" for i in masked_in_steps(scm, 28))
    assert "cc" not in steps  # the cap still applies off the mask


def test_mask_follows_the_step_count_of_each_call(replicas):
    replica = replicas("tiny_dit")
    scm = StepMaskConfig(mask="medium", policy="static")
    cachedit.enable_cache(replica.pipe, DBCacheConfig(Fn=1, residual_diff_threshold=0, max_warmup_steps=0), scm=scm)
    try:
        for steps in (8, 14):
            replica(num_inference_steps=steps)
            (branch,) = cachedit.summary(replica.pipe)["branches"].values()  # CFG batched: one branch
            decided = branch["decisions"]
            assert {i for i, d in enumerate(decided) if d == "C"} == masked_in_steps(scm, steps)
    finally:
        cachedit.disable_cache(replica.pipe)


# ------------------------------------------------------------------ CFG branches


def test_poisoning_one_branch_leaves_the_other_untouched():
    inputs = steady_inputs(6)
    config = DBCacheConfig(Fn=1, residual_diff_threshold=ALWAYS, max_warmup_steps=1)
    _, clean, _ = toy_run(config, inputs, branches=("cond", "uncond"))

    pipe = ToyPipeline()
    cachedit.enable_cache(pipe, config, adapters=TOY_ADAPTERS)
    (lifecycle,) = pipe._cachedit.lifecycles

    def poison(step):
        if step == 1:
            residuals = lifecycle.states.by_branch["uncond"].engine_state.segment_residuals
            for segment, streams in residuals.items():
                residuals[segment] = {k: torch.full_like(v, math.nan) for k, v in streams.items()}

    poisoned = pipe(inputs, ("cond", "uncond"), on_step_end=poison)
    cond, uncond = poisoned[0::2], poisoned[1::2]
    for got, expected in zip(cond, clean[0::2]):
        assert torch.equal(got, expected)
    assert all(torch.isnan(o).all() for o in uncond[2:])  # the poisoned branch did use its own (poisoned) cache


def test_flux_true_cfg_keeps_one_state_per_branch(replicas):
    replica = replicas("flux")
    cachedit.enable_cache(replica.pipe, DBCacheConfig(Fn=1, residual_diff_threshold=1.0, max_warmup_steps=2))
    try:
        replica(**true_cfg_inputs(replica))
        branches = cachedit.summary(replica.pipe)["branches"]
    finally:
        cachedit.disable_cache(replica.pipe)
    assert set(branches) == {"transformer/cond", "transformer/uncond"}
    assert all(len(b["decisions"]) == replica.model.num_inference_steps for b in branches.values())


def test_shared_diff_makes_the_second_branch_follow_the_first():
    inputs = steady_inputs(8, drift=0.03)
    config = DBCacheConfig(Fn=1, residual_diff_threshold=0.05, max_warmup_steps=1)
    cfg = CFGCacheConfig(cfg_diff_compute_separate=False)
    _, _, summary = toy_run(config, inputs, branches=("cond", "uncond"), cfg=cfg)
    assert decisions(summary, "transformer/uncond") == decisions(summary, "transformer/cond")
    assert "c" in decisions(summary) and "C" in decisions(summary)[1:]


def test_shared_diff_with_the_wrong_branch_order_is_an_error():
    cfg = CFGCacheConfig(cfg_diff_compute_separate=False, cfg_compute_first=True)  # says uncond runs first
    with pytest.raises(RuntimeError, match="branch `cond` reached step 1 before the leading branch `uncond`"):
        toy_run(DBCacheConfig(Fn=1), steady_inputs(2), branches=("cond", "uncond"), cfg=cfg)


def test_one_shared_state_counts_every_call_as_a_step():
    cfg = CFGCacheConfig(enable_separate_cfg=False)
    _, _, summary = toy_run(DBCacheConfig(Fn=1, residual_diff_threshold=ALWAYS, max_warmup_steps=2), steady_inputs(3), branches=("cond", "uncond"), cfg=cfg)
    assert decisions(summary, "transformer/shared") == "CCcccc"


# ------------------------------------------------------------------ per-transformer overrides


def test_per_transformer_overrides_apply_to_the_named_transformer():
    config = DBCacheConfig(Fn=1, residual_diff_threshold=ALWAYS, max_warmup_steps=1, per_transformer={"transformer": {"max_warmup_steps": 3}})
    _, _, summary = toy_run(config, steady_inputs(5))
    assert decisions(summary) == "CCCcc"


def test_per_transformer_overrides_are_validated():
    with pytest.raises(ValueError, match=r"`per_transformer.transformer_2` sets unknown keys \['Fm'\]"):
        DBCacheConfig(per_transformer={"transformer_2": {"Fm": 2}})
    with pytest.raises(ValueError, match=r"names \['transformer_2'\], but this pipeline's transformers are \['transformer'\]"):
        toy_run(DBCacheConfig(Fn=1, per_transformer={"transformer_2": {"Fn": 2}}), steady_inputs(2))
    with pytest.raises(ValueError, match="`Fn` must be >= 1"):
        toy_run(DBCacheConfig(Fn=1, per_transformer={"transformer": {"Fn": 0}}), steady_inputs(2))
