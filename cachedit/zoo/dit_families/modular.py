"""Modular Diffusers pipelines (``FluxModularPipeline``, ``WanModularPipeline``, ...) on the offline replicas.

A modular pipeline runs a graph of blocks over the same components as its classic pipeline. The replica takes the
components of the family's classic replica, drops the text-encoder steps (the replicas have no text encoders) and
feeds the same seeded prompt embeddings, so the transformer runs exactly as in the classic replica.

Families that exist only as modular pipelines (FLUX.3, MiniMax-H3, MiniMax-Music3) have no classic replica to borrow
from: a `ModularReplica` in `MODULAR_ONLY_REPLICAS` names their tiny components, the steps it drops (text encoders,
prompt upsamplers, the autoregressive stage) and the seeded inputs that stand in for those steps' outputs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import diffusers
import diffusers.modular_pipelines
import torch

from ..model_config import ModelSource
from ..calls import DEFAULT_PROMPT, call_kwargs, prompt_of
from ..zoo_entry import ZooEntry
from .parts import TOKENS, emb, flux2_vae, seeded_image, wan_vae

__all__ = [
    "MODULAR_REPLICAS", "build_modular", "modular_inputs", "ModularReplica", "MODULAR_ONLY_REPLICAS",
    "modular_classes", "build_modular_only", "modular_replica", "build_runner_replica", "replica_transformer",
    "runner_inputs"
]

# modular pipeline class -> the classic replica whose components and embeddings it runs on
MODULAR_REPLICAS: dict[str, str] = {
    "FluxModularPipeline": "flux_kontext",
    "Flux2ModularPipeline": "flux2",
    "StableDiffusion3ModularPipeline": "sd3",
    "QwenImageModularPipeline": "qwen_image",
    "WanModularPipeline": "wan",
    "Wan22ModularPipeline": "wan22",
    "ZImageModularPipeline": "z_image",
    "LTXModularPipeline": "ltx",
    "HunyuanVideo15ModularPipeline": "hunyuan_video15",
    "ErnieImageModularPipeline": "ernie_image",
    "HeliosModularPipeline": "helios",
    "Krea2ModularPipeline": "krea2",
}


def _default_blocks(modular_class: str, drop: Callable[[str], bool]):
    """`modular_class`'s default blocks without the top-level steps `drop` selects by name."""
    blocks = getattr(diffusers.modular_pipelines, getattr(diffusers, modular_class).default_blocks_name)()
    for name in [name for name in blocks.sub_blocks if drop(name)]:
        blocks.sub_blocks.pop(name)
    return blocks


def build_modular(modular_class: str, classic) -> "diffusers.ModularPipeline":
    """`modular_class` with its default blocks minus the text-encoder steps, on `classic`'s components."""
    blocks = _default_blocks(modular_class, lambda name: "text" in name)
    pipe = blocks.init_pipeline()
    components = {spec.name: getattr(classic, spec.name, None) for spec in blocks.expected_components}
    pipe.update_components(**{name: module for name, module in components.items() if module is not None})
    return pipe


def modular_inputs(entry: ZooEntry, classic, num_inference_steps: int) -> dict:
    """The modular call: the classic replica's prompt embeddings, size and frames, returning latents."""
    kwargs = {**entry.embeds(classic, DEFAULT_PROMPT, ""), "num_inference_steps": num_inference_steps,
              "output": "latents"}
    if entry.takes_size:
        kwargs.update(height=entry.size, width=entry.size)
    if entry.frames is not None:
        kwargs[entry.frames_key] = entry.frames
    return kwargs


@dataclass(frozen=True)
class ModularReplica:
    """A family that exists only as modular pipelines.

    Args:
        components (`Callable`): ``() -> dict`` of the tiny transformer(s) and the other modules (VAE, audio codec,
            condition encoder, real schedulers); components left out are created from their specs (image processors,
            guiders).
        inputs (`Callable`): ``() -> dict`` of the seeded inputs that stand in for the dropped steps' outputs.
        drop (`tuple[str, ...]`): top-level sub-blocks to drop: the steps that need a text encoder or language model.
        output (`str`): the state value the replica returns (denoised latents, or the waveform when the latents only
            exist per chunk).
        slow (`bool`): the replica takes minutes on CPU; tests/test_modular.py marks it `slow` (deselected by
            default).
    """

    components: Callable[[], dict]
    inputs: Callable[[], dict]
    drop: tuple[str, ...] = ("text_encoder",)
    output: str = "latents"
    slow: bool = False


def _flux3_components(flow_map: bool = False) -> dict:
    # FLUX.3 decodes with the FLUX.2 VAE class. 2 image mode blocks + 8 joint single blocks are cached (the text mode blocks always compute).
    transformer = diffusers.Flux3Transformer2DModel(
        in_channels=16, cond_in_channels=16, num_layers=2, num_single_layers=8, attention_head_dim=16,
        num_attention_heads=2, joint_attention_dim=32, timestep_channels=32, axes_dims_rope=(4, 4, 4, 4),
        flow_map=flow_map)
    return dict(transformer=transformer, vae=flux2_vae(), scheduler=diffusers.FlowMatchEulerDiscreteScheduler())


def _flux3_inputs(negative: bool = True) -> dict:
    embeds = {"prompt_embeds": emb(DEFAULT_PROMPT, 1, TOKENS, 32)}
    if negative:  # the base model's default guider runs classifier-free guidance
        embeds["negative_prompt_embeds"] = emb("", 1, TOKENS, 32)
    return {**embeds, "height": 64, "width": 64}


def _minimax_h3_transformer() -> "diffusers.MiniMaxH3Transformer3DModel":
    return diffusers.MiniMaxH3Transformer3DModel(
        num_attention_heads=2, attention_head_dim=16, hidden_size=32, num_layers=10, num_refiner_layers=1, ffn_dim=64,
        in_channels=8, audio_in_channels=8, text_dim=32, freq_dim=32, time_embed_hidden_dim=32, time_embed_dim=32,
        rope_freq_dim=2)


def _minimax_h3_components() -> dict:
    # The released temporal geometry (17 frames per chunk -> 5 latents) and 16x spatial compression, tiny widths; the
    # audio codec hops 2 samples per latent instead of 800, which only shortens the decoded waveform.
    vae = diffusers.AutoencoderKLMiniMaxH3(
        latent_channels=8, block_out_channels=(8,) * 6, layers_per_block=1, norm_num_groups=4, decoder_num_layers=1,
        decoder_num_attention_heads=2, decoder_attention_head_dim=8, decoder_ffn_mult=1, latents_mean=(0.0,) * 8,
        latents_std=(1.0,) * 8)
    audio_vae = diffusers.AutoencoderKLMiniMaxH3Audio(
        encoder_dim=4, encoder_rates=(2,), latent_dim=8, latent_channels=8, num_attention_heads=2, decoder_dim=8,
        decoder_rates=(2,), decoder_kernel_sizes=(4,), resblock_kernel_sizes=(3,), resblock_dilation_sizes=((1,),),
        latents_mean=[0.0] * 8, latents_std=[1.0] * 8)
    # `transformer` denoises t2va / fl2va, `transformer_ref` denoises ref2va; a text-only call drives `transformer`.
    return dict(transformer=_minimax_h3_transformer(), transformer_ref=_minimax_h3_transformer(), vae=vae,
                audio_vae=audio_vae, scheduler=diffusers.MiniMaxH3Scheduler(shift=12.0),
                audio_scheduler=diffusers.MiniMaxH3Scheduler(shift=3.0))


def _minimax_h3_inputs() -> dict:
    # 120 frames (5 s, the shortest it generates; rounded to 124) at 32 px: 37 video rows, 2 x 207 audio rows.
    return dict(prompt_embeds=emb(DEFAULT_PROMPT, 1, TOKENS, 32), text_token_tags=torch.full((TOKENS,), 1),
                height=32, width=32, num_frames=120)


def _minimax_music3_components() -> dict:
    transformer = diffusers.MiniMaxMusic3Transformer1DModel(
        in_channels=8, condition_dim=16, num_layers=10, num_attention_heads=2, attention_head_dim=16, ff_inner_dim=64,
        rotary_dim=8, fourier_embedding_dim=16)
    return dict(transformer=transformer, scheduler=diffusers.FlowMatchEulerDiscreteScheduler(),
                condition_encoder=diffusers.MiniMaxMusic3ConditionEncoder(
                    condition_hidden_dim=8, num_condition_layers=2, out_dim=16),
                vocoder=diffusers.MiniMaxMusic3Vocoder(
                    latent_channels=8, decoder_input_dim=8, decoder_hidden_dim=8, upsampling_ratios=(2,)))


def _minimax_music3_inputs() -> dict:
    # The language model's per-frame hidden states (2 layers x 8 channels); 8 frames make one 27-latent window.
    return dict(frame_hiddens=emb(DEFAULT_PROMPT, 1, TOKENS, 16), output_type="pt")


def _wan_animate2_components() -> dict:
    """11 blocks, so block 9 (which the unconditional pass leaves out) is not the last. The generation self-attention
    runs on PyTorch's flex backend only: its block mask is compiled through inductor (about a minute on a loaded CPU)
    and uncompiled flex attention is slow, hence `slow`."""
    from transformers import CLIPVisionConfig, CLIPVisionModel


    transformer = diffusers.WanAnimate2Transformer3DModel(
        text_len=TOKENS, in_dim=36, dim=32, ffn_dim=64, freq_dim=32, text_dim=32, out_dim=16, num_heads=2,
        num_layers=11)
    # A tiny random CLIP vision tower: 1280 wide (the transformer's image projection expects it), 224 px in 4 patches.
    image_encoder = CLIPVisionModel(CLIPVisionConfig(
        hidden_size=1280, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2, image_size=224,
        patch_size=112))
    return dict(transformer=transformer, vae=wan_vae(), image_encoder=image_encoder,
                scheduler=diffusers.FlowMatchEulerDiscreteScheduler())


def _wan_animate2_inputs(negative: bool = True) -> dict:
    embeds = {"prompt_embeds": emb(DEFAULT_PROMPT, 1, TOKENS, 32),
              "prompt_ref_embeds": emb("a reference video of motion", 1, TOKENS, 32)}
    if negative:
        embeds["negative_prompt_embeds"] = emb("", 1, TOKENS, 32)
    # One 5-frame segment at 32 px: a seeded random reference image and driving video.
    return {**embeds, "image": seeded_image(32), "driving_video": [seeded_image(32)] * 5, "height": 32,
            "width": 32, "segment_frame_length": 5, "output_type": "pt"}


# modular pipeline class -> its modular-only replica
MODULAR_ONLY_REPLICAS: dict[str, ModularReplica] = {
    "Flux3ModularPipeline": ModularReplica(
        _flux3_components, _flux3_inputs, drop=("prompt_upsampler", "text_encoder")),
    "Flux3DistilledModularPipeline": ModularReplica(
        lambda: _flux3_components(flow_map=True), lambda: _flux3_inputs(negative=False),
        drop=("prompt_upsampler", "text_encoder")),
    "MiniMaxH3ModularPipeline": ModularReplica(_minimax_h3_components, _minimax_h3_inputs),
    # The autoregressive stage (Qwen3 language model + RVQ depth decoder) is replaced by seeded frame hidden states.
    "MiniMaxMusic3ModularPipeline": ModularReplica(
        _minimax_music3_components, _minimax_music3_inputs, drop=("semantic_generator",), output="audios"),
    # Segments are decoded inside the denoise loop (the next one conditions on the decoded pixels): return the video.
    "WanAnimate2ModularPipeline": ModularReplica(
        _wan_animate2_components, _wan_animate2_inputs, output="videos", slow=True),
    "WanAnimate2DistilledModularPipeline": ModularReplica(
        _wan_animate2_components, lambda: _wan_animate2_inputs(negative=False), output="videos", slow=True),
}


def modular_classes() -> list[str]:
    """Every modular pipeline class with a replica, classic-borrowed or modular-only."""
    return sorted({*MODULAR_REPLICAS, *MODULAR_ONLY_REPLICAS})


def build_modular_only(modular_class: str, seed: int = 0) -> "diffusers.ModularPipeline":
    """`modular_class` with its default blocks minus the replica's dropped steps, on its tiny components."""
    replica = MODULAR_ONLY_REPLICAS[modular_class]
    pipe = _default_blocks(modular_class, lambda name: name in replica.drop).init_pipeline()
    torch.manual_seed(seed)
    components = replica.components()
    for module in components.values():
        if isinstance(module, torch.nn.Module):
            module.eval()
    pipe.update_components(**components)
    return pipe


def modular_replica(modular_class: str, num_inference_steps: int) -> tuple["diffusers.ModularPipeline", dict]:
    """The replica of `modular_class` and its call (seeded inputs, steps and the output to return)."""
    if modular_class in MODULAR_ONLY_REPLICAS:
        replica = MODULAR_ONLY_REPLICAS[modular_class]
        inputs = {**replica.inputs(), "num_inference_steps": num_inference_steps, "output": replica.output}
        return build_modular_only(modular_class), inputs
    from ..entries import get_entry  # the table holds this module's runner entries: imported when called

    entry = get_entry(MODULAR_REPLICAS[modular_class])
    classic = entry.build_replica()
    return build_modular(modular_class, classic), modular_inputs(entry, classic, num_inference_steps)


def _refuse_overrides(modular_class: str, overrides: dict) -> None:
    if overrides:
        raise ValueError(f"`model.replica` overrides are not supported for the modular replica of {modular_class}.")


# The Hydra runner drives modular-only image families (`model=flux3`, `cachedit.zoo.entries.MODELS`) through these:
# the call returns decoded images.
def build_runner_replica(modular_class: str, seed: int = 0, **overrides) -> "diffusers.ModularPipeline":
    _refuse_overrides(modular_class, overrides)
    return build_modular_only(modular_class, seed)


def replica_transformer(modular_class: str, **overrides) -> torch.nn.Module:
    """The replica's transformer alone (the preflight builds it on the meta device to count its blocks)."""
    _refuse_overrides(modular_class, overrides)
    return MODULAR_ONLY_REPLICAS[modular_class].components()["transformer"]


def runner_inputs(modular_class: str, pipe, model) -> dict:
    """The runner's call: decoded images as numpy; seeded prompt embeddings on the replica, the prompt otherwise."""
    takes = pipe.default_call_parameters
    for key in ("guidance_scale", "negative_prompt"):
        if getattr(model, key) and key not in takes:  # a modular pipeline would only warn and ignore it
            raise ValueError(f"`model.{key}`: {modular_class} takes no `{key}` (its guider sets guidance); set it "
                             f"to null. Inputs it takes: {', '.join(sorted(k for k in takes if k))}.")
    kwargs = {**call_kwargs(model), "num_images_per_prompt": model.num_images, "output": "images"}
    prompt = prompt_of(model)
    if model.source != ModelSource.replica:
        kwargs["prompt"] = prompt
        if model.negative_prompt:
            kwargs["negative_prompt"] = model.negative_prompt
        return kwargs
    kwargs = {**MODULAR_ONLY_REPLICAS[modular_class].inputs(), **kwargs}  # a set model size wins over the replica's
    kwargs["prompt_embeds"] = emb(prompt, *kwargs["prompt_embeds"].shape)  # the prompt seeds the stand-in
    return kwargs
