"""Every registered DiT family on its offline replica, plus BlockAdapter on custom transformers.

Per family: the pipeline runs end to end with caching enabled; threshold 0 reproduces the uncached output bit for
bit; a high threshold caches a measured, non-zero number of steps and skips blocks; disable restores the original.
"""

from __future__ import annotations

import diffusers
import pytest
import torch
from diffusers.models.cache_utils import CacheMixin

import cachedit
from cachedit import BlockAdapter, DBCacheConfig
from cachedit.adapters import registry
from cachedit.adapters.block_adapter import discover_block_lists
from cachedit.adapters.patterns import ENCODER_HIDDEN_OUT, HIDDEN_OUT
from cachedit.hooks.lifecycle import running_call  # a direct transformer call within the pipeline's call
from cachedit.zoo import dit_families
from cachedit.zoo.dit_families.modular import modular_classes
from cachedit.zoo.entries import MODELS, UNPROVEN, get_entry, models_of
from tests.conftest import Replica

STEPS = 6
# Random weights change a lot from step to step (DESIGN §4): "caches something" needs a threshold above every diff.
HIGH = dict(Fn=1, Bn=0, residual_diff_threshold=2.0, max_warmup_steps=1)
EXACT = dict(Fn=1, Bn=0, residual_diff_threshold=0.0, max_warmup_steps=0)
# Families the default run skips (see the `slow` marker); empty while the whole sweep stays fast (AnyFlow-FAR, the
# slowest, takes about 3 s: its self-attention runs on uncompiled flex attention only).
SLOW: set[str] = set()


def _families() -> list:
    return [pytest.param(name, marks=pytest.mark.slow) if name in SLOW else name for name in sorted(MODELS)]


@pytest.fixture(scope="module")
def family_replicas():
    cache: dict[str, Replica] = {}

    def get(name: str) -> Replica:
        if name not in cache:
            cache[name] = Replica(name, num_inference_steps=STEPS, height=64, width=64)
        return cache[name]

    return get


def _cached(replica: Replica, config: DBCacheConfig):
    cachedit.enable_cache(replica.pipe, config)
    try:
        return replica(), cachedit.summary(replica.pipe)
    finally:
        cachedit.disable_cache(replica.pipe)


@pytest.mark.parametrize("family", _families())
def test_threshold_zero_reproduces_the_uncached_output_bit_for_bit(family_replicas, family):
    replica = family_replicas(family)
    baseline = replica.baseline()
    output, summary = _cached(replica, DBCacheConfig(**EXACT))
    assert torch.equal(output, baseline)
    # A K/V extract pass (FLUX.2 Klein KV's and Qwen-Image 2.1's first call) runs uncached and is no step.
    assert summary["steps"] >= STEPS - 1 and summary["cached_steps"] == 0
    assert summary["blocks_total"] > 0 and summary["blocks_skipped"] == 0


@pytest.mark.parametrize("family", _families())
def test_a_high_threshold_caches_a_measured_number_of_steps(family_replicas, family):
    replica = family_replicas(family)
    baseline = replica.baseline()
    output, summary = _cached(replica, DBCacheConfig(**HIGH))
    branches = summary["branches"]
    assert 0 < summary["cached_steps"] == sum(b["cached_steps"] for b in branches.values())
    assert summary["cached_steps"] <= summary["steps"] - len(branches)  # each branch computes its first step
    assert summary["blocks_skipped"] > 0
    assert torch.isfinite(output).all()
    assert not torch.equal(output, baseline)  # something really was skipped


@pytest.mark.parametrize("family", _families())
def test_disable_restores_the_original_pipeline(family_replicas, family):
    replica = family_replicas(family)
    pipe_class = type(replica.pipe)
    baseline = replica.baseline()
    cachedit.enable_cache(replica.pipe, DBCacheConfig(**HIGH))
    replica()
    cachedit.disable_cache(replica.pipe)
    assert type(replica.pipe) is pipe_class and not cachedit.is_cache_enabled(replica.pipe)
    for name in ("transformer", "transformer_2"):
        module = getattr(replica.pipe, name, None)
        if isinstance(module, torch.nn.Module):
            assert not cachedit.hooks.has_cache_hooks(module)
    assert torch.equal(replica(), baseline)


def test_flux2_klein_kv_computes_every_block_of_its_kv_extract_pass(family_replicas):
    """Step 0 stores every block's reference K/V and later steps read them: it runs uncached and uncounted (no
    branch step), so even a threshold that skips everything it may computes step 0, then step 1 (the first counted
    step), and caches the rest."""
    replica = family_replicas("flux2_klein_kv")
    modes = []
    handle = replica.pipe.transformer.register_forward_pre_hook(
        lambda module, args, kwargs: modes.append(kwargs.get("kv_cache_mode")), with_kwargs=True)
    try:
        output, summary = _cached(replica, DBCacheConfig(Fn=1, Bn=0, residual_diff_threshold=1e9, max_warmup_steps=0))
    finally:
        handle.remove()
    branch = summary["branches"]["transformer/default"]
    assert modes == ["extract"] + ["cached"] * (STEPS - 1)
    assert branch["decisions"] == "C" + "c" * (STEPS - 2) and branch["skipped_blocks"][0] == 0
    assert torch.isfinite(output).all()


def test_anyflow_far_computes_every_block_of_its_kv_cache_writes(family_replicas):
    """After each chunk but the last, AnyFlow-FAR calls the transformer once more (`is_cache_step`) so that every
    block writes the keys and values the next chunk reads: those calls run uncached and uncounted, so even a threshold
    that caches everything it may computes all their blocks, and only the denoising calls are steps."""
    replica = family_replicas("anyflow_far")
    transformer = replica.pipe.transformer
    flags, computed = [], []
    hooks = [transformer.register_forward_pre_hook(
        lambda module, args, kwargs: flags.append(kwargs["kv_cache_flag"]["is_cache_step"]), with_kwargs=True)]
    # `attn1` runs only inside a computed block (a skipped block never reaches it): which call each one served.
    hooks += [block.attn1.register_forward_pre_hook(lambda module, args: computed.append(flags[-1]))
              for block in transformer.blocks]
    try:
        output, summary = _cached(replica, DBCacheConfig(Fn=1, Bn=0, residual_diff_threshold=1e9, max_warmup_steps=0))
    finally:
        for hook in hooks:
            hook.remove()
    chunks = len(transformer.config.chunk_partition)
    assert chunks >= 2 and flags.count(True) == chunks - 1
    assert summary["steps"] == flags.count(False) == chunks * STEPS and summary["cached_steps"] > 0
    assert computed.count(True) == (chunks - 1) * len(transformer.blocks)
    assert torch.isfinite(output).all()


@pytest.mark.parametrize("model", sorted(MODELS))
def test_every_model_pipeline_is_registered(model):
    assert get_entry(model).pipeline_class in cachedit.supported_pipelines()


def test_every_registry_family_is_proven_by_a_replica_or_its_pipelines_are_listed_as_unproven_with_a_reason():
    unaccounted = []
    for family, (_, pipelines) in registry.FAMILIES.items():
        proven = models_of(pipelines) + [name for name in pipelines if name in modular_classes()]  # tests/test_modular.py
        reasons = [UNPROVEN[name].strip() for name in pipelines if name in UNPROVEN]
        if proven:
            assert not reasons, f"{family} is proven by {proven}: drop its pipelines from UNPROVEN"
        elif not (reasons and all(reasons)):
            unaccounted.append(family)
    stale = [name for name in UNPROVEN if name not in registry.ADAPTERS]
    assert unaccounted == [] and stale == []


def test_supported_pipelines_are_real_diffusers_classes_grouped_by_family():
    supported = cachedit.supported_pipelines()
    assert supported == sorted(supported) and len(supported) > 100
    missing = [name for name in supported if name != "TinyDiTPipeline" and not hasattr(diffusers, name)]
    assert missing == []
    # Variants share their family's adapters.
    for variant, base in [
        ("FluxKontextPipeline", "FluxPipeline"),
        ("FluxFillPipeline", "FluxPipeline"),
        ("QwenImageEditPipeline", "QwenImagePipeline"),
        ("StableDiffusion3Img2ImgPipeline", "StableDiffusion3Pipeline"),
        ("WanImageToVideoPipeline", "WanPipeline"),
    ]:
        assert registry.ADAPTERS[variant] is registry.ADAPTERS[base]


def test_a_non_matching_pipeline_raises_the_promised_error():
    class MyPipeline:
        transformer = torch.nn.Linear(2, 2)

    with pytest.raises(ValueError) as error:
        cachedit.enable_cache(MyPipeline(), DBCacheConfig())
    message = str(error.value)
    assert message.startswith("MyPipeline is not a supported pipeline.")
    assert "FluxPipeline" in message and "WanPipeline" in message and "QwenImagePipeline" in message
    assert "BlockAdapter(block_lists=" in message and "'auto'" in message
    assert not cachedit.is_cache_enabled(MyPipeline())


# ---------------------------------------------------------------------------------------- custom transformers


class DualBlock(torch.nn.Module):
    """Returns (encoder, hidden) like FLUX; names its streams `img` / `txt` to exercise the aliases."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.img = torch.nn.Linear(dim, dim)
        self.txt = torch.nn.Linear(dim, dim)

    def forward(self, img: torch.Tensor, txt: torch.Tensor, temb: torch.Tensor | None = None):
        mixed = img.mean(1, keepdim=True) + txt.mean(1, keepdim=True)
        txt = txt + 0.1 * torch.tanh(self.txt(txt + mixed))
        img = img + 0.1 * torch.tanh(self.img(img + mixed))
        return txt, img


class SingleBlock(torch.nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(dim, dim)

    def forward(self, hidden_states: torch.Tensor, encoder_hidden_states: torch.Tensor, temb=None):
        hidden_states = hidden_states + 0.1 * torch.tanh(self.linear(hidden_states + encoder_hidden_states.mean(1, keepdim=True)))
        return encoder_hidden_states, hidden_states


class CustomTransformer(torch.nn.Module, CacheMixin):
    def __init__(self, num_dual: int = 3, num_single: int = 5, dim: int = 8, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.dual_blocks = torch.nn.ModuleList(DualBlock(dim) for _ in range(num_dual))
        self.single_blocks = torch.nn.ModuleList(SingleBlock(dim) for _ in range(num_single))
        self.text_refiner = torch.nn.ModuleList([torch.nn.Linear(dim, dim)])  # conditioning: auto-discovery skips it

    def forward(self, hidden_states: torch.Tensor, encoder_hidden_states: torch.Tensor) -> torch.Tensor:
        for block in self.dual_blocks:
            encoder_hidden_states, hidden_states = block(hidden_states, encoder_hidden_states)
        for block in self.single_blocks:
            encoder_hidden_states, hidden_states = block(hidden_states, encoder_hidden_states=encoder_hidden_states)
        return hidden_states


class CustomPipeline:
    """A denoising-like loop over one or two transformers (the second takes the later steps, like Wan 2.2)."""

    def __init__(self, two_transformers: bool = False) -> None:
        self.transformer = CustomTransformer(seed=0)
        self.transformer_2 = CustomTransformer(seed=1) if two_transformers else None

    @torch.no_grad()
    def __call__(self, num_steps: int = 8) -> torch.Tensor:
        x = torch.randn(1, 6, 8, generator=torch.Generator().manual_seed(0))
        text = torch.randn(1, 3, 8, generator=torch.Generator().manual_seed(1))
        for step in range(num_steps):
            model = self.transformer if self.transformer_2 is None or step < num_steps // 2 else self.transformer_2
            x = x + 0.01 * model(x, text)
        return x


EXPLICIT = [BlockAdapter(block_lists=(("dual_blocks", ENCODER_HIDDEN_OUT), ("single_blocks", ENCODER_HIDDEN_OUT)))]


def _run(pipe, config, adapters, num_steps: int = 8):
    cachedit.enable_cache(pipe, config, adapters=adapters)
    try:
        return pipe(num_steps), cachedit.summary(pipe)
    finally:
        cachedit.disable_cache(pipe)


def test_block_adapter_on_a_custom_transformer_caches_across_both_lists():
    pipe = CustomPipeline()
    baseline = pipe()
    exact, summary = _run(pipe, DBCacheConfig(**EXACT), EXPLICIT)
    assert torch.equal(exact, baseline) and summary["cached_steps"] == 0
    cached, summary = _run(pipe, DBCacheConfig(Fn=2, Bn=1, residual_diff_threshold=1e9, max_warmup_steps=2), EXPLICIT)
    assert summary["branches"]["transformer/default"]["decisions"] == "CC" + "c" * 6
    assert summary["blocks_skipped"] == 6 * (8 - 2 - 1)  # the middle spans both lists
    assert not torch.equal(cached, baseline) and torch.isfinite(cached).all()
    assert torch.equal(pipe(), baseline)  # disabled again


def test_automatic_discovery_finds_the_lists_and_patterns_in_forward_order():
    found = discover_block_lists(CustomTransformer())
    assert found == (("dual_blocks", ENCODER_HIDDEN_OUT), ("single_blocks", ENCODER_HIDDEN_OUT))
    pipe = CustomPipeline()
    config = DBCacheConfig(Fn=2, Bn=1, residual_diff_threshold=1e9, max_warmup_steps=2)
    auto, auto_summary = _run(pipe, config, [BlockAdapter(block_lists="auto")])
    explicit, explicit_summary = _run(pipe, config, EXPLICIT)
    assert torch.equal(auto, explicit) and auto_summary["branches"] == explicit_summary["branches"]


@pytest.mark.parametrize("family", sorted(entry.name for entry in dit_families.ENTRIES))
def test_automatic_discovery_finds_the_registered_lists_where_no_list_is_left_out(family):
    """Where the registry caches every latent-stream list, discovery agrees with it (on the meta device)."""
    from accelerate import init_empty_weights

    entry = get_entry(family)
    (adapter, *_) = registry.adapters_for_class(entry.pipeline_class)
    with init_empty_weights():
        transformer = entry.replica_transformer()
    registered = [attr.partition(":")[0] for attr, *_ in adapter.block_lists]  # Motif-Video's "<list>:<part>"
    try:
        discovered = [attr for attr, _ in discover_block_lists(transformer)]
    except ValueError:
        discovered = []
    # HiDream's blocks hide their return value (`return self.block(...)`); ERNIE-Image's return an expression
    # (`residual + gate * mlp`), and so do Kandinsky 6 SR's (`apply_gate_sum(...)`) and Cosmos 3 Omni's (`und + mlp,
    # gen + mlp`, whose und_seq/gen_seq no alias covers either), and so do RFD4-Proteina's (`(values + ...) * mask`).
    assert set(registered) <= set(discovered) or family in {
        "hidream", "ernie_image", "kandinsky6_sr", "cosmos3_omni", "rfd4_proteina"}


def test_per_list_overrides_make_separate_stacks_with_their_own_hooks():
    pipe = CustomPipeline()
    baseline = pipe()
    adapters = [
        BlockAdapter(
            block_lists=(
                ("dual_blocks", ENCODER_HIDDEN_OUT, {"Fn": 1, "Bn": 0}),
                ("single_blocks", ENCODER_HIDDEN_OUT, {"Fn": 1, "Bn": 1, "max_warmup_steps": 4}),
            )
        )
    ]
    config = DBCacheConfig(Fn=8, residual_diff_threshold=1e9, max_warmup_steps=2)  # Fn=8 alone would not fit 3 blocks
    cachedit.enable_cache(pipe, config, adapters=adapters)
    try:
        hooks = [name for m in pipe.transformer.modules() if hasattr(m, "_diffusers_hook") for name in m._diffusers_hook.hooks]
        assert len({h for h in hooks if h.startswith("cachedit_root")}) == 2
        pipe()
        branches = cachedit.summary(pipe)["branches"]
    finally:
        cachedit.disable_cache(pipe)
    assert branches["transformer.dual_blocks/default"]["decisions"] == "CC" + "c" * 6
    assert branches["transformer.single_blocks/default"]["decisions"] == "CCCC" + "c" * 4
    assert not cachedit.hooks.has_cache_hooks(pipe.transformer)
    assert torch.equal(pipe(), baseline)


def test_two_transformers_get_one_engine_each_and_a_missing_optional_one_is_skipped():
    two = [
        BlockAdapter(block_lists="auto", transformer="transformer"),
        BlockAdapter(block_lists="auto", transformer="transformer_2", optional=True),
    ]
    config = DBCacheConfig(Fn=1, residual_diff_threshold=1e9, max_warmup_steps=1)
    pipe = CustomPipeline(two_transformers=True)
    baseline = pipe()
    _, summary = _run(pipe, config, two)
    assert summary["branches"]["transformer/default"]["decisions"] == "Cccc"
    assert summary["branches"]["transformer_2/default"]["decisions"] == "Cccc"
    assert torch.equal(pipe(), baseline)

    single = CustomPipeline(two_transformers=False)  # like a Wan 2.1 checkpoint: transformer_2 is None
    _, summary = _run(single, config, two)
    assert list(summary["branches"]) == ["transformer/default"]
    with pytest.raises(ValueError, match="no transformer module at `transformer_2`"):
        cachedit.enable_cache(single, config, adapters=[BlockAdapter(block_lists="auto", transformer="transformer_2")])
    assert not cachedit.is_cache_enabled(single)


def test_a_block_that_does_not_take_the_pattern_streams_is_refused_when_the_adapter_is_built():
    adapters = [BlockAdapter(block_lists=(("dual_blocks", ENCODER_HIDDEN_OUT), ("missing_blocks", HIDDEN_OUT)))]
    with pytest.raises(ValueError, match="no block list `missing_blocks`"):
        cachedit.enable_cache(CustomPipeline(), DBCacheConfig(Fn=1), adapters=adapters)
    bad = [BlockAdapter(block_lists=(("text_refiner", HIDDEN_OUT),))]
    with pytest.raises(ValueError, match="does not fit forward pattern"):
        cachedit.enable_cache(CustomPipeline(), DBCacheConfig(Fn=1), adapters=bad)


def test_a_pattern_can_name_the_parameters_that_carry_its_streams():
    class MoTBlock(torch.nn.Module):  # Cosmos 3 Omni style: understanding and generation sequences
        def forward(self, und_seq, gen_seq, rotary_emb=None):
            return und_seq + 1, gen_seq + 2

    pattern = cachedit.patterns.ForwardPattern(
        "und_gen_out", (cachedit.patterns.ENCODER, cachedit.patterns.HIDDEN),
        params=((cachedit.patterns.HIDDEN, "gen_seq"), (cachedit.patterns.ENCODER, "und_seq")),
    )
    block = MoTBlock()
    pattern.check(block)
    und, gen = torch.zeros(1), torch.ones(1)
    streams = cachedit.patterns.StreamReader(block, pattern)((und,), {"gen_seq": gen})
    assert streams == {cachedit.patterns.ENCODER: und, cachedit.patterns.HIDDEN: gen}
    assert pattern.unpack(block(und, gen)) == {cachedit.patterns.ENCODER: und + 1, cachedit.patterns.HIDDEN: gen + 2}
    with pytest.raises(ValueError, match=r"does not take \['hidden_states'\] \(as \['gen_seq'\]\)"):
        cachedit.patterns.ForwardPattern("g", (cachedit.patterns.HIDDEN,), params=(("hidden_states", "gen_seq"),)).check(
            SingleBlock(2))
    with pytest.raises(ValueError, match=r"names parameters for \['audio'\], which it does not return"):
        cachedit.patterns.ForwardPattern("bad", (cachedit.patterns.HIDDEN,), params=(("audio", "aud"),))


def test_motif_video_decoder_blocks_are_a_segment_of_their_own():
    """Motif-Video's DDT decoder blocks (the end of `single_transformer_blocks`) take a fresh copy of the patch
    embeddings and the encoder's output: the adapter cuts the list there, so no skipped span's residual crosses that
    change, and a skipping call on the same input reproduces the computing one."""
    torch.manual_seed(0)
    pipe = type("TwoCalls", (), {"transformer": get_entry("motif_video").replica_transformer().eval()})()
    (adapter,) = registry.ADAPTERS["MotifVideoPipeline"]
    config = DBCacheConfig(Fn=1, Bn=0, residual_diff_threshold=1.0, max_warmup_steps=0)
    (stack,) = adapter.layout(pipe.transformer)
    dual, single = len(pipe.transformer.transformer_blocks), len(pipe.transformer.single_transformer_blocks)
    decoder = pipe.transformer.num_decoder_layers
    assert 0 < decoder < single and stack.list_starts == (0, dual, dual + single - decoder)
    assert [block for block, _ in stack.blocks[-decoder:]] == list(pipe.transformer.single_transformer_blocks[-decoder:])

    g = torch.Generator().manual_seed(0)
    x, text = torch.randn(1, 33, 2, 4, 4, generator=g), torch.randn(1, 8, 32, generator=g)
    cachedit.enable_cache(pipe, config, adapters=[adapter])
    try:
        with torch.no_grad(), running_call(pipe._cachedit), pipe.transformer.cache_context("cond"):  # one branch, though the step repeats
            computed, skipped = [pipe.transformer(x, torch.tensor([500.0]), text, return_dict=False)[0] for _ in range(2)]
        assert cachedit.summary(pipe)["cached_steps"] == 1
    finally:
        cachedit.disable_cache(pipe)
    assert (computed - skipped).abs().max().item() < 1e-5


def test_latte_skips_each_spatial_block_with_its_temporal_partner(family_replicas):
    """A skipped step runs t0 (the forward adds the temporal position embedding before it) but no other temporal
    block: each one is skipped inside its (spatial, temporal) pair; the block lists are the originals outside a call."""
    replica = family_replicas("latte")
    transformer = replica.pipe.transformer
    spatial, temporal = transformer.transformer_blocks, transformer.temporal_transformer_blocks
    calls = []
    handles = [block.register_forward_hook(lambda *_, i=i: calls.append(i)) for i, block in enumerate(temporal)]
    try:
        _, summary = _cached(replica, DBCacheConfig(**HIGH))
    finally:
        for handle in handles:
            handle.remove()
    computed = summary["steps"] - summary["cached_steps"]
    assert summary["cached_steps"] > 0 and calls.count(0) == summary["steps"]
    assert all(calls.count(i) == computed for i in range(1, len(temporal)))
    assert transformer.transformer_blocks is spatial and transformer.temporal_transformer_blocks is temporal


def test_a_failed_enable_removes_the_latte_patch_again(family_replicas):
    replica = family_replicas("latte")
    with pytest.raises(ValueError, match="needs `cache=dbcache`"):  # refused as the plan resolves: nothing attached yet
        cachedit.enable_cache(replica.pipe, cachedit.DBPruneConfig(), taylorseer=cachedit.TaylorSeerConfig(order=1))
    assert not cachedit.hooks.has_cache_hooks(replica.pipe.transformer) and not cachedit.is_cache_enabled(replica.pipe)
