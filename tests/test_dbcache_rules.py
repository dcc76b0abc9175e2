"""DBCache decision rules and estimate maths on a toy transformer whose inputs the test controls."""

import pytest
import torch

import cachedit
from cachedit import DBCacheConfig
from cachedit.hooks import relative_l1
from cachedit.hooks.lifecycle import running_call  # a direct transformer call within the pipeline's call
from tests.helpers.toy import TOY_ADAPTERS, ToyPipeline, ToyTransformer, steady_inputs

ALWAYS = 1e9  # a threshold every diff is below: only warmup and caps decide


def run(config: DBCacheConfig, inputs, branches=("cond",), num_blocks: int = 6):
    pipe = ToyPipeline(num_blocks)
    cachedit.enable_cache(pipe, config, adapters=TOY_ADAPTERS)
    outputs = pipe(inputs, branches)
    return pipe, outputs, cachedit.summary(pipe)


def decisions(summary, branch: str = "transformer/cond") -> str:
    return summary["branches"][branch]["decisions"]


def test_relative_l1_matches_definition():
    reference = torch.tensor([1.0, -2.0, 3.0])
    current = torch.tensor([1.5, -2.0, 2.0])
    assert relative_l1(current, reference) == pytest.approx((0.5 + 0 + 1.0) / 3 / (6.0 / 3))


def test_warmup_steps_always_compute():
    _, _, summary = run(DBCacheConfig(Fn=1, residual_diff_threshold=ALWAYS, max_warmup_steps=3), steady_inputs(8))
    assert decisions(summary) == "CCC" + "c" * 5


def test_first_step_computes_even_without_warmup():
    _, _, summary = run(DBCacheConfig(Fn=1, residual_diff_threshold=ALWAYS, max_warmup_steps=0), steady_inputs(5))
    assert decisions(summary) == "Ccccc"


def test_max_cached_steps_caps_the_cached_count():
    config = DBCacheConfig(Fn=1, residual_diff_threshold=ALWAYS, max_warmup_steps=0, max_cached_steps=2)
    _, _, summary = run(config, steady_inputs(6))
    assert decisions(summary) == "CccCCC"


def test_max_continuous_cached_steps_forces_a_compute():
    config = DBCacheConfig(Fn=1, residual_diff_threshold=ALWAYS, max_warmup_steps=0, max_continuous_cached_steps=2)
    _, _, summary = run(config, steady_inputs(9))
    assert decisions(summary) == "CccCccCcc"


def test_threshold_is_compared_with_the_last_computed_step():
    # The input drifts every step: the diff against the last *computed* step grows until it crosses the threshold.
    inputs = steady_inputs(8, drift=0.05)
    _, _, probe = run(DBCacheConfig(Fn=1, residual_diff_threshold=0, max_warmup_steps=0), inputs)
    step_diff = probe["branches"]["transformer/cond"]["diffs"][1]
    config = DBCacheConfig(Fn=1, residual_diff_threshold=2.5 * step_diff, max_warmup_steps=0)
    _, _, summary = run(config, inputs)
    assert decisions(summary).startswith("CccC")


def test_cached_step_estimate_is_input_plus_cached_residual():
    # Identical inputs every step: the cached middle residual is exact, so cached outputs equal computed ones.
    inputs = steady_inputs(4)
    _, cached, summary = run(DBCacheConfig(Fn=2, Bn=1, residual_diff_threshold=ALWAYS, max_warmup_steps=1), inputs)
    reference = ToyPipeline()(inputs)
    assert decisions(summary) == "Cccc"
    for got, expected in zip(cached, reference):
        torch.testing.assert_close(got, expected)


def test_skipped_blocks_are_counted_as_the_hooks_skipped_them():
    pipe = ToyPipeline(num_blocks=6)
    ran = [0] * 6  # real block computations: the inner layer only runs when the block's own forward does
    for i, block in enumerate(pipe.transformer.transformer_blocks):
        block.linear.register_forward_pre_hook(lambda module, args, i=i: ran.__setitem__(i, ran[i] + 1))
    config = DBCacheConfig(Fn=2, Bn=1, residual_diff_threshold=ALWAYS, max_warmup_steps=1)
    cachedit.enable_cache(pipe, config, adapters=TOY_ADAPTERS)
    pipe(steady_inputs(5))
    summary = cachedit.summary(pipe)
    assert ran == [5, 5, 1, 1, 1, 5]  # middle blocks 2..4 ran on the computed step only
    assert summary["cached_steps"] == 4
    assert summary["blocks_total"] == 5 * 6
    assert summary["blocks_skipped"] == sum(5 - n for n in ran)


def test_bn_compute_blocks_ids_skip_the_other_trailing_blocks():
    config = DBCacheConfig(
        Fn=1, Bn=3, residual_diff_threshold=ALWAYS, max_warmup_steps=1,
        Bn_compute_blocks_ids=[2], non_compute_blocks_diff_threshold=ALWAYS,
    )
    _, _, summary = run(config, steady_inputs(4))
    # 3 cached steps skip the 2 middle blocks and trailing blocks 0 and 1 (block 2 of the tail always runs).
    assert summary["blocks_skipped"] == 3 * (2 + 2)


def test_bn_non_compute_blocks_run_when_the_change_is_large():
    config = DBCacheConfig(
        Fn=1, Bn=3, residual_diff_threshold=ALWAYS, max_warmup_steps=1,
        Bn_compute_blocks_ids=[2], non_compute_blocks_diff_threshold=0.0,
    )
    _, _, summary = run(config, steady_inputs(4, drift=0.1))
    assert summary["blocks_skipped"] == 3 * 2  # only the middle


def test_a_batch_size_change_forces_a_recompute_not_a_broadcast():
    inputs = steady_inputs(3) + steady_inputs(3, batch=2)
    _, outputs, summary = run(DBCacheConfig(Fn=1, residual_diff_threshold=ALWAYS, max_warmup_steps=0), inputs)
    assert decisions(summary) == "CccCcc"
    assert outputs[3].shape[0] == 2


def test_each_guidance_branch_keeps_its_own_state():
    _, _, summary = run(DBCacheConfig(Fn=1, residual_diff_threshold=ALWAYS, max_warmup_steps=2), steady_inputs(4), branches=("cond", "uncond"))
    assert decisions(summary, "transformer/cond") == "CCcc"
    assert decisions(summary, "transformer/uncond") == "CCcc"


def test_a_second_call_at_the_same_timestep_without_a_cache_context_gets_its_own_branch():
    # LongCat-AudioDiT runs its unconditional pass without a cache context: it must not reuse the conditional residual.
    config = DBCacheConfig(Fn=1, residual_diff_threshold=ALWAYS, max_warmup_steps=2)
    pipe = ToyPipeline()
    cachedit.enable_cache(pipe, config, adapters=TOY_ADAPTERS)
    pipe(steady_inputs(4), branches=("cond", "uncond"), contexts=False)
    branches = cachedit.summary(pipe)["branches"]
    assert {name: b["decisions"] for name, b in branches.items()} == {
        "transformer/default": "CCcc", "transformer/default#1": "CCcc"}
    pipe(steady_inputs(5), branches=("cond",), contexts=False)  # one call per step: one branch, every step
    assert {name: b["decisions"] for name, b in cachedit.summary(pipe)["branches"].items()} == {
        "transformer/default": "CCccc"}


def test_an_addition_between_skipped_blocks_is_not_counted_twice():
    # ConsisID adds face cross-attention between blocks: the cached residual already holds it, so a cached step on an
    # unchanged input must give exactly the computed output.
    class AddsBetweenBlocks(ToyTransformer):
        def forward(self, hidden_states, timestep=None):
            for block in self.transformer_blocks:
                hidden_states = block(hidden_states, temb=None) + 0.5
            return hidden_states

    pipe = ToyPipeline()
    pipe.transformer = AddsBetweenBlocks()
    cachedit.enable_cache(pipe, DBCacheConfig(Fn=1, Bn=0, residual_diff_threshold=ALWAYS, max_warmup_steps=1), adapters=TOY_ADAPTERS)
    outputs = pipe(steady_inputs(3))
    assert decisions(cachedit.summary(pipe)) == "Ccc"
    assert torch.allclose(outputs[1], outputs[0], atol=1e-6) and torch.equal(outputs[2], outputs[1])


def test_a_timestep_that_turns_back_starts_a_new_loop_with_fresh_state():
    # Chunk-wise pipelines (AnyFlow-FAR, Framepack, Helios) run one sampling loop per chunk within one call: nothing
    # cached in one chunk may serve the next, and warmup applies again.
    pipe = ToyPipeline()
    cachedit.enable_cache(pipe, DBCacheConfig(Fn=1, residual_diff_threshold=ALWAYS, max_warmup_steps=2),
                          adapters=TOY_ADAPTERS)
    (x,) = steady_inputs(1)
    with torch.no_grad(), running_call(pipe._cachedit), pipe.transformer.cache_context("cond"):
        for t in (900.0, 600.0, 300.0, 0.0, 900.0, 600.0, 300.0):  # two loops
            pipe.transformer(x, timestep=torch.tensor([t]))
    assert decisions(cachedit.summary(pipe)) == "CCcc" + "CCc"
    cachedit.disable_cache(pipe)

    pipe = ToyPipeline()  # rising timesteps (LongCat-AudioDiT's inverted sigmas) are one loop
    cachedit.enable_cache(pipe, DBCacheConfig(Fn=1, residual_diff_threshold=ALWAYS, max_warmup_steps=2),
                          adapters=TOY_ADAPTERS)
    with torch.no_grad(), running_call(pipe._cachedit), pipe.transformer.cache_context("cond"):
        for t in (0.1, 0.4, 0.7, 1.0):
            pipe.transformer(x, timestep=torch.tensor([t]))
    assert decisions(cachedit.summary(pipe)) == "CCcc"


def test_each_pass_of_a_transformer_that_runs_its_blocks_twice_is_a_step():
    # RFD4-Proteina recycles: several passes over its layers inside one transformer call. Each pass is a step of its
    # own (warmup, step index, TaylorSeer's sample points), compared with the previous pass.
    class TwoPasses(ToyTransformer):
        def forward(self, hidden_states, timestep=None):
            for _ in range(2):
                for block in self.transformer_blocks:
                    hidden_states = block(hidden_states, temb=None)
            return hidden_states

    pipe = ToyPipeline()
    pipe.transformer = TwoPasses()
    config = DBCacheConfig(Fn=1, residual_diff_threshold=ALWAYS, max_warmup_steps=3)
    cachedit.enable_cache(pipe, config, adapters=TOY_ADAPTERS, taylorseer=cachedit.TaylorSeerConfig(order=1))
    outputs = pipe(steady_inputs(3))
    assert decisions(cachedit.summary(pipe)) == "CCC" + "ccc"
    assert all(torch.isfinite(output).all() for output in outputs)


def test_enabling_twice_is_an_error_and_installs_nothing_more():
    pipe = ToyPipeline()
    cachedit.enable_cache(pipe, DBCacheConfig(Fn=1), adapters=TOY_ADAPTERS)
    hooks_before = len(pipe.transformer.transformer_blocks[0]._diffusers_hook.hooks)
    with pytest.raises(RuntimeError, match="already enabled"):
        cachedit.enable_cache(pipe, DBCacheConfig(Fn=1), adapters=TOY_ADAPTERS)
    assert len(pipe.transformer.transformer_blocks[0]._diffusers_hook.hooks) == hooks_before == 1


def test_fn_plus_bn_must_leave_a_middle_block():
    with pytest.raises(ValueError, match=r"`Fn` \+ `Bn` = 4 \+ 2 = 6 must be smaller than the 6 blocks"):
        run(DBCacheConfig(Fn=4, Bn=2), steady_inputs(2))


def test_a_failed_enable_leaves_the_pipeline_untouched():
    pipe = ToyPipeline()
    with pytest.raises(ValueError):
        cachedit.enable_cache(pipe, DBCacheConfig(Fn=6), adapters=TOY_ADAPTERS)
    assert not cachedit.is_cache_enabled(pipe)
    assert not any(hasattr(block, "_diffusers_hook") and block._diffusers_hook.hooks for block in pipe.transformer.transformer_blocks)
