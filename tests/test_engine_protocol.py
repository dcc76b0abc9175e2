"""The written engine protocol (cachedit/hooks/protocol.py), the lifecycle that drives it, and the plan resolved once.

A new technique is two files: its module (config, policy, one `register` call) and its YAML option. Here both are
written into temporary directories, and enable_cache, the stats, `load_config`, the Hydra composition, the sweep's
labels and the tiny DiT pick the technique up with no other edit.
"""

from __future__ import annotations

import dataclasses
import importlib
import sys
import textwrap

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

import cachedit
from cachedit.adapters.patterns import HIDDEN_OUT
from cachedit.caches import CACHE_CONFIGS, TECHNIQUES, DBCacheConfig
from cachedit.hooks.attach import attach_engine, detach_engine
from cachedit.hooks.lifecycle import Lifecycle
from cachedit.hooks.protocol import CacheEngine
from cachedit.plan import resolve_plan
from tests.helpers.toy import TOY_ADAPTERS, ToyPipeline, steady_inputs

CONF = __file__.rsplit("/tests/", 1)[0] + "/conf"

# File 1 of 2: the technique's module, as it would lie in cachedit/caches/every_other.py.
TECHNIQUE_MODULE = """
    from dataclasses import dataclass

    from cachedit.caches import CacheConfig, register
    from cachedit.config_types import check_types
    from cachedit.hooks.protocol import Policy, StepContext


    @dataclass
    class EveryOtherConfig(CacheConfig):
        name: str = "every_other"
        Fn: int = 1
        Bn: int = 0
        warmup: int = 2

        def __post_init__(self) -> None:
            check_types(self)

        def strify(self) -> str:
            return f"EveryOther_F{self.Fn}B{self.Bn}_W{self.warmup}"


    class EveryOther(Policy):  # after `warmup` steps, skip every other step
        measures_change = False

        def __init__(self, config):
            self.config = config
            self.recorded = []

        def decide(self, step: StepContext, change):
            return step.index >= self.config.warmup and step.index % 2 == 1

        def record(self, step: StepContext, skipped: bool):
            self.recorded.append((step.branch, step.index, skipped))


    register(EveryOtherConfig, policy=EveryOther, takes_taylorseer=True)
"""

# File 2 of 2: its YAML option, as it would lie in conf/cache/every_other.yaml.
TECHNIQUE_YAML = """
    defaults:
      - /cachedit/cache/every_other@_here_
      - _self_

    warmup: 3
"""


@pytest.fixture
def every_other(tmp_path, monkeypatch):
    """The technique's two files, written and imported; the config class it registers."""
    (tmp_path / "every_other.py").write_text(textwrap.dedent(TECHNIQUE_MODULE))
    (tmp_path / "conf" / "cache").mkdir(parents=True)
    (tmp_path / "conf" / "cache" / "every_other.yaml").write_text(textwrap.dedent(TECHNIQUE_YAML))
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module("every_other")
    yield module.EveryOtherConfig
    CACHE_CONFIGS.pop("every_other")
    TECHNIQUES.pop(module.EveryOtherConfig)
    sys.modules.pop("every_other")


def test_a_new_technique_is_its_module_and_its_yaml(every_other, tmp_path):
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file()) == [
        "conf/cache/every_other.yaml", "every_other.py"]
    pipe = ToyPipeline()
    inputs = steady_inputs(8, drift=0.01)
    uncached = pipe(inputs)
    cachedit.enable_cache(pipe, every_other(), adapters=TOY_ADAPTERS)
    cached = pipe(inputs)
    summary = cachedit.summary(pipe)
    assert summary["cached_steps"] == 3  # steps 3, 5 and 7 of 8
    assert torch.equal(cached[0], uncached[0]) and not torch.equal(cached[3], uncached[3])
    (lifecycle,) = pipe._cachedit.lifecycles
    assert lifecycle.engine.policy.recorded == [("cond", i, i in (3, 5, 7)) for i in range(8)]
    assert summary["settings"]["cache"] == {"type": "EveryOtherConfig", "name": "every_other", "Fn": 1, "Bn": 0,
                                            "warmup": 2}

    # ... and with TaylorSeer, which it declared it takes, on what it skips
    cachedit.disable_cache(pipe)
    cachedit.enable_cache(pipe, every_other(), adapters=TOY_ADAPTERS, taylorseer=cachedit.TaylorSeerConfig(order=1))
    assert not torch.equal(pipe(inputs)[3], cached[3])

    # load_config, the Hydra schemas and the sweep's labels read the config's own description
    assert cachedit.load_config({"name": "every_other", "warmup": 4}).cache == every_other(warmup=4)
    from cachedit.harness.sweep import _describe
    from runners.conf_store import schemas

    assert schemas()[("cache", "every_other")] is every_other
    assert _describe(dataclasses.asdict(every_other()), "every_other") == ("every_other F1B0", "EveryOther_F1B0_W2")


def _compose(tmp_path, *overrides):
    """What ``python -m runners.generate`` composes, with the technique's YAML directory on the search path."""
    from runners.conf_store import register_configs

    register_configs()
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(version_base="1.3", config_dir=CONF):
            config = compose("generate", overrides=[f"hydra.searchpath=[file://{tmp_path / 'conf'}]", *overrides])
            return OmegaConf.to_object(config)
    finally:
        GlobalHydra.instance().clear()


@pytest.fixture
def one_torch_thread():
    # on 2 shared cores, 2 torch threads run >10x slower than 1 whenever another process competes
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def test_a_new_technique_composes_through_hydra_and_runs_on_the_tiny_dit(every_other, tmp_path, one_torch_thread):
    from cachedit.zoo.tiny_dit import load_tiny_dit

    run = _compose(tmp_path, "model=tiny_dit", "cache=every_other")
    assert run.cache == every_other(warmup=3)  # the YAML's own key over the schema's default
    pipe = load_tiny_dit()
    pipe.set_progress_bar_config(disable=True)

    def draw():
        generator = torch.Generator("cpu").manual_seed(0)
        return pipe([4], num_inference_steps=8, generator=generator, output_type="pt").images

    uncached = draw()
    cachedit.enable_cache(pipe, run.cache)
    cached = draw()
    assert cachedit.summary(pipe)["cached_steps"] == 3  # steps 3, 5 and 7 of 8, after the YAML's warmup of 3
    assert not torch.equal(cached, uncached)
    cachedit.disable_cache(pipe)

    # a warmup as long as the call skips nothing: bit-exact with the uncached run
    cachedit.enable_cache(pipe, _compose(tmp_path, "model=tiny_dit", "cache=every_other", "cache.warmup=8").cache)
    assert torch.equal(draw(), uncached) and cachedit.summary(pipe)["cached_steps"] == 0


class RecordingEngine(CacheEngine):
    """Computes every block and records what the lifecycle handed it."""

    name = "toy"

    def __init__(self):
        self.calls, self.steps, self.blocks = [], [], []

    def new_state(self):
        return type("State", (), {"reset": lambda self: None, "invalidate": lambda self: None})()

    def reset(self):
        pass

    def begin_call(self, num_steps):
        self.calls.append(num_steps)

    def begin_step(self, step):
        self.steps.append((step.branch, step.index, step.num_steps, step.timestep, step.stats_key))

    def run_block(self, step, index, forward, args, kwargs):
        self.blocks.append((step.branch, step.index, index))
        return forward(*args, **kwargs)


def test_the_lifecycle_hands_the_engine_each_branch_and_step():
    pipe = ToyPipeline(num_blocks=2)
    engine = RecordingEngine()
    lifecycle = Lifecycle(engine)
    attach_engine(pipe.transformer, list(pipe.transformer.transformer_blocks), lifecycle)
    try:
        lifecycle.begin_call(3)
        pipe(steady_inputs(3), branches=("cond", "uncond"))
        assert engine.calls == [3]
        assert engine.steps == [(b, i, 3, None, f"toy/{b}") for i in range(3) for b in ("cond", "uncond")]
        assert engine.blocks == [(b, i, k) for i in range(3) for b in ("cond", "uncond") for k in range(2)]

        # without cache contexts, the branch is "default" and the timestep the transformer was called with
        engine.steps.clear()
        lifecycle.begin_call(2)
        pipe(steady_inputs(2), contexts=False)
        assert engine.steps == [("default", 0, 2, 1000.0, "toy/default"), ("default", 1, 2, 999.0, "toy/default")]
    finally:
        detach_engine(pipe.transformer)


class _Identity(torch.nn.Module):
    def forward(self, hidden_states):
        return hidden_states


def _two_transformers():
    def block_lists():
        module = torch.nn.Module()
        module.first = torch.nn.ModuleList(_Identity() for _ in range(4))
        module.second = torch.nn.ModuleList(_Identity() for _ in range(4))
        return module

    return {"transformer": block_lists(), "transformer_2": block_lists()}


def _adapters(knobs: dict | None):
    second = ("second", HIDDEN_OUT, knobs) if knobs is not None else ("second", HIDDEN_OUT)
    lists = (("first", HIDDEN_OUT), second)
    return [cachedit.BlockAdapter(block_lists=lists), cachedit.BlockAdapter(block_lists=lists, transformer="transformer_2")]


class _Holder:
    """A pipeline-like holder of transformers (the adapters say where their blocks are)."""

    def __init__(self, **transformers):
        self.__dict__.update(transformers)

    def __call__(self):
        return None


def test_a_failed_enable_leaves_no_hook_of_its_own_and_every_hook_of_another_pipeline():
    both = _Holder(**_two_transformers())
    other = _Holder(transformer=both.transformer_2)  # caches the second transformer first
    lists = (("first", HIDDEN_OUT), ("second", HIDDEN_OUT))
    cachedit.enable_cache(other, DBCacheConfig(Fn=1), adapters=[cachedit.BlockAdapter(block_lists=lists)])
    def hooks_in_order(module):
        return {name: list(m._diffusers_hook.hooks) for name, m in module.named_modules() if hasattr(m, "_diffusers_hook")}

    taken = hooks_in_order(both.transformer_2)
    with pytest.raises(RuntimeError, match="caching was enabled on another pipeline that shares this transformer"):
        cachedit.enable_cache(both, DBCacheConfig(Fn=1), adapters=_adapters(None))
    assert not cachedit.hooks.has_cache_hooks(both.transformer)  # its stacks had attached before the refusal
    assert not cachedit.is_cache_enabled(both)
    assert hooks_in_order(both.transformer_2) == taken
    cachedit.disable_cache(other)
    cachedit.enable_cache(both, DBCacheConfig(Fn=1), adapters=_adapters(None))  # nothing stale in the way
    assert cachedit.hooks.has_cache_hooks(both.transformer) and cachedit.hooks.has_cache_hooks(both.transformer_2)


def test_override_layers_apply_in_their_documented_order():
    """config < per_transformer[attribute] < a block list's own knobs."""
    config = DBCacheConfig(Fn=1, residual_diff_threshold=0.1, max_warmup_steps=3,
                           per_transformer={"transformer_2": {"residual_diff_threshold": 0.2, "max_warmup_steps": 5}})
    plan = resolve_plan(_two_transformers(), config, adapters=_adapters({"residual_diff_threshold": 0.3}))
    found = {s.name: (s.config.residual_diff_threshold, s.config.max_warmup_steps) for s in plan.stacks}
    assert found == {
        "transformer.first": (0.1, 3), "transformer.second": (0.3, 3),
        "transformer_2.first": (0.2, 5), "transformer_2.second": (0.3, 5),
    }
    assert plan.block_counts() == {"transformer": 8, "transformer_2": 8}
    assert {s.config.per_transformer == {} for s in plan.stacks} == {True}


def test_every_check_runs_once_per_stack(monkeypatch):
    counted = []
    original = DBCacheConfig.check_block_count
    monkeypatch.setattr(DBCacheConfig, "check_block_count",
                        lambda self, n, where="": counted.append((n, where)) or original(self, n, where))
    pipe = ToyPipeline()
    cachedit.enable_cache(pipe, DBCacheConfig(Fn=1), adapters=TOY_ADAPTERS)
    assert counted == [(6, "`transformer`")]
    with pytest.raises(ValueError, match=r"`Fn` \+ `Bn` = 4 \+ 1 = 5 must be smaller than the 4 blocks of `m` "
                                         r"transformer.second"):
        resolve_plan(_two_transformers(), DBCacheConfig(Fn=1), adapters=_adapters({"Fn": 4, "Bn": 1}), label="m")
