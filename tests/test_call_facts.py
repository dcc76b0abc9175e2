"""Family quirks are data: a transformer class's `CallFacts` drive the lifecycle, a class without them gets the
generic path; an adapter's forward patch (Latte's block pairs) is attached at enable time, never while a plan
resolves, and removed by the reference `attach_forward_patch` returned."""

from __future__ import annotations

import pytest
import torch

import cachedit
from cachedit import DBCacheConfig
from cachedit.adapters import CallFacts, KwargSays, call_facts_for
from cachedit.adapters.call_facts import CALL_FACTS, GENERIC
from cachedit.hooks.attach import ForwardPatchHook, attach_forward_patch, detach_engine, detach_forward_patch
from cachedit.plan import resolve_plan
from tests.conftest import Replica
from tests.helpers.toy import TOY_ADAPTERS, ToyTransformer, steady_inputs

SKIPPING = DBCacheConfig(Fn=1, Bn=0, residual_diff_threshold=0.5, max_warmup_steps=0)
STEPS = 4


class _KVToy(ToyTransformer):
    """Each step the caller first runs a pass with ``kv_mode="store"`` (as a K/V extract pass would), then the step."""

    def forward(self, hidden_states, timestep=None, kv_mode=None):
        return super().forward(hidden_states, timestep)


class RegisteredKVToy(_KVToy):
    pass


class UnregisteredKVToy(_KVToy):
    pass


class SubclassOfRegisteredKVToy(RegisteredKVToy):
    pass


@pytest.fixture
def store_fact(monkeypatch):
    facts = CallFacts(stores_kv=(KwargSays("kv_mode", "store"),))
    monkeypatch.setitem(CALL_FACTS, "RegisteredKVToy", facts)
    return facts


def _run_with_store_passes(transformer: torch.nn.Module):
    """The store passes' outputs and the summary of a cached request of `STEPS` steps."""
    cachedit.enable_cache(transformer, SKIPPING, adapters=TOY_ADAPTERS)
    try:
        stored = []
        with torch.no_grad(), cachedit.request(transformer, num_inference_steps=STEPS):
            for step, x in enumerate(steady_inputs(STEPS, drift=0.01)):
                timestep = torch.tensor([1000.0 - step])
                stored.append(transformer(x, timestep=timestep, kv_mode="store"))
                transformer(x, timestep=timestep)
        return stored, cachedit.summary(transformer)
    finally:
        cachedit.disable_cache(transformer)


def test_kwarg_says_reads_a_keyword_or_one_item_of_its_dict():
    says = KwargSays("kv_cache_flag", True, item="is_cache_step")
    assert says.holds({"kv_cache_flag": {"is_cache_step": True}})
    assert not says.holds({"kv_cache_flag": {"is_cache_step": False}})
    assert not says.holds({"kv_cache_flag": None}) and not says.holds({})
    assert KwargSays("kv_cache_mode", "extract").holds({"kv_cache_mode": "extract"})
    assert not KwargSays("kv_cache_mode", "extract").holds({"kv_cache_mode": "read"})


def test_facts_are_looked_up_by_transformer_class_and_its_bases(store_fact):
    assert call_facts_for(RegisteredKVToy()) is store_fact
    assert call_facts_for(SubclassOfRegisteredKVToy()) is store_fact
    assert call_facts_for(UnregisteredKVToy()) is GENERIC
    plan = resolve_plan({"transformer": RegisteredKVToy()}, SKIPPING, adapters=TOY_ADAPTERS)
    assert [stack.call_facts for stack in plan.stacks] == [store_fact]


def test_a_transformer_whose_facts_say_it_stores_kv_runs_that_pass_uncached_and_uncounted(store_fact):
    transformer = RegisteredKVToy()
    with torch.no_grad():
        expected = [transformer(x, timestep=torch.tensor([1000.0 - s])) for s, x in
                    enumerate(steady_inputs(STEPS, drift=0.01))]
    stored, summary = _run_with_store_passes(transformer)
    assert summary["steps"] == STEPS and list(summary["branches"]) == ["transformer/default"]
    assert summary["cached_steps"] > 0  # the steps themselves cache
    assert all(torch.equal(s, e) for s, e in zip(stored, expected))  # every store pass computed every block


def test_a_transformer_without_facts_takes_the_generic_path(store_fact):
    _, summary = _run_with_store_passes(UnregisteredKVToy())
    # Each store pass is a step like any call: the step's second call at the same timestep is branch default#1.
    assert summary["steps"] == 2 * STEPS
    assert sorted(summary["branches"]) == ["transformer/default", "transformer/default#1"]


def _doubled(module, forward, args, kwargs):
    return 2 * forward(*args, **kwargs)


def _plus_one(module, forward, args, kwargs):
    return forward(*args, **kwargs) + 1


def test_a_forward_patch_is_removed_by_the_reference_it_returned_only_by_it_and_in_any_order():
    transformer = ToyTransformer(num_blocks=2)
    x = steady_inputs(1)[0]
    with torch.no_grad():
        plain = transformer(x)
        doubled = attach_forward_patch(transformer, _doubled, "a")
        plus_one = attach_forward_patch(transformer, _plus_one, "b")
        assert torch.equal(transformer(x), 2 * plain + 1)
        detach_engine(transformer)  # the engines' hooks only: a patch belongs to whoever attached it
        assert torch.equal(transformer(x), 2 * plain + 1)
        detach_forward_patch(transformer, plus_one)
        assert torch.equal(transformer(x), 2 * plain)
        assert list(transformer._diffusers_hook.hooks.values()) == [doubled]
        with pytest.raises(RuntimeError, match="not attached"):
            detach_forward_patch(transformer, plus_one)
        detach_forward_patch(transformer, doubled)
        assert torch.equal(transformer(x), plain) and not transformer._diffusers_hook.hooks
        # in any order: diffusers' `remove_hook` rewires the hook above the removed one by its `forward`, which for a
        # hook with a `new_forward` (a forward patch, the engine's root hook) is that hook itself: the removed one ran on
        doubled = attach_forward_patch(transformer, _doubled, "a")
        plus_one = attach_forward_patch(transformer, _plus_one, "b")
        detach_forward_patch(transformer, doubled)  # the lower one first
        assert torch.equal(transformer(x), plain + 1)
        detach_forward_patch(transformer, plus_one)
        assert torch.equal(transformer(x), plain) and transformer.forward.__func__ is type(transformer).forward


def _hooks(module: torch.nn.Module) -> list:
    return [hook for m in module.modules() if hasattr(m, "_diffusers_hook") for hook in m._diffusers_hook.hooks.values()]


def test_resolving_the_latte_plan_attaches_nothing_enabling_attaches_its_patch_and_disabling_removes_it():
    replica = Replica("latte", num_inference_steps=2, height=64, width=64)
    transformer = replica.pipe.transformer
    modules, forward = list(transformer.modules()), transformer.forward
    plan = resolve_plan(replica.pipe, DBCacheConfig())
    (stack,) = plan.stacks
    assert stack.forward_patch is not None and len(stack.blocks) == len(transformer.transformer_blocks)
    assert _hooks(transformer) == [] and list(transformer.modules()) == modules and transformer.forward == forward

    cachedit.enable_cache(replica.pipe, DBCacheConfig())
    (patched, hook), = replica.pipe._cachedit.patches
    assert patched is transformer and isinstance(hook, ForwardPatchHook) and hook in _hooks(transformer)
    attached = _hooks(transformer)
    sharing = type(replica.pipe).__mro__[1](**replica.pipe.components)  # the LattePipeline class, same transformer
    with pytest.raises(RuntimeError, match="caching was enabled on another pipeline that shares this transformer"):
        cachedit.enable_cache(sharing, DBCacheConfig())
    assert _hooks(transformer) == attached and not cachedit.is_cache_enabled(sharing)  # nothing of it stays
    cachedit.disable_cache(replica.pipe)
    assert _hooks(transformer) == [] and list(transformer.modules()) == modules
    assert transformer.forward.__func__ is type(transformer).forward
