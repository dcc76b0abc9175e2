"""Offline replicas of the DiT pipeline families of diffusers: the real pipeline, transformer and VAE classes, built
from scaled-down configs with seeded random weights, and the call that drives each one without text encoders.

Each `Spec` says how to build one family's replica (tiny transformer: 10 cached blocks, so that the default DBCache
F8B0 leaves a middle, width 32-64; tiny VAE of the
family's own class; the real scheduler class) and which prompt embeddings stand in for its text encoders. The
families registered from here join `cachedit.models.families.FAMILIES` under their `name`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import diffusers
import torch

from ..configs import ModelConfig, ModelSource
from .replicas import _tiny_vae, prompt_embeddings

TOKENS = 8  # prompt tokens of the stand-in embeddings
PROMPT_CHARS = 32  # characters the tiny text encoders of the prompt-only replicas read (VisualCloze)


@dataclass(frozen=True)
class Spec:
    """Args:
    name (`str`): the ``model.name`` key.
    pipeline_class (`str`): the diffusers pipeline class the hub checkpoint loads as.
    transformer (`Callable`): ``(**overrides) -> transformer`` of the replica.
    components (`Callable`): ``() -> dict`` of the pipeline's other modules (text encoders left as None).
    embeds (`Callable`): ``(pipe, prompt, negative) -> dict`` of prompt embeddings for the replica's call.
    size (`int`): replica height and width in pixels.
    takes_size (`bool`): False where the call takes no height and width (VisualCloze sizes by its `resolution`).
    call (`dict`): fixed extra call arguments of the replica (e.g. resolution binning off).
    frames (`int`, *optional*): frames for video families (None: an image family).
    frames_key (`str`): the call argument taking the frame count (Sana-Video names it ``frames``).
    output (`str`): the attribute of the pipeline output holding the result (images, frames, audios).
    transformers (`tuple[str, ...]`): pipeline attributes built with `transformer` (Wan 2.2: two).
    setup (`dict`): pipeline attributes to set after construction (HiDream's fixed 1024 px sample area).
    randomize_zeros (`bool`): Kandinsky 5 zero-initialises its output layer, so a random replica's output would not
        depend on its blocks at all; this gives such weights seeded random values.
    """

    name: str
    pipeline_class: str
    transformer: Callable
    components: Callable[[], dict]
    embeds: Callable
    size: int = 64
    takes_size: bool = True
    call: dict = field(default_factory=dict)
    frames: int | None = None
    frames_key: str = "num_frames"
    output: str = "images"
    transformers: tuple[str, ...] = ("transformer",)
    setup: dict = field(default_factory=dict)  # pipeline attributes set after construction
    randomize_zeros: bool = False  # give zero-initialised transformer weights random values


def _emb(prompt: str, *shape: int) -> torch.Tensor:
    return prompt_embeddings(prompt, shape)


def _mask(tokens: int = TOKENS, dtype=torch.long) -> torch.Tensor:
    return torch.ones(1, tokens, dtype=dtype)


def _flow() -> diffusers.FlowMatchEulerDiscreteScheduler:
    return diffusers.FlowMatchEulerDiscreteScheduler()


def _vae4() -> diffusers.AutoencoderKL:
    return _tiny_vae(4)


def _vae4_shifted() -> diffusers.AutoencoderKL:
    # SD3's latent statistics; SD3, Lumina 2 and HiDream decode with `latents / scaling + shift`.
    return _tiny_vae(4, shift_factor=0.0609, scaling_factor=1.5305, use_quant_conv=False, use_post_quant_conv=False)


def _vae16() -> diffusers.AutoencoderKL:
    # The FLUX.1 VAE's latent statistics, which Z-Image reuses.
    return _tiny_vae(16, shift_factor=0.1159, scaling_factor=0.3611, use_quant_conv=False, use_post_quant_conv=False)


def _cfg(pipe) -> object:
    return pipe.transformer.config


# --------------------------------------------------------------------------------------------------- image families

def _sd3_transformer(**o):
    return diffusers.SD3Transformer2DModel(**{**dict(
        sample_size=32, patch_size=2, in_channels=4, num_layers=10, attention_head_dim=16, num_attention_heads=2,
        joint_attention_dim=32, caption_projection_dim=32, pooled_projection_dim=32, out_channels=4,
        pos_embed_max_size=32), **o})


def _sd3_embeds(pipe, prompt, negative):
    c = _cfg(pipe)
    return dict(
        prompt_embeds=_emb(prompt, 1, TOKENS, c.joint_attention_dim),
        pooled_prompt_embeds=_emb("pooled:" + prompt, 1, c.pooled_projection_dim),
        negative_prompt_embeds=_emb(negative, 1, TOKENS, c.joint_attention_dim),
        negative_pooled_prompt_embeds=_emb("pooled:" + negative, 1, c.pooled_projection_dim),
    )


def _qwen_transformer(**o):
    return diffusers.QwenImageTransformer2DModel(**{**dict(
        patch_size=2, in_channels=64, out_channels=16, num_layers=10, attention_head_dim=16, num_attention_heads=2,
        joint_attention_dim=32, axes_dims_rope=(4, 6, 6)), **o})


def _qwen_vae():
    return diffusers.AutoencoderKLQwenImage(
        base_dim=8, z_dim=16, dim_mult=[1, 2, 2, 2], num_res_blocks=1, temperal_downsample=[False, True, True])


def _qwen_embeds(pipe, prompt, negative):
    d = _cfg(pipe).joint_attention_dim
    return dict(
        prompt_embeds=_emb(prompt, 1, TOKENS, d), prompt_embeds_mask=_mask(),
        negative_prompt_embeds=_emb(negative, 1, TOKENS, d), negative_prompt_embeds_mask=_mask(),
    )


def _flux2_transformer(**o):
    return diffusers.Flux2Transformer2DModel(**{**dict(
        patch_size=1, in_channels=16, num_layers=1, num_single_layers=10, attention_head_dim=16, num_attention_heads=2,
        joint_attention_dim=32, timestep_guidance_channels=32, axes_dims_rope=(4, 4, 4, 4)), **o})


def _flux2_vae():
    return diffusers.AutoencoderKLFlux2(
        block_out_channels=(8, 16, 16, 16), layers_per_block=1, latent_channels=4, norm_num_groups=8, sample_size=64,
        mid_block_add_attention=False)


def _flux2_embeds(pipe, prompt, negative):
    return dict(prompt_embeds=_emb(prompt, 1, TOKENS, _cfg(pipe).joint_attention_dim))


def _sana_transformer(**o):
    return diffusers.SanaTransformer2DModel(**{**dict(
        in_channels=4, out_channels=4, num_attention_heads=2, attention_head_dim=16, num_layers=10,
        num_cross_attention_heads=2, cross_attention_head_dim=16, cross_attention_dim=32, caption_channels=32,
        sample_size=8, patch_size=1), **o})


def _sana_vae():
    return diffusers.AutoencoderDC(
        in_channels=3, latent_channels=4, attention_head_dim=2,
        encoder_block_types=("ResBlock", "ResBlock", "ResBlock", "ResBlock"),
        decoder_block_types=("ResBlock", "ResBlock", "ResBlock", "ResBlock"),
        encoder_block_out_channels=(8, 8, 8, 8), decoder_block_out_channels=(8, 8, 8, 8),
        encoder_layers_per_block=(1, 1, 1, 1), decoder_layers_per_block=(1, 1, 1, 1),
        encoder_qkv_multiscales=((), (), (), ()), decoder_qkv_multiscales=((), (), (), ()),
        decoder_norm_types="batch_norm", scaling_factor=0.41407)


def _masked_embeds(dim_of: Callable, mask_key: str = "prompt_attention_mask", dtype=torch.long):
    def embeds(pipe, prompt, negative):
        d = dim_of(_cfg(pipe))
        return {
            "prompt_embeds": _emb(prompt, 1, TOKENS, d), mask_key: _mask(dtype=dtype),
            "negative_prompt_embeds": _emb(negative, 1, TOKENS, d), "negative_" + mask_key: _mask(dtype=dtype),
        }
    return embeds


def _hunyuandit_transformer(**o):
    return diffusers.HunyuanDiT2DModel(**{**dict(
        num_attention_heads=2, attention_head_dim=16, in_channels=4, patch_size=2, sample_size=8, hidden_size=32,
        num_layers=10, mlp_ratio=2.0, cross_attention_dim=32, cross_attention_dim_t5=32, pooled_projection_dim=16,
        text_len=TOKENS, text_len_t5=TOKENS), **o})


def _hunyuandit_embeds(pipe, prompt, negative):
    c = _cfg(pipe)
    return dict(
        prompt_embeds=_emb(prompt, 1, TOKENS, c.cross_attention_dim), prompt_attention_mask=_mask(),
        negative_prompt_embeds=_emb(negative, 1, TOKENS, c.cross_attention_dim), negative_prompt_attention_mask=_mask(),
        prompt_embeds_2=_emb("t5:" + prompt, 1, TOKENS, c.cross_attention_dim_t5), prompt_attention_mask_2=_mask(),
        negative_prompt_embeds_2=_emb("t5:" + negative, 1, TOKENS, c.cross_attention_dim_t5),
        negative_prompt_attention_mask_2=_mask(),
    )


def _cogview3_transformer(**o):
    return diffusers.CogView3PlusTransformer2DModel(**{**dict(
        patch_size=2, in_channels=4, num_layers=10, attention_head_dim=16, num_attention_heads=2, out_channels=4,
        text_embed_dim=32, time_embed_dim=16, condition_dim=8, pos_embed_max_size=16, sample_size=8), **o})


def _cogview4_transformer(**o):
    return diffusers.CogView4Transformer2DModel(**{**dict(
        patch_size=2, in_channels=4, out_channels=4, num_layers=10, attention_head_dim=16, num_attention_heads=2,
        text_embed_dim=32, time_embed_dim=16, condition_dim=8, pos_embed_max_size=16, sample_size=8,
        rope_axes_dim=(4, 4)), **o})


def _text_embeds(dim_key: str, negative_too: bool = True):
    def embeds(pipe, prompt, negative):
        d = getattr(_cfg(pipe), dim_key)
        out = {"prompt_embeds": _emb(prompt, 1, TOKENS, d)}
        if negative_too:
            out["negative_prompt_embeds"] = _emb(negative, 1, TOKENS, d)
        return out
    return embeds


def _lumina2_transformer(**o):
    return diffusers.Lumina2Transformer2DModel(**{**dict(
        sample_size=8, patch_size=2, in_channels=4, hidden_size=32, num_layers=10, num_refiner_layers=1,
        num_attention_heads=2, num_kv_heads=2, multiple_of=16, axes_dim_rope=(4, 4, 8), axes_lens=(32, 32, 32),
        cap_feat_dim=32), **o})


def _auraflow_transformer(**o):
    return diffusers.AuraFlowTransformer2DModel(**{**dict(
        sample_size=8, patch_size=2, in_channels=4, num_mmdit_layers=1, num_single_dit_layers=10,
        attention_head_dim=16, num_attention_heads=2, joint_attention_dim=32, caption_projection_dim=32,
        out_channels=4, pos_embed_max_size=64), **o})


def _chroma_transformer(**o):
    return diffusers.ChromaTransformer2DModel(**{**dict(
        patch_size=1, in_channels=16, num_layers=1, num_single_layers=10, attention_head_dim=16, num_attention_heads=2,
        joint_attention_dim=32, axes_dims_rope=(4, 6, 6), approximator_num_channels=8, approximator_hidden_dim=32,
        approximator_layers=1), **o})


def _flux_vae():
    return _tiny_vae(4, shift_factor=0.0609, scaling_factor=1.5035, use_quant_conv=False, use_post_quant_conv=False)


def _hidream_transformer(**o):
    return diffusers.HiDreamImageTransformer2DModel(**{**dict(
        patch_size=2, in_channels=4, out_channels=4, num_layers=1, num_single_layers=10, attention_head_dim=8,
        num_attention_heads=4, caption_channels=[32, 16], text_emb_dim=32, num_routed_experts=2,
        num_activated_experts=1, axes_dims_rope=(4, 2, 2), max_resolution=(32, 32), llama_layers=tuple(range(11))),
        **o})


def _hidream_embeds(pipe, prompt, negative):
    c = _cfg(pipe)
    llama_layers = len(c.llama_layers)
    t5, llama = c.caption_channels[0], c.caption_channels[1]
    return dict(
        prompt_embeds_t5=_emb("t5:" + prompt, 1, TOKENS, t5),
        negative_prompt_embeds_t5=_emb("t5:" + negative, 1, TOKENS, t5),
        prompt_embeds_llama3=_emb("llama:" + prompt, llama_layers, 1, TOKENS, llama),
        negative_prompt_embeds_llama3=_emb("llama:" + negative, llama_layers, 1, TOKENS, llama),
        pooled_prompt_embeds=_emb("pooled:" + prompt, 1, c.text_emb_dim),
        negative_pooled_prompt_embeds=_emb("pooled:" + negative, 1, c.text_emb_dim),
    )


def _zimage_transformer(**o):
    return diffusers.ZImageTransformer2DModel(**{**dict(
        all_patch_size=(2,), all_f_patch_size=(1,), in_channels=16, dim=32, n_layers=10, n_refiner_layers=1,
        n_heads=2, n_kv_heads=2, cap_feat_dim=32, axes_dims=[4, 6, 6], axes_lens=[64, 32, 32]), **o})


def _zimage_embeds(pipe, prompt, negative):
    d = _cfg(pipe).cap_feat_dim
    return dict(prompt_embeds=[_emb(prompt, TOKENS, d)], negative_prompt_embeds=[_emb(negative, TOKENS, d)])


def _bria_transformer(**o):
    return diffusers.BriaTransformer2DModel(**{**dict(
        patch_size=1, in_channels=16, num_layers=2, num_single_layers=8, attention_head_dim=16, num_attention_heads=2,
        joint_attention_dim=32, axes_dims_rope=[4, 6, 6]), **o})


def _dit_transformer(**o):
    return diffusers.DiTTransformer2DModel(**{**dict(
        num_attention_heads=2, attention_head_dim=16, in_channels=4, out_channels=8, num_layers=10, norm_num_groups=32,
        sample_size=8, patch_size=2), **o})


def _pixart_sigma_transformer(**o):
    return diffusers.PixArtTransformer2DModel(**{**dict(
        sample_size=8, num_layers=10, patch_size=2, attention_head_dim=16, num_attention_heads=2, caption_channels=32,
        in_channels=4, out_channels=8, cross_attention_dim=32, num_embeds_ada_norm=1000, norm_type="ada_norm_single",
        norm_elementwise_affine=False, norm_eps=1e-6, use_additional_conditions=False), **o})


def _none(*names: str) -> dict:
    return {n: None for n in names}


SPECS: list[Spec] = [
    Spec("sd3", "StableDiffusion3Pipeline", _sd3_transformer,
         lambda: dict(scheduler=_flow(), vae=_vae4_shifted(), **_none(
             "text_encoder", "tokenizer", "text_encoder_2", "tokenizer_2", "text_encoder_3", "tokenizer_3")),
         _sd3_embeds),
    Spec("qwen_image", "QwenImagePipeline", _qwen_transformer,
         lambda: dict(scheduler=_flow(), vae=_qwen_vae(), **_none("text_encoder", "tokenizer")),
         _qwen_embeds, call=dict(true_cfg_scale=4.0)),
    Spec("flux2", "Flux2Pipeline", _flux2_transformer,
         lambda: dict(scheduler=_flow(), vae=_flux2_vae(), **_none("text_encoder", "tokenizer")),
         _flux2_embeds),
    Spec("sana", "SanaPipeline", _sana_transformer,
         lambda: dict(scheduler=diffusers.DPMSolverMultistepScheduler(), vae=_sana_vae(),
                      **_none("text_encoder", "tokenizer")),
         _masked_embeds(lambda c: c.caption_channels), call=dict(use_resolution_binning=False, negative_prompt=None)),
    Spec("hunyuandit", "HunyuanDiTPipeline", _hunyuandit_transformer,
         lambda: dict(scheduler=diffusers.DDPMScheduler(), vae=_vae4(), safety_checker=None, feature_extractor=None,
                      requires_safety_checker=False,
                      **_none("text_encoder", "tokenizer", "text_encoder_2", "tokenizer_2")),
         _hunyuandit_embeds, call=dict(use_resolution_binning=False)),
    Spec("cogview3", "CogView3PlusPipeline", _cogview3_transformer,
         lambda: dict(scheduler=diffusers.CogVideoXDDIMScheduler(), vae=_vae4(), **_none("text_encoder", "tokenizer")),
         _text_embeds("text_embed_dim")),
    Spec("cogview4", "CogView4Pipeline", _cogview4_transformer,
         lambda: dict(scheduler=_flow(), vae=_vae4(), **_none("text_encoder", "tokenizer")),
         _text_embeds("text_embed_dim")),
    Spec("lumina2", "Lumina2Pipeline", _lumina2_transformer,
         lambda: dict(scheduler=_flow(), vae=_vae4_shifted(), **_none("text_encoder", "tokenizer")),
         _masked_embeds(lambda c: c.cap_feat_dim)),
    Spec("auraflow", "AuraFlowPipeline", _auraflow_transformer,
         lambda: dict(scheduler=_flow(), vae=_vae4(), **_none("text_encoder", "tokenizer")),
         _masked_embeds(lambda c: c.joint_attention_dim)),
    Spec("chroma", "ChromaPipeline", _chroma_transformer,
         lambda: dict(scheduler=_flow(), vae=_flux_vae(), **_none("text_encoder", "tokenizer")),
         _masked_embeds(lambda c: c.joint_attention_dim, dtype=torch.bool)),
    Spec("hidream", "HiDreamImagePipeline", _hidream_transformer,
         lambda: dict(scheduler=_flow(), vae=_vae4_shifted(), **_none(
             "text_encoder", "tokenizer", "text_encoder_2", "tokenizer_2", "text_encoder_3", "tokenizer_3",
             "text_encoder_4", "tokenizer_4")),
         _hidream_embeds, setup=dict(default_sample_size=8)),
    Spec("z_image", "ZImagePipeline", _zimage_transformer,
         lambda: dict(scheduler=_flow(), vae=_vae16(), **_none("text_encoder", "tokenizer")),
         _zimage_embeds),
    Spec("bria", "BriaPipeline", _bria_transformer,
         lambda: dict(scheduler=_flow(), vae=_flux_vae(), **_none("text_encoder", "tokenizer")),
         _text_embeds("joint_attention_dim")),
    Spec("dit", "DiTPipeline", _dit_transformer,
         lambda: dict(scheduler=diffusers.DDIMScheduler(), vae=_vae4()),
         lambda pipe, prompt, negative: dict(class_labels=[1])),
    Spec("pixart_sigma", "PixArtSigmaPipeline", _pixart_sigma_transformer,
         lambda: dict(scheduler=diffusers.DPMSolverMultistepScheduler(), vae=_vae4(),
                      **_none("text_encoder", "tokenizer")),
         _masked_embeds(lambda c: c.caption_channels), call=dict(use_resolution_binning=False, negative_prompt=None)),
]


# --------------------------------------------------------------------------------------------------- video and audio

def _wan_transformer(**o):
    return diffusers.WanTransformer3DModel(**{**dict(
        patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12, in_channels=16, out_channels=16,
        text_dim=32, freq_dim=32, ffn_dim=32, num_layers=10, rope_max_seq_len=32), **o})


def _wan_vae():
    return diffusers.AutoencoderKLWan(base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
                                      temperal_downsample=[False, True, True])


def _skyreels_transformer(**o):
    return diffusers.SkyReelsV2Transformer3DModel(**{**dict(
        patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12, in_channels=16, out_channels=16,
        text_dim=32, freq_dim=32, ffn_dim=32, num_layers=10, rope_max_seq_len=32), **o})


def _hunyuan_video_transformer(**o):
    return diffusers.HunyuanVideoTransformer3DModel(**{**dict(
        in_channels=4, out_channels=4, num_attention_heads=2, attention_head_dim=10, num_layers=2, num_single_layers=8,
        num_refiner_layers=1, patch_size=1, patch_size_t=1, guidance_embeds=True, text_embed_dim=16,
        pooled_projection_dim=8, rope_axes_dim=(2, 4, 4)), **o})


def _hunyuan_video_vae():
    return diffusers.AutoencoderKLHunyuanVideo(
        latent_channels=4, block_out_channels=(8, 8, 8, 8), layers_per_block=1, norm_num_groups=4,
        spatial_compression_ratio=8, temporal_compression_ratio=4, mid_block_add_attention=False)


def _hunyuan_video_embeds(pipe, prompt, negative):
    c = _cfg(pipe)
    return dict(
        prompt_embeds=_emb(prompt, 1, TOKENS, c.text_embed_dim), prompt_attention_mask=_mask(),
        pooled_prompt_embeds=_emb("pooled:" + prompt, 1, c.pooled_projection_dim),
    )


def _cogvideox_transformer(**o):
    return diffusers.CogVideoXTransformer3DModel(**{**dict(
        num_attention_heads=2, attention_head_dim=16, in_channels=4, out_channels=4, time_embed_dim=2,
        text_embed_dim=32, num_layers=10, sample_width=4, sample_height=4, sample_frames=9, patch_size=2,
        temporal_compression_ratio=4, max_text_seq_length=TOKENS), **o})


def _cogvideox_vae():
    return diffusers.AutoencoderKLCogVideoX(
        block_out_channels=(8, 8, 8, 8), latent_channels=4, layers_per_block=1, norm_num_groups=2,
        temporal_compression_ratio=4)


def _ltx_transformer(**o):
    return diffusers.LTXVideoTransformer3DModel(**{**dict(
        in_channels=8, out_channels=8, patch_size=1, patch_size_t=1, num_attention_heads=2, attention_head_dim=8,
        cross_attention_dim=16, num_layers=10, caption_channels=16), **o})


def _ltx_vae():
    return diffusers.AutoencoderKLLTXVideo(
        in_channels=3, out_channels=3, latent_channels=8, block_out_channels=(8, 8, 8, 8),
        decoder_block_out_channels=(8, 8, 8, 8), layers_per_block=(1, 1, 1, 1, 1),
        decoder_layers_per_block=(1, 1, 1, 1, 1), spatio_temporal_scaling=(True, True, False, False),
        decoder_spatio_temporal_scaling=(True, True, False, False), decoder_inject_noise=(False,) * 5,
        upsample_residual=(False,) * 4, upsample_factor=(1,) * 4, timestep_conditioning=False, patch_size=1,
        patch_size_t=1, encoder_causal=True, decoder_causal=False)


def _mochi_transformer(**o):
    return diffusers.MochiTransformer3DModel(**{**dict(
        patch_size=2, num_attention_heads=2, attention_head_dim=8, num_layers=10, pooled_projection_dim=16,
        in_channels=12, out_channels=None, qk_norm="rms_norm", text_embed_dim=32, time_embed_dim=4,
        activation_fn="swiglu", max_sequence_length=TOKENS), **o})


def _mochi_vae():
    return diffusers.AutoencoderKLMochi(
        latent_channels=12, out_channels=3, encoder_block_out_channels=(32, 32, 32, 32),
        decoder_block_out_channels=(32, 32, 32, 32), layers_per_block=(1, 1, 1, 1, 1))


VIDEO_SPECS: list[Spec] = [
    Spec("wan", "WanPipeline", _wan_transformer,
         lambda: dict(scheduler=diffusers.UniPCMultistepScheduler(flow_shift=3.0, prediction_type="flow_prediction",
                                                                   use_flow_sigmas=True),
                      vae=_wan_vae(), transformer_2=None, **_none("text_encoder", "tokenizer")),
         _text_embeds("text_dim"), size=32, frames=5, output="frames"),
    # Wan 2.2 A14B: a high-noise and a low-noise expert, switched at boundary_ratio of the timesteps.
    Spec("wan22", "WanPipeline", _wan_transformer,
         lambda: dict(scheduler=diffusers.UniPCMultistepScheduler(flow_shift=3.0, prediction_type="flow_prediction",
                                                                   use_flow_sigmas=True),
                      vae=_wan_vae(), boundary_ratio=0.875, **_none("text_encoder", "tokenizer")),
         _text_embeds("text_dim"), size=32, frames=5, output="frames", transformers=("transformer", "transformer_2")),
    Spec("skyreels_v2", "SkyReelsV2Pipeline", _skyreels_transformer,
         lambda: dict(scheduler=diffusers.UniPCMultistepScheduler(flow_shift=8.0, prediction_type="flow_prediction",
                                                                   use_flow_sigmas=True),
                      vae=_wan_vae(), **_none("text_encoder", "tokenizer")),
         _text_embeds("text_dim"), size=32, frames=5, output="frames"),
    Spec("hunyuan_video", "HunyuanVideoPipeline", _hunyuan_video_transformer,
         lambda: dict(scheduler=_flow(), vae=_hunyuan_video_vae(),
                      **_none("text_encoder", "tokenizer", "text_encoder_2", "tokenizer_2")),
         _hunyuan_video_embeds, size=32, frames=5, output="frames"),
    Spec("cogvideox", "CogVideoXPipeline", _cogvideox_transformer,
         lambda: dict(scheduler=diffusers.CogVideoXDDIMScheduler(), vae=_cogvideox_vae(),
                      **_none("text_encoder", "tokenizer")),
         _text_embeds("text_embed_dim"), size=32, frames=9, output="frames"),
    Spec("ltx", "LTXPipeline", _ltx_transformer,
         lambda: dict(scheduler=_flow(), vae=_ltx_vae(), **_none("text_encoder", "tokenizer")),
         _masked_embeds(lambda c: c.caption_channels), size=32, frames=9, output="frames"),
    Spec("mochi", "MochiPipeline", _mochi_transformer,
         lambda: dict(scheduler=_flow(), vae=_mochi_vae(), **_none("text_encoder", "tokenizer")),
         _masked_embeds(lambda c: c.text_embed_dim), size=32, frames=7, output="frames"),
]
SPECS.extend(VIDEO_SPECS)


def _allegro_transformer(**o):
    return diffusers.AllegroTransformer3DModel(**{**dict(
        num_attention_heads=2, attention_head_dim=12, in_channels=4, out_channels=4, num_layers=10,
        cross_attention_dim=24, sample_height=8, sample_width=8, sample_frames=8, caption_channels=24), **o})


def _allegro_vae():
    vae = diffusers.AutoencoderKLAllegro(
        block_out_channels=(8, 8, 8, 8), latent_channels=4, layers_per_block=1, norm_num_groups=2,
        temporal_compression_ratio=4)
    vae.enable_tiling()  # Allegro's VAE decodes only tiled (as the diffusers docs example sets up)
    return vae


def _cosmos_transformer(**o):
    return diffusers.CosmosTransformer3DModel(**{**dict(
        in_channels=16, out_channels=16, num_attention_heads=2, attention_head_dim=16, num_layers=10, mlp_ratio=2,
        text_embed_dim=32, adaln_lora_dim=4, max_size=(4, 32, 32), patch_size=(1, 2, 2), rope_scale=(2.0, 1.0, 1.0),
        concat_padding_mask=True, extra_pos_embed_type=None), **o})


def _kandinsky5_transformer(**o):
    return diffusers.Kandinsky5Transformer3DModel(**{**dict(
        in_visual_dim=16, in_text_dim=32, in_text_dim2=16, time_dim=16, out_visual_dim=16, patch_size=(1, 2, 2),
        model_dim=32, ff_dim=64, num_text_blocks=1, num_visual_blocks=10, axes_dims=(4, 6, 6)), **o})


def _kandinsky5_embeds(pipe, prompt, negative):
    c = _cfg(pipe)
    return dict(
        prompt_embeds_qwen=_emb(prompt, 1, TOKENS, c.in_text_dim),
        prompt_embeds_clip=_emb("clip:" + prompt, 1, c.in_text_dim2),
        negative_prompt_embeds_qwen=_emb(negative, 1, TOKENS, c.in_text_dim),
        negative_prompt_embeds_clip=_emb("clip:" + negative, 1, c.in_text_dim2),
        prompt_cu_seqlens=torch.tensor([0, TOKENS], dtype=torch.int32),
        negative_prompt_cu_seqlens=torch.tensor([0, TOKENS], dtype=torch.int32),
    )


def _flux_kontext_transformer(**o):
    from .replicas import flux_transformer

    return flux_transformer(**{"num_layers": 2, "num_single_layers": 8, "attention_head_dim": 16,
                               "num_attention_heads": 2, "axes_dims_rope": (4, 6, 6), **o})


def _flux_embeds(pipe, prompt, negative):
    c = _cfg(pipe)
    return dict(prompt_embeds=_emb(prompt, 1, TOKENS, c.joint_attention_dim),
                pooled_prompt_embeds=_emb("pooled:" + prompt, 1, c.pooled_projection_dim))


def _kontext_image(size: int = 64):
    import numpy as np
    from PIL import Image

    pixels = np.random.default_rng(0).integers(0, 255, (size, size, 3), dtype=np.uint8)
    return Image.fromarray(pixels)


MORE_SPECS: list[Spec] = [
    Spec("allegro", "AllegroPipeline", _allegro_transformer,
         lambda: dict(scheduler=diffusers.EulerAncestralDiscreteScheduler(),
                      vae=_allegro_vae(), **_none("text_encoder", "tokenizer")),
         _masked_embeds(lambda c: c.caption_channels), size=32, frames=8, output="frames",
         call=dict(negative_prompt=None)),
    Spec("kandinsky5", "Kandinsky5T2IPipeline", _kandinsky5_transformer,
         lambda: dict(scheduler=_flow(), vae=_flux_vae16(),
                      **_none("text_encoder", "tokenizer", "text_encoder_2", "tokenizer_2")),
         _kandinsky5_embeds, output="image", setup=dict(resolutions=[(64, 64)]), randomize_zeros=True),
    Spec("flux_kontext", "FluxKontextPipeline", _flux_kontext_transformer,
         lambda: dict(scheduler=_flow(), vae=_flux_vae(), **_none(
             "text_encoder", "tokenizer", "text_encoder_2", "tokenizer_2", "image_encoder", "feature_extractor")),
         _flux_embeds, call=dict(image=_kontext_image(), _auto_resize=False, max_area=64 * 64)),
]


def _flux_vae16():
    return _tiny_vae(16, use_quant_conv=False, use_post_quant_conv=False)


SPECS.extend(MORE_SPECS)


# --------------------------------------------------------------------------------------------------- more families

def _easyanimate_transformer(**o):
    return diffusers.EasyAnimateTransformer3DModel(**{**dict(
        num_attention_heads=2, attention_head_dim=16, in_channels=4, out_channels=4, time_embed_dim=16,
        text_embed_dim=32, num_layers=10, mmdit_layers=10, sample_width=8, sample_height=8, patch_size=2), **o})


def _easyanimate_vae():
    return diffusers.AutoencoderKLMagvit(
        in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(8, 8, 8, 8), layers_per_block=1,
        norm_num_groups=2, spatial_group_norm=False)


def _hunyuan_image_transformer(**o):
    return diffusers.HunyuanImageTransformer2DModel(**{**dict(
        in_channels=16, out_channels=16, num_attention_heads=2, attention_head_dim=16, num_layers=2,
        num_single_layers=8, num_refiner_layers=1, text_embed_dim=32, text_embed_2_dim=16, rope_axes_dim=(8, 8)),
        **o})


def _hunyuan_image_vae():
    return diffusers.AutoencoderKLHunyuanImage(
        in_channels=3, out_channels=3, latent_channels=16, block_out_channels=(32, 32, 32, 32), layers_per_block=1,
        spatial_compression_ratio=8, sample_size=64, scaling_factor=0.75289)


def _hunyuan_image_embeds(pipe, prompt, negative):
    # Qwen2.5-VL prompt embeddings plus ByT5 glyph embeddings; no guider: the distilled checkpoints' single pass.
    c = _cfg(pipe)
    return dict(
        prompt_embeds=_emb(prompt, 1, TOKENS, c.text_embed_dim), prompt_embeds_mask=_mask(),
        prompt_embeds_2=_emb("byt5:" + prompt, 1, TOKENS, c.text_embed_2_dim), prompt_embeds_mask_2=_mask(),
    )


def _sana_video_transformer(**o):
    return diffusers.SanaVideoTransformer3DModel(**{**dict(
        in_channels=16, out_channels=16, num_attention_heads=2, attention_head_dim=16, num_layers=10,
        num_cross_attention_heads=2, cross_attention_head_dim=16, cross_attention_dim=32, caption_channels=32,
        sample_size=8, patch_size=(1, 2, 2), rope_max_seq_len=32), **o})


def _hunyuan_video15_transformer(**o):
    # in_channels: the latents, the (empty in text-to-video) condition latents and their mask, concatenated.
    return diffusers.HunyuanVideo15Transformer3DModel(**{**dict(
        in_channels=9, out_channels=4, num_attention_heads=2, attention_head_dim=16, num_layers=10,
        num_refiner_layers=1, text_embed_dim=32, text_embed_2_dim=16, image_embed_dim=16, rope_axes_dim=(4, 6, 6),
        target_size=64), **o})


def _hunyuan_video15_vae():
    return diffusers.AutoencoderKLHunyuanVideo15(
        latent_channels=4, block_out_channels=(8, 8, 8, 8, 8), layers_per_block=1)


def _hunyuan_video15_embeds(pipe, prompt, negative):
    c = _cfg(pipe)
    return dict(
        prompt_embeds=_emb(prompt, 1, TOKENS, c.text_embed_dim), prompt_embeds_mask=_mask(),
        negative_prompt_embeds=_emb(negative, 1, TOKENS, c.text_embed_dim), negative_prompt_embeds_mask=_mask(),
        prompt_embeds_2=_emb("byt5:" + prompt, 1, TOKENS, c.text_embed_2_dim), prompt_embeds_mask_2=_mask(),
        negative_prompt_embeds_2=_emb("byt5:" + negative, 1, TOKENS, c.text_embed_2_dim),
        negative_prompt_embeds_mask_2=_mask(),
    )


def _char_tokenizer(max_length: int):
    """A character-level tokenizer built in memory (printable ASCII): pipelines that only take prompts get real, tiny,
    random text encoders, which need a tokenizer, and none can be downloaded."""
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = ["[PAD]", "[UNK]", "[EOS]"] + [chr(c) for c in range(33, 127)]
    tokenizer = Tokenizer(models.WordLevel({w: i for i, w in enumerate(vocab)}, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Split(Regex(r"\S"), behavior="isolated")
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, pad_token="[PAD]", unk_token="[UNK]",
                                   eos_token="[EOS]", model_max_length=max_length)


def _visualcloze_transformer(**o):
    # FLUX.1 Fill layout: packed latents, packed masked-image latents and the packed 8x8 pixel mask, concatenated.
    return _flux_kontext_transformer(**{"in_channels": 16 + 16 + 256, "out_channels": 16, "guidance_embeds": True,
                                        "joint_attention_dim": 32, "pooled_projection_dim": 32,
                                        **o})


def _visualcloze_components():
    from transformers import CLIPTextConfig, CLIPTextModel, T5Config, T5EncoderModel

    clip = CLIPTextModel(CLIPTextConfig(
        vocab_size=97, hidden_size=32, intermediate_size=37, num_hidden_layers=1, num_attention_heads=2,
        projection_dim=32, max_position_embeddings=PROMPT_CHARS, eos_token_id=2)).eval()
    t5 = T5EncoderModel(T5Config(vocab_size=97, d_model=32, d_ff=37, d_kv=16, num_layers=1, num_heads=2)).eval()
    return dict(scheduler=_flow(), vae=_flux_vae(), text_encoder=clip, tokenizer=_char_tokenizer(PROMPT_CHARS),
                text_encoder_2=t5, tokenizer_2=_char_tokenizer(PROMPT_CHARS), resolution=32)


def _visualcloze_embeds(pipe, prompt, negative):
    # check_inputs refuses prompt embeddings without a task prompt and a task prompt with them: the replica encodes
    # its prompts with tiny random CLIP and T5 encoders instead. One in-context example row, then the query row.
    image = _kontext_image(32)
    return dict(task_prompt="in each row turn a into b", content_prompt=prompt,
                image=[[image, image], [image, None]], max_sequence_length=PROMPT_CHARS)


def _stable_audio_transformer(**o):
    return diffusers.StableAudioDiTModel(**{**dict(
        sample_size=32, in_channels=4, num_layers=10, attention_head_dim=16, num_attention_heads=2,
        num_key_value_attention_heads=1, out_channels=4, cross_attention_dim=32, time_proj_dim=16,
        global_states_input_dim=64, cross_attention_input_dim=32), **o})


def _stable_audio_components():
    # The hub checkpoint's CosineDPMSolverMultistepScheduler needs torchsde; the EDM DPM-Solver is its noise-free kin.
    return dict(
        scheduler=diffusers.EDMDPMSolverMultistepScheduler(
            solver_order=2, prediction_type="v_prediction", sigma_data=1.0, sigma_schedule="exponential"),
        vae=diffusers.AutoencoderOobleck(
            encoder_hidden_size=8, downsampling_ratios=[2, 4], channel_multiples=[1, 2], decoder_channels=8,
            decoder_input_channels=4, audio_channels=2, sampling_rate=256),
        projection_model=diffusers.StableAudioProjectionModel(
            text_encoder_dim=32, conditioning_dim=32, min_value=0, max_value=512),
        **_none("text_encoder", "tokenizer"))


def _stable_audio_embeds(pipe, prompt, negative):
    d = pipe.projection_model.config.text_encoder_dim  # T5's width, projected by the pipeline's projection model
    return dict(prompt_embeds=_emb(prompt, 1, TOKENS, d), negative_prompt_embeds=_emb(negative, 1, TOKENS, d),
                attention_mask=_mask(), negative_attention_mask=_mask())


EXTRA_SPECS: list[Spec] = [
    Spec("easyanimate", "EasyAnimatePipeline", _easyanimate_transformer,
         lambda: dict(scheduler=_flow(), vae=_easyanimate_vae(), **_none("text_encoder", "tokenizer")),
         _masked_embeds(lambda c: c.text_embed_dim), size=32, frames=5, output="frames"),
    Spec("hunyuan_image", "HunyuanImagePipeline", _hunyuan_image_transformer,
         lambda: dict(scheduler=_flow(), vae=_hunyuan_image_vae(), guider=None, ocr_guider=None, **_none(
             "text_encoder", "tokenizer", "text_encoder_2", "tokenizer_2")),
         _hunyuan_image_embeds),
    Spec("sana_video", "SanaVideoPipeline", _sana_video_transformer,
         lambda: dict(scheduler=diffusers.DPMSolverMultistepScheduler(flow_shift=8.0, prediction_type="flow_prediction",
                                                                      use_flow_sigmas=True),
                      vae=_wan_vae(), **_none("text_encoder", "tokenizer")),
         _masked_embeds(lambda c: c.caption_channels), size=32, frames=5, frames_key="frames", output="frames",
         call=dict(use_resolution_binning=False, negative_prompt=None)),
    # Classifier-free guidance comes from the pipeline's guider (its call takes no guidance_scale).
    Spec("hunyuan_video15", "HunyuanVideo15Pipeline", _hunyuan_video15_transformer,
         lambda: dict(scheduler=_flow(), vae=_hunyuan_video15_vae(),
                      guider=diffusers.ClassifierFreeGuidance(guidance_scale=6.0),
                      **_none("text_encoder", "tokenizer", "text_encoder_2", "tokenizer_2")),
         _hunyuan_video15_embeds, size=32, frames=5, output="frames",
         setup=dict(vision_num_semantic_tokens=TOKENS)),  # SigLIP's 729 image tokens, all masked in text-to-video
    Spec("visualcloze", "VisualClozeGenerationPipeline", _visualcloze_transformer, _visualcloze_components,
         _visualcloze_embeds, takes_size=False),
    # Audio: latents of 32 steps of 8 samples at 256 Hz, one second; the call takes a duration, not a size.
    Spec("stable_audio", "StableAudioPipeline", _stable_audio_transformer, _stable_audio_components,
         _stable_audio_embeds, takes_size=False, output="audios"),
]
SPECS.extend(EXTRA_SPECS)


# --------------------------------------------------------------------------------------------------- newer families

def _longcat_image_transformer(**o):
    return diffusers.LongCatImageTransformer2DModel(**{**dict(
        patch_size=1, in_channels=64, num_layers=2, num_single_layers=8, attention_head_dim=16, num_attention_heads=2,
        joint_attention_dim=32, pooled_projection_dim=32, axes_dims_rope=[4, 6, 6]), **o})


def _ovis_image_transformer(**o):
    return diffusers.OvisImageTransformer2DModel(**{**dict(
        patch_size=1, in_channels=64, out_channels=64, num_layers=2, num_single_layers=8, attention_head_dim=16,
        num_attention_heads=2, joint_attention_dim=32, axes_dims_rope=(4, 6, 6)), **o})


def _longcat_image_components():
    # Its call refuses a prompt beside prompt embeddings and cannot encode without one (diffusers 0.42: len(None)), so
    # the replica encodes its prompts with a tiny random Qwen2 (the checkpoint's Qwen2.5-VL is a Qwen2 text model).
    from transformers import Qwen2Config, Qwen2ForCausalLM

    text_encoder = Qwen2ForCausalLM(Qwen2Config(
        vocab_size=97, hidden_size=32, intermediate_size=37, num_hidden_layers=1, num_attention_heads=2,
        num_key_value_heads=1, max_position_embeddings=256)).eval()
    return dict(scheduler=_flow(), vae=_vae16(), text_encoder=text_encoder,
                tokenizer=_char_tokenizer(PROMPT_CHARS), text_processor=None)


def _longcat_image_embeds(pipe, prompt, negative):
    # The prompt rewrite generates with the vision-language model: off on the replica.
    return dict(prompt=prompt, negative_prompt=negative, enable_prompt_rewrite=False)


def _prx_transformer(**o):
    return diffusers.PRXTransformer2DModel(**{**dict(
        in_channels=16, patch_size=2, context_in_dim=32, hidden_size=32, mlp_ratio=2.0, num_heads=2, depth=10,
        axes_dim=[8, 8]), **o})


def _bria_fibo_transformer(**o):
    # Prompt embeddings: the text encoder's last two hidden states concatenated (2 x text_encoder_dim).
    return diffusers.BriaFiboTransformer2DModel(**{**dict(
        patch_size=1, in_channels=16, num_layers=2, num_single_layers=8, attention_head_dim=16, num_attention_heads=2,
        joint_attention_dim=32, text_encoder_dim=16, axes_dims_rope=[4, 6, 6]), **o})


def _bria_fibo_vae():
    # The Wan 2.2 VAE layout (patchified, residual, 16x spatial compression): the pipeline fixes vae_scale_factor=16.
    return diffusers.AutoencoderKLWan(
        base_dim=8, decoder_base_dim=8, z_dim=16, in_channels=12, out_channels=12, patch_size=2, is_residual=True,
        dim_mult=[1, 2, 2, 2], num_res_blocks=1, temperal_downsample=[False, True, True], scale_factor_spatial=16,
        latents_mean=[0.0] * 16, latents_std=[1.0] * 16)


def _bria_fibo_components():
    # The call takes no prompt embeddings (it feeds every hidden state of the encoder to the blocks): a tiny random
    # SmolLM3. Its vocabulary covers the pipeline's hard-coded begin-of-text id (128000) used for empty prompts.
    from transformers import SmolLM3Config, SmolLM3ForCausalLM

    text_encoder = SmolLM3ForCausalLM(SmolLM3Config(
        vocab_size=128256, hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2,
        num_key_value_heads=1, max_position_embeddings=256, pad_token_id=0, bos_token_id=1, eos_token_id=2)).eval()
    return dict(scheduler=_flow(), vae=_bria_fibo_vae(), text_encoder=text_encoder,
                tokenizer=_char_tokenizer(PROMPT_CHARS))


def _prompt_only(pipe, prompt, negative):
    return dict(prompt=prompt, negative_prompt=negative)


GLM_IMAGE_SIZE = 64  # the prior tokens fix the image size: the replica always runs at 64 px


def _glm_image_transformer(**o):
    return diffusers.GlmImageTransformer2DModel(**{**dict(
        patch_size=2, in_channels=16, out_channels=16, num_layers=10, attention_head_dim=16, num_attention_heads=2,
        text_embed_dim=32, time_embed_dim=16, condition_dim=8, prior_vq_quantizer_codebook_size=64), **o})


def _glm_image_embeds(pipe, prompt, negative):
    # GLM-Image's autoregressive vision-language model writes the prior image tokens that condition the DiT; the
    # replica passes seeded random ones (one per latent patch) with ByT5-like glyph embeddings.
    c = _cfg(pipe)
    tokens = (GLM_IMAGE_SIZE // pipe.vae_scale_factor // c.patch_size) ** 2
    generator = torch.Generator().manual_seed(len(prompt))
    return dict(
        prompt_embeds=_emb(prompt, 1, TOKENS, c.text_embed_dim),
        negative_prompt_embeds=_emb(negative, 1, TOKENS, c.text_embed_dim),
        prior_token_ids=torch.randint(0, c.prior_vq_quantizer_codebook_size, (1, tokens), generator=generator),
    )


def _chronoedit_transformer(**o):
    # Wan 2.1 image-to-video layout: latents, the image's condition latents and their 4-channel mask, concatenated;
    # CLIP image tokens through an added key/value projection.
    return diffusers.ChronoEditTransformer3DModel(**{**dict(
        patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12, in_channels=16 + 16 + 4, out_channels=16,
        text_dim=32, freq_dim=32, ffn_dim=32, num_layers=10, image_dim=32, added_kv_proj_dim=24,
        rope_max_seq_len=32), **o})


def _chronoedit_components():
    # The call refuses image embeddings beside the image it edits: a tiny random CLIP vision encoder encodes it.
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModel

    image_encoder = CLIPVisionModel(CLIPVisionConfig(
        hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=2, image_size=32,
        patch_size=8, projection_dim=32)).eval()
    image_processor = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    return dict(scheduler=_flow(), vae=_wan_vae(), image_encoder=image_encoder, image_processor=image_processor,
                **_none("text_encoder", "tokenizer"))


def _chronoedit_embeds(pipe, prompt, negative):
    return {**_text_embeds("text_dim")(pipe, prompt, negative), "image": _kontext_image(32)}


NEWER_SPECS: list[Spec] = [
    Spec("bria_fibo", "BriaFiboPipeline", _bria_fibo_transformer, _bria_fibo_components, _prompt_only,
         call=dict(max_sequence_length=PROMPT_CHARS)),
    # Qwen2.5-VL prompt embeddings; the prompt rewrite needs the VL model, so the replica turns it off.
    Spec("longcat_image", "LongCatImagePipeline", _longcat_image_transformer,
         _longcat_image_components, _longcat_image_embeds, setup=dict(tokenizer_max_length=PROMPT_CHARS)),
    Spec("ovis_image", "OvisImagePipeline", _ovis_image_transformer,
         lambda: dict(scheduler=_flow(), vae=_vae16(), **_none("text_encoder", "tokenizer")),
         _text_embeds("joint_attention_dim"), call=dict(negative_prompt=None)),
    Spec("prx", "PRXPipeline", _prx_transformer,
         lambda: dict(scheduler=_flow(), vae=_vae16(), **_none("text_encoder", "tokenizer")),
         _masked_embeds(lambda c: c.context_in_dim, dtype=torch.bool),
         call=dict(use_resolution_binning=False, negative_prompt=None),
         randomize_zeros=True),  # adaLN-zero: every block's modulation starts at zero
    Spec("glm_image", "GlmImagePipeline", _glm_image_transformer,
         lambda: dict(scheduler=_flow(), vae=_tiny_vae(16, latents_mean=[0.0] * 16, latents_std=[1.0] * 16),
                      **_none("tokenizer", "processor", "text_encoder", "vision_language_encoder")),
         _glm_image_embeds, call=dict(height=GLM_IMAGE_SIZE, width=GLM_IMAGE_SIZE)),
    # The `wan_single` registry family (WanAnimate, ChronoEdit): ChronoEdit edits one image through a short video.
    Spec("chronoedit", "ChronoEditPipeline", _chronoedit_transformer, _chronoedit_components, _chronoedit_embeds,
         size=32, frames=5, output="frames"),
]
SPECS.extend(NEWER_SPECS)


# --------------------------------------------------------------------------------------------------- plumbing

def build_replica(spec: Spec, seed: int = 0, **overrides):
    torch.manual_seed(seed)
    transformers = {attr: spec.transformer(**overrides).eval() for attr in spec.transformers}
    if spec.randomize_zeros:
        with torch.no_grad():
            for transformer in transformers.values():
                for param in transformer.parameters():
                    if param.ndim > 1 and not param.any():
                        param.normal_(std=0.2)
    pipe = getattr(diffusers, spec.pipeline_class)(**transformers, **spec.components())
    for attr, value in spec.setup.items():
        setattr(pipe, attr, value)
    return pipe


def inputs(spec: Spec, pipe, model: ModelConfig) -> dict:
    """The call for `model`: prompts for hub checkpoints, seeded prompt embeddings for replicas."""
    kwargs = {"num_inference_steps": model.num_inference_steps, "output_type": "np"}  # what the runner saves;
    # tests ask for latents instead. Videos come back as (N, F, H, W, C) frames.
    if model.guidance_scale is not None:
        kwargs["guidance_scale"] = model.guidance_scale
    replica = model.source == ModelSource.replica
    for key in ("height", "width") if spec.takes_size else ():
        value = getattr(model, key) if getattr(model, key) is not None else (spec.size if replica else None)
        if value is not None:
            kwargs[key] = value
    if spec.frames is not None:
        kwargs[spec.frames_key] = spec.frames if replica else None
        kwargs = {k: v for k, v in kwargs.items() if v is not None}
    prompt = model.prompt if model.prompt is not None else "a photo of a cat"
    negative = model.negative_prompt or ""
    if spec.name == "dit":
        kwargs.pop("height"), kwargs.pop("width")
        labels = model.class_labels if model.class_labels is not None else [1]
        return {**kwargs, "class_labels": [label for label in labels for _ in range(model.num_images)]}
    if not replica:
        return {**kwargs, "prompt": prompt, **({"negative_prompt": model.negative_prompt} if model.negative_prompt else {})}
    return {**kwargs, **spec.embeds(pipe, prompt, negative), **spec.call}


SPECS_BY_NAME = {spec.name: spec for spec in SPECS}
