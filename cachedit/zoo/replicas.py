"""Offline replicas: the real diffusers pipeline classes, built from scaled-down configs with seeded random weights.

They exercise the same code paths as the hub checkpoints (block classes, forward patterns, pipeline loops), but
random weights show little step-to-step redundancy, so fidelity is judged on the embedded trained model (DESIGN §4).
Replicas skip the text encoders: prompts become seeded random embeddings (``prompt_embeddings``).
"""

from __future__ import annotations

import zlib

import torch
from diffusers import (
    AutoencoderKL,
    DPMSolverMultistepScheduler,
    FlowMatchEulerDiscreteScheduler,
    FluxPipeline,
    FluxTransformer2DModel,
    PixArtAlphaPipeline,
    PixArtTransformer2DModel,
)

# 18 blocks (6 dual-stream + 12 single-stream; FLUX.1-dev has 19 + 38), width 128: Fn=8 still leaves a middle.
FLUX_TRANSFORMER = dict(
    patch_size=1,
    in_channels=16,  # 4 latent channels packed 2x2
    num_layers=6,
    num_single_layers=12,
    attention_head_dim=32,
    num_attention_heads=4,
    joint_attention_dim=64,
    pooled_projection_dim=32,
    guidance_embeds=True,  # FLUX.1-dev is guidance-distilled
    axes_dims_rope=(8, 12, 12),
)
# FLUX.1-dev's scheduler settings.
FLUX_SCHEDULER = dict(
    shift=3.0, use_dynamic_shifting=True, base_shift=0.5, max_shift=1.15, base_image_seq_len=256, max_image_seq_len=4096
)
PIXART_TRANSFORMER = dict(
    sample_size=16,
    num_layers=12,
    patch_size=2,
    attention_head_dim=32,
    num_attention_heads=4,
    caption_channels=64,
    in_channels=4,
    out_channels=8,
    cross_attention_dim=128,
    num_embeds_ada_norm=1000,
    norm_type="ada_norm_single",
    norm_elementwise_affine=False,
    norm_eps=1e-6,
    use_additional_conditions=False,
)
PROMPT_TOKENS = 16


def tiny_vae(latent_channels: int, **kwargs) -> AutoencoderKL:
    # Four levels, so the VAE downsamples by 8 like the real ones.
    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(8, 16, 16, 16),
        layers_per_block=1,
        latent_channels=latent_channels,
        norm_num_groups=8,
        sample_size=128,
        **kwargs,
    )


def flux_transformer(**overrides) -> FluxTransformer2DModel:
    return FluxTransformer2DModel(**{**FLUX_TRANSFORMER, **overrides})


def pixart_transformer(**overrides) -> PixArtTransformer2DModel:
    return PixArtTransformer2DModel(**{**PIXART_TRANSFORMER, **overrides})


def build_flux(seed: int = 0, **overrides) -> FluxPipeline:
    torch.manual_seed(seed)
    return FluxPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(**FLUX_SCHEDULER),
        vae=tiny_vae(4, shift_factor=0.0609, scaling_factor=1.5035, use_quant_conv=False, use_post_quant_conv=False),
        text_encoder=None,
        tokenizer=None,
        text_encoder_2=None,
        tokenizer_2=None,
        transformer=flux_transformer(**overrides),
    )


def build_pixart(seed: int = 0, **overrides) -> PixArtAlphaPipeline:
    torch.manual_seed(seed)
    return PixArtAlphaPipeline(
        tokenizer=None,
        text_encoder=None,
        vae=tiny_vae(4),
        transformer=pixart_transformer(**overrides),
        scheduler=DPMSolverMultistepScheduler(),
    )


def prompt_embeddings(prompt: str, shape: tuple[int, ...], dtype=torch.float32) -> torch.Tensor:
    """A stand-in for a text encoder: embeddings seeded by the prompt text, so equal prompts embed equally."""
    generator = torch.Generator().manual_seed(zlib.crc32(prompt.encode()))
    return torch.randn(shape, generator=generator, dtype=torch.float32).to(dtype)
