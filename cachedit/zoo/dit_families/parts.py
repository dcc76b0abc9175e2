"""What several replica families share: the stand-in prompt embeddings and masks, schedulers, tiny VAEs and
tokenizers. Family-specific parts stay private in their modality's module."""

from __future__ import annotations

from collections.abc import Callable

import diffusers
import torch

from ..replicas import prompt_embeddings, tiny_vae

__all__ = [
    "TOKENS", "PROMPT_CHARS", "emb", "mask", "flow", "vae4", "vae4_shifted", "vae16", "flux_vae", "flux_vae16",
    "flux2_vae", "wan_vae", "config_of", "masked_embeds", "two_encoder_embeds", "text_embeds", "pooled_embeds",
    "prompt_only", "nones", "seeded_image", "char_tokenizer",
]

TOKENS = 8  # prompt tokens of the stand-in embeddings
PROMPT_CHARS = 32  # characters the tiny text encoders of the prompt-only replicas read (VisualCloze)


def emb(prompt: str, *shape: int) -> torch.Tensor:
    return prompt_embeddings(prompt, shape)


def mask(tokens: int = TOKENS, dtype=torch.long) -> torch.Tensor:
    return torch.ones(1, tokens, dtype=dtype)


def flow() -> diffusers.FlowMatchEulerDiscreteScheduler:
    return diffusers.FlowMatchEulerDiscreteScheduler()


def vae4() -> diffusers.AutoencoderKL:
    return tiny_vae(4)


def vae4_shifted() -> diffusers.AutoencoderKL:
    # SD3's latent statistics; SD3, Lumina 2 and HiDream decode with `latents / scaling + shift`.
    return tiny_vae(4, shift_factor=0.0609, scaling_factor=1.5305, use_quant_conv=False, use_post_quant_conv=False)


def vae16() -> diffusers.AutoencoderKL:
    # The FLUX.1 VAE's latent statistics, which Z-Image reuses.
    return tiny_vae(16, shift_factor=0.1159, scaling_factor=0.3611, use_quant_conv=False, use_post_quant_conv=False)


def config_of(pipe) -> object:
    return pipe.transformer.config


def masked_embeds(dim_of: Callable, mask_key: str = "prompt_attention_mask", dtype=torch.long):
    def embeds(pipe, prompt, negative):
        d = dim_of(config_of(pipe))
        return {
            "prompt_embeds": emb(prompt, 1, TOKENS, d), mask_key: mask(dtype=dtype),
            "negative_prompt_embeds": emb(negative, 1, TOKENS, d), "negative_" + mask_key: mask(dtype=dtype),
        }
    return embeds


def two_encoder_embeds(dim_key: str, dim_key_2: str, mask_key: str, tag_2: str):
    """Masked embeddings of two text encoders (HunyuanDiT's CLIP + T5, HunyuanVideo 1.5's LLM + ByT5): the second
    encoder's keys end in ``_2`` and its stand-ins are seeded by the tagged prompt."""
    first = masked_embeds(lambda c: getattr(c, dim_key), mask_key)
    second = masked_embeds(lambda c: getattr(c, dim_key_2), mask_key)

    def embeds(pipe, prompt, negative):
        tagged = second(pipe, tag_2 + prompt, tag_2 + negative)
        return {**first(pipe, prompt, negative), **{key + "_2": value for key, value in tagged.items()}}
    return embeds


def text_embeds(dim_key: str, negative_too: bool = True):
    def embeds(pipe, prompt, negative):
        d = getattr(config_of(pipe), dim_key)
        out = {"prompt_embeds": emb(prompt, 1, TOKENS, d)}
        if negative_too:
            out["negative_prompt_embeds"] = emb(negative, 1, TOKENS, d)
        return out
    return embeds


def flux_vae():
    return tiny_vae(4, shift_factor=0.0609, scaling_factor=1.5035, use_quant_conv=False, use_post_quant_conv=False)


def nones(*names: str) -> dict:
    return {n: None for n in names}


def flux2_vae():
    return diffusers.AutoencoderKLFlux2(
        block_out_channels=(8, 16, 16, 16), layers_per_block=1, latent_channels=4, norm_num_groups=8, sample_size=64,
        mid_block_add_attention=False)


def wan_vae():
    return diffusers.AutoencoderKLWan(base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
                                      temperal_downsample=[False, True, True])


def seeded_image(size: int = 64):
    import numpy as np
    from PIL import Image

    pixels = np.random.default_rng(0).integers(0, 255, (size, size, 3), dtype=np.uint8)
    return Image.fromarray(pixels)


def flux_vae16():
    return tiny_vae(16, use_quant_conv=False, use_post_quant_conv=False)


def char_tokenizer(max_length: int):
    """A character-level tokenizer built in memory (printable ASCII): pipelines that only take prompts get real, tiny,
    random text encoders, which need a tokenizer, and none can be downloaded."""
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = ["[PAD]", "[UNK]", "[EOS]"] + [chr(c) for c in range(33, 127)]
    tokenizer = Tokenizer(models.WordLevel({w: i for i, w in enumerate(vocab)}, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Split(Regex(r"\S"), behavior="isolated")
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, pad_token="[PAD]", unk_token="[UNK]",
                                   eos_token="[EOS]", model_max_length=max_length)


def prompt_only(pipe, prompt, negative):
    return dict(prompt=prompt, negative_prompt=negative)


def pooled_embeds(dim_key: str, pooled_key: str, pooled_tag: str = "pooled:"):
    """Sequence and pooled prompt embeddings with their negatives (SD3's T5 + CLIP, Kandinsky 6's Qwen + CLIP)."""
    def embeds(pipe, prompt, negative):
        c = config_of(pipe)
        d, pooled = getattr(c, dim_key), getattr(c, pooled_key)
        return dict(
            prompt_embeds=emb(prompt, 1, TOKENS, d), pooled_prompt_embeds=emb(pooled_tag + prompt, 1, pooled),
            negative_prompt_embeds=emb(negative, 1, TOKENS, d),
            negative_pooled_prompt_embeds=emb(pooled_tag + negative, 1, pooled),
        )
    return embeds
