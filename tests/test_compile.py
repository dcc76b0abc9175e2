"""Regional compile keeps the cache decisions eager: no graph break, no recompile across decisions, same output."""

import copy

import pytest
import torch
from torch._dynamo.testing import CompileCounter
from torch._dynamo.utils import counters

import cachedit
from cachedit.compiling import check_cacheable
from tests.helpers.toy import TOY_ADAPTERS, ToyPipeline


def _inputs(batch: int = 2, tokens: int = 4, steps: int = 6) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    base = torch.randn(batch, tokens, 8, generator=generator)
    return [base + 0.05 * step * torch.randn(batch, tokens, 8, generator=generator) for step in range(steps)]


def _config(threshold: float) -> cachedit.DBCacheConfig:
    return cachedit.DBCacheConfig(Fn=1, Bn=1, residual_diff_threshold=threshold, max_warmup_steps=0)


def _decisions(pipe) -> str:
    return "|".join(branch["decisions"] for branch in cachedit.summary(pipe)["branches"].values())


def _eager_cached(inputs, threshold):
    pipe = ToyPipeline()
    cachedit.enable_cache(pipe, _config(threshold), adapters=TOY_ADAPTERS)
    return pipe(inputs), _decisions(pipe)


@pytest.fixture
def counter():
    torch._dynamo.reset()
    counters.clear()
    yield CompileCounter()  # runs the captured graph as is: outputs stay bit-exact
    torch._dynamo.reset()


@pytest.mark.parametrize("compile_first", [True, False])
def test_regional_compile_matches_eager_without_breaks_or_recompiles_across_decisions(counter, compile_first):
    pipe, inputs = ToyPipeline(), _inputs()
    for threshold in (0.5, 0.0):  # two calls with different decision patterns
        if compile_first and threshold == 0.5:
            cachedit.compile(pipe, "regional", adapters=TOY_ADAPTERS, backend=counter)
        cachedit.enable_cache(pipe, _config(threshold), adapters=TOY_ADAPTERS)
        if not compile_first and threshold == 0.5:
            cachedit.compile(pipe, "regional", adapters=TOY_ADAPTERS, backend=counter)
        outputs = pipe(inputs)
        decisions = _decisions(pipe)
        cachedit.disable_cache(pipe)
        expected, expected_decisions = _eager_cached(inputs, threshold)
        assert decisions == expected_decisions
        assert all(torch.equal(a, b) for a, b in zip(outputs, expected))
    assert _eager_cached(inputs, 0.5)[1] != _eager_cached(inputs, 0.0)[1]  # the two calls did decide differently
    assert counter.frame_count == 1  # all six blocks share one graph, compiled once for both calls
    assert dict(counters["graph_break"]) == {}


def test_a_shape_change_recompiles_a_bounded_number_of_times_and_recomputes(counter):
    pipe = ToyPipeline()
    cachedit.compile(pipe, "regional", adapters=TOY_ADAPTERS, backend=counter)
    cachedit.enable_cache(pipe, _config(0.5), adapters=TOY_ADAPTERS)
    inputs = _inputs()[:3] + [x[:1] for x in _inputs()[3:]]  # the batch shrinks within the call
    outputs = pipe(inputs)
    decisions = _decisions(pipe)
    expected, expected_decisions = _eager_cached(inputs, 0.5)
    assert decisions == expected_decisions and decisions[3] == "C"  # never a cached tensor of another shape
    assert all(torch.equal(a, b) for a, b in zip(outputs, expected))
    pipe([x[:, :3] for x in _inputs()])  # fewer tokens: one more recompile, with dynamic dimensions
    compiled = counter.frame_count
    pipe([x[:, :2] for x in _inputs()])
    assert counter.frame_count == compiled <= 4  # first shape, batch 1 (specialised), dynamic; then none


def test_full_compile_and_caching_refuse_each_other_naming_regional():
    pipe = ToyPipeline()
    cachedit.compile(pipe, "full", adapters=TOY_ADAPTERS, backend="eager")
    with pytest.raises(RuntimeError, match=r"`compile=full` .*use `compile=regional`"):
        cachedit.enable_cache(pipe, _config(0.5), adapters=TOY_ADAPTERS)
    cachedit.compile(pipe, "none", adapters=TOY_ADAPTERS)
    cachedit.enable_cache(pipe, _config(0.5), adapters=TOY_ADAPTERS)
    with pytest.raises(RuntimeError, match=r"`compile=full` .*use `compile=regional`"):
        cachedit.compile(pipe, "full", adapters=TOY_ADAPTERS, backend="eager")
    with pytest.raises(RuntimeError, match=r"use `compile=regional`"):
        check_cacheable(torch.compile(ToyPipeline().transformer))  # the user's own whole-model compile


def test_compile_none_restores_the_eager_forwards_and_disable_cache_keeps_the_compiled_ones():
    pipe = ToyPipeline()
    eager = [block.forward for block in pipe.transformer.transformer_blocks]
    cachedit.compile(pipe, "regional", adapters=TOY_ADAPTERS, backend="eager")
    cachedit.enable_cache(pipe, _config(0.5), adapters=TOY_ADAPTERS)
    cachedit.disable_cache(pipe)
    assert all(hasattr(block, "_cachedit_eager_forward") for block in pipe.transformer.transformer_blocks)
    cachedit.compile(pipe, "none", adapters=TOY_ADAPTERS)
    assert [block.forward for block in pipe.transformer.transformer_blocks] == eager
    with pytest.raises(ValueError, match=r"`compile` must be one of \['none', 'regional', 'full'\], got 'fast'"):
        cachedit.compile(pipe, "fast", adapters=TOY_ADAPTERS)


@pytest.mark.filterwarnings("ignore:Already found a `peft_config` attribute")  # several adapters, as intended
def test_more_lora_adapter_sets_than_the_recompile_limit_raise_instead_of_running_eager(counter):
    """Each new set of active adapters compiles the blocks again (dynamo guards on them); past the recompile limit
    torch would run them eagerly without a word. cachedit.compile turns that into an error naming the limit and the
    fixes; below the limit (or with a raised one) the compiled blocks compute what eager LoRA computes."""
    from peft import LoraConfig, inject_adapter_in_model
    from peft.tuners.tuners_utils import BaseTunerLayer

    pipe, inputs = ToyPipeline(), _inputs(steps=3)
    names = ["a", "b", "c"]
    for name in names:  # random LoRA weights (init_lora_weights=False), so every adapter changes the output
        inject_adapter_in_model(LoraConfig(r=2, target_modules=["linear"], init_lora_weights=False), pipe.transformer,
                                adapter_name=name)

    def activate(name: str) -> None:
        for module in pipe.transformer.modules():
            if isinstance(module, BaseTunerLayer):
                module.set_adapter(name)

    eager = {}
    for name in names:
        activate(name)
        eager[name] = pipe(inputs)
    assert not torch.equal(eager["a"][-1], eager["b"][-1])
    cachedit.compile(pipe, "regional", adapters=TOY_ADAPTERS, backend=counter)
    cachedit.enable_cache(pipe, _config(0.0), adapters=TOY_ADAPTERS)  # computes every block: outputs are exact
    with torch._dynamo.config.patch(recompile_limit=2):
        for name in ["a", "b", "a"]:
            activate(name)
            assert all(torch.equal(x, y) for x, y in zip(pipe(inputs), eager[name]))
        assert counter.frame_count == 2  # one graph per adapter set: switching back reuses it
        activate("c")
        with pytest.raises(RuntimeError, match=r"hit `torch._dynamo.config.recompile_limit` \(2\) in ToyTransformer: "
                                               r"past it torch would run the frame eagerly.*LoRA.*`pipe.fuse_lora\(\)`"):
            pipe(inputs)
    assert torch._dynamo.config.fail_on_recompile_limit_hit is False  # only on while the transformer runs
    with torch._dynamo.config.patch(recompile_limit=3):  # the limit raised: the third set compiles too
        assert all(torch.equal(x, y) for x, y in zip(pipe(inputs), eager["c"]))
    assert counter.frame_count == 3


@pytest.mark.parametrize("mode", ["regional", "full"])
def test_a_deep_copy_of_a_compiled_transformer_computes_with_its_own_weights(counter, mode):
    """The compiled forwards are objects bound to their module, so a copy (deepcopy, quantize_dynamic) recompiles
    nothing and runs its own weights: with a cache, once the original's disable_cache cleared the copy (issue 21)."""
    pipe, inputs = ToyPipeline(), _inputs(steps=3)
    cachedit.compile(pipe, mode, adapters=TOY_ADAPTERS, backend=counter)
    if mode == "regional":
        cachedit.enable_cache(pipe, _config(0.0), adapters=TOY_ADAPTERS)
    original = pipe.transformer
    copied = copy.deepcopy(original)
    with torch.no_grad():
        for parameter in copied.parameters():
            parameter.mul_(1.1)
    expected = ToyPipeline()
    expected.transformer.load_state_dict(copied.state_dict())  # the copy's weights, never compiled or cached
    pipe.transformer = copied
    if mode == "regional":
        with pytest.raises(RuntimeError, match="is a copy of a module cached by cachedit"):
            pipe(inputs)
        pipe.transformer = original
        cachedit.disable_cache(pipe)
        pipe.transformer = copied
    assert all(torch.equal(x, y) for x, y in zip(pipe(inputs), expected(inputs)))
    assert counter.frame_count == 1  # the copy reused the original's graph (dynamo caches per code object)
