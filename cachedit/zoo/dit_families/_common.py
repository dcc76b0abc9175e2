"""What every replica spec shares: the `Spec` record and the stand-in prompt embeddings, masks, schedulers and tiny VAEs
that several families use."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import diffusers
import torch

from ..replicas import _tiny_vae, prompt_embeddings

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
    steps (`Callable`, *optional*): ``(pipe, num_inference_steps)`` for a pipeline whose call takes no step count
        (RFD4-Proteina's is the length of its `recycle_depths` config): the count is set on the pipeline instead.
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
    steps: Callable | None = None  # (pipe, n): sets the step count of a call that takes none (RFD4-Proteina)


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


def _masked_embeds(dim_of: Callable, mask_key: str = "prompt_attention_mask", dtype=torch.long):
    def embeds(pipe, prompt, negative):
        d = dim_of(_cfg(pipe))
        return {
            "prompt_embeds": _emb(prompt, 1, TOKENS, d), mask_key: _mask(dtype=dtype),
            "negative_prompt_embeds": _emb(negative, 1, TOKENS, d), "negative_" + mask_key: _mask(dtype=dtype),
        }
    return embeds


def _two_encoder_embeds(dim_key: str, dim_key_2: str, mask_key: str, tag_2: str):
    """Masked embeddings of two text encoders (HunyuanDiT's CLIP + T5, HunyuanVideo 1.5's LLM + ByT5): the second
    encoder's keys end in ``_2`` and its stand-ins are seeded by the tagged prompt."""
    first = _masked_embeds(lambda c: getattr(c, dim_key), mask_key)
    second = _masked_embeds(lambda c: getattr(c, dim_key_2), mask_key)

    def embeds(pipe, prompt, negative):
        tagged = second(pipe, tag_2 + prompt, tag_2 + negative)
        return {**first(pipe, prompt, negative), **{key + "_2": value for key, value in tagged.items()}}
    return embeds


def _text_embeds(dim_key: str, negative_too: bool = True):
    def embeds(pipe, prompt, negative):
        d = getattr(_cfg(pipe), dim_key)
        out = {"prompt_embeds": _emb(prompt, 1, TOKENS, d)}
        if negative_too:
            out["negative_prompt_embeds"] = _emb(negative, 1, TOKENS, d)
        return out
    return embeds


def _flux_vae():
    return _tiny_vae(4, shift_factor=0.0609, scaling_factor=1.5035, use_quant_conv=False, use_post_quant_conv=False)


def _none(*names: str) -> dict:
    return {n: None for n in names}


def _wan_vae():
    return diffusers.AutoencoderKLWan(base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
                                      temperal_downsample=[False, True, True])


def _kontext_image(size: int = 64):
    import numpy as np
    from PIL import Image

    pixels = np.random.default_rng(0).integers(0, 255, (size, size, 3), dtype=np.uint8)
    return Image.fromarray(pixels)


def _flux_vae16():
    return _tiny_vae(16, use_quant_conv=False, use_post_quant_conv=False)


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


def _prompt_only(pipe, prompt, negative):
    return dict(prompt=prompt, negative_prompt=negative)


def _pooled_embeds(dim_key: str, pooled_key: str, pooled_tag: str = "pooled:"):
    """Sequence and pooled prompt embeddings with their negatives (SD3's T5 + CLIP, Kandinsky 6's Qwen + CLIP)."""
    def embeds(pipe, prompt, negative):
        c = _cfg(pipe)
        d, pooled = getattr(c, dim_key), getattr(c, pooled_key)
        return dict(
            prompt_embeds=_emb(prompt, 1, TOKENS, d), pooled_prompt_embeds=_emb(pooled_tag + prompt, 1, pooled),
            negative_prompt_embeds=_emb(negative, 1, TOKENS, d),
            negative_pooled_prompt_embeds=_emb(pooled_tag + negative, 1, pooled),
        )
    return embeds
