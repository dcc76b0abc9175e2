"""The second embedded model: a small FLUX (`FluxTransformer2DModel`, dual- then single-stream blocks, RoPE, text
tokens beside image tokens) trained here on CPU with flow matching on the 16×16 digits, driven by the real
diffusers `FluxPipeline`.

How the pieces map onto `FluxPipeline` (diffusers 0.42.1), which is used as is, an unmodified instance (so
cache-dit, which recognises pipelines by class name, and diffusers' own caches see a plain FLUX):

- **Prompts are class embeddings.** Each digit is a short sequence of learned token embeddings, passed as
  `prompt_embeds`, plus a learned pooled vector (`pooled_prompt_embeds`); a learned null "prompt" is the negative
  prompt, so guidance is FLUX's true CFG (`true_cfg_scale`, one transformer call per branch). `digit_inputs` builds
  these arguments from `pipe.class_prompts`, the table attached to the pipeline instance.
- **The VAE is a lossless pixel-space stand-in** (`PixelShuffleVAE`): encoding is a 2×2 space-to-depth of the
  16×16 grayscale image (4 channels of 8×8), decoding its inverse. It has the config FluxPipeline reads
  (`block_out_channels` → a scale factor of 2, `scaling_factor`, `shift_factor`), so the pipeline packs the 8×8×4
  latents into 16 tokens of 16 channels as it does for FLUX.1.
- **The scheduler is FLUX.1's**: `FlowMatchEulerDiscreteScheduler` with dynamic shifting (base/max shift 0.5/1.15
  over 256..4096 image tokens; at 16 tokens mu is below the base shift, so the schedule is shifted less than FLUX.1
  at 1024 px, as FluxPipeline computes it).

What could not be used as is, and why: the text encoders and tokenizers (CLIP, T5) are `None` (a digit "prompt" is
a learned embedding, and a T5 is far beyond the repository's size and CPU budget); FluxPipeline only calls them
when a text `prompt` is given, so `prompt_embeds` bypass them. FLUX.1-dev's distilled guidance embedding is off
(`guidance_embeds=False`): guidance is true CFG with the null prompt (nothing was distilled). Text prompts (`prompt="7"`) are therefore not accepted: FluxPipeline raises for a missing tokenizer.

Train anew with `python -m runners.train_tiny_flux` (recipe: `conf/train_tiny_flux.yaml`).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import FlowMatchEulerDiscreteScheduler, FluxPipeline, FluxTransformer2DModel
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from safetensors.torch import load_file, save_file

__all__ = [
    "TINY_FLUX_WEIGHTS", "NUM_CLASSES", "NULL_CLASS", "PROMPTS_FILE", "TRAIN_COMMAND", "RESOLUTION",
    "PixelShuffleVAE", "ClassPrompts", "build_tiny_flux_transformer", "flux_scheduler", "image_ids", "pack",
    "flow_matching_loss", "DigitInputs", "check_labels", "digit_inputs", "assemble", "save_tiny_flux",
    "load_tiny_flux"
]

TINY_FLUX_WEIGHTS = Path(__file__).parent / "weights" / "tiny_flux"
NUM_CLASSES = 10
NULL_CLASS = NUM_CLASSES
PROMPTS_FILE = "class_prompts.safetensors"
TRAIN_COMMAND = "python -m runners.train_tiny_flux"
RESOLUTION = 16


class PixelShuffleVAE(ModelMixin, ConfigMixin):
    """A lossless stand-in for FLUX's VAE: 2×2 space-to-depth in, depth-to-space out (no weights)."""

    @register_to_config
    def __init__(self, in_channels: int = 1, block_out_channels: tuple[int, ...] = (4, 4), scaling_factor: float = 1.0, shift_factor: float = 0.0):
        super().__init__()
        self.latent_channels = in_channels * 4
        # no weights; a buffer gives the module a device and dtype, which the pipeline asks every component for
        self.register_buffer("anchor", torch.zeros(1), persistent=False)

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """`(B, C, H, W)` in [-1, 1] -> latents `(B, 4C, H/2, W/2)`."""
        return F.pixel_unshuffle(images, 2)

    def decode(self, latents: torch.Tensor, return_dict: bool = True):
        images = F.pixel_shuffle(latents, 2)
        return (images,) if not return_dict else {"sample": images}


class ClassPrompts(torch.nn.Module):
    """Learned "prompts": for each class (and the null class) a few token embeddings and a pooled vector."""

    def __init__(self, tokens: int = 4, dim: int = 64, pooled_dim: int = 64) -> None:
        super().__init__()
        self.tokens = torch.nn.Parameter(torch.randn(NUM_CLASSES + 1, tokens, dim) * 0.02)
        self.pooled = torch.nn.Parameter(torch.randn(NUM_CLASSES + 1, pooled_dim) * 0.02)

    def forward(self, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.tokens[labels], self.pooled[labels]


def build_tiny_flux_transformer(
    num_layers: int = 2, num_single_layers: int = 10, num_attention_heads: int = 4, attention_head_dim: int = 16,
    joint_attention_dim: int = 64, pooled_projection_dim: int = 64, axes_dims_rope: tuple[int, int, int] = (4, 6, 6),
    zero_init: bool = True,
) -> FluxTransformer2DModel:
    """An untrained small FLUX transformer for 1-channel 16×16 images packed as 16 tokens of 16 channels. With
    `zero_init` the final projection is zeroed so the first prediction is 0 (as DiT's initialisation does; it trains
    faster); replicas keep random weights there, or every output would be the same."""
    model = FluxTransformer2DModel(
        patch_size=1, in_channels=16, num_layers=num_layers, num_single_layers=num_single_layers,
        attention_head_dim=attention_head_dim, num_attention_heads=num_attention_heads,
        joint_attention_dim=joint_attention_dim, pooled_projection_dim=pooled_projection_dim,
        guidance_embeds=False, axes_dims_rope=tuple(axes_dims_rope),
    )
    if not zero_init:
        return model
    with torch.no_grad():
        torch.nn.init.zeros_(model.proj_out.weight)
        torch.nn.init.zeros_(model.proj_out.bias)
    return model


def flux_scheduler() -> FlowMatchEulerDiscreteScheduler:
    """FLUX.1's scheduler settings (dynamic shift by image sequence length)."""
    return FlowMatchEulerDiscreteScheduler(
        shift=3.0, use_dynamic_shifting=True, base_shift=0.5, max_shift=1.15, base_image_seq_len=256, max_image_seq_len=4096
    )


def image_ids(device=None) -> torch.Tensor:
    """RoPE position ids of the 4×4 image tokens, as FluxPipeline makes them."""
    side = RESOLUTION // 4
    return FluxPipeline._prepare_latent_image_ids(1, side, side, device, torch.float32)


def pack(latents: torch.Tensor) -> torch.Tensor:
    b, c, h, w = latents.shape
    return FluxPipeline._pack_latents(latents, b, c, h, w)


def flow_matching_loss(
    transformer: FluxTransformer2DModel, prompts: ClassPrompts, x0: torch.Tensor, class_labels: torch.Tensor,
    generator: torch.Generator | None = None, label_drop_prob: float = 0.1, logit_normal_mean: float = 0.0,
    logit_normal_std: float = 1.0,
) -> torch.Tensor:
    """Rectified flow on the packed latents: predict `noise − x0` at `(1 − σ) x0 + σ noise`, σ logit-normal."""
    b = x0.shape[0]
    latents = pack(F.pixel_unshuffle(x0, 2))
    noise = torch.randn(latents.shape, generator=generator)
    sigma = torch.sigmoid(torch.randn(b, generator=generator) * logit_normal_std + logit_normal_mean)
    drop = torch.rand(b, generator=generator) < label_drop_prob
    labels = torch.where(drop, torch.full_like(class_labels, NULL_CLASS), class_labels)
    tokens, pooled = prompts(labels)
    s = sigma.view(b, 1, 1)
    x_t = (1.0 - s) * latents + s * noise
    pred = transformer(
        hidden_states=x_t, timestep=sigma, encoder_hidden_states=tokens, pooled_projections=pooled,
        img_ids=image_ids(), txt_ids=torch.zeros(tokens.shape[1], 3), return_dict=False,
    )[0]
    return torch.mean((pred - (noise - latents)) ** 2)


class DigitInputs(dict):
    """FluxPipeline call arguments that also remember which digit each image asks for (`class_labels`), so task
    metrics can score the images; unpacking (`pipe(**inputs)`) passes only the dict's keys."""

    def __init__(self, class_labels: list[int], **kwargs) -> None:
        super().__init__(**kwargs)
        self.class_labels = list(class_labels)


def check_labels(class_labels) -> list[int]:
    labels = [class_labels] if isinstance(class_labels, (int, np.integer)) else list(class_labels)
    bad = [l for l in labels if isinstance(l, bool) or not isinstance(l, (int, np.integer)) or not 0 <= l < NUM_CLASSES]
    if not labels or bad:
        raise ValueError(f"class_labels must be integers in 0..{NUM_CLASSES - 1}, got {bad or labels!r}")
    return [int(l) for l in labels]


def digit_inputs(pipe: FluxPipeline, class_labels, true_cfg_scale: float = 1.5, **call_kwargs) -> DigitInputs:
    """Arguments of ``FluxPipeline.__call__`` that draw `class_labels`: the class "prompts" as `prompt_embeds` and
    `pooled_prompt_embeds`, the null class as the negative prompt (true CFG at `true_cfg_scale`), 16×16 pixels."""
    labels = check_labels(class_labels)
    for key in ("height", "width"):
        if call_kwargs.get(key, RESOLUTION) != RESOLUTION:
            raise ValueError(f"tiny_flux draws {RESOLUTION}x{RESOLUTION} digits; got {key}={call_kwargs[key]}.")
    index = torch.tensor(labels)
    tokens, pooled = pipe.class_prompts(index)
    null_tokens, null_pooled = pipe.class_prompts(torch.full_like(index, NULL_CLASS))
    dtype = pipe.transformer.dtype
    return DigitInputs(
        labels, prompt_embeds=tokens.to(dtype), pooled_prompt_embeds=pooled.to(dtype),
        negative_prompt_embeds=null_tokens.to(dtype), negative_pooled_prompt_embeds=null_pooled.to(dtype),
        true_cfg_scale=true_cfg_scale, **{**call_kwargs, "height": RESOLUTION, "width": RESOLUTION},
    )


def assemble(transformer: FluxTransformer2DModel, prompts: ClassPrompts) -> FluxPipeline:
    """A plain `FluxPipeline` (no text encoders, the pixel VAE) with the class prompts attached as `class_prompts`."""
    pipe = FluxPipeline(
        scheduler=flux_scheduler(), vae=PixelShuffleVAE(), text_encoder=None, tokenizer=None,
        text_encoder_2=None, tokenizer_2=None, transformer=transformer,
    )
    pipe.class_prompts = prompts.requires_grad_(False).eval()
    return pipe


def save_tiny_flux(pipe: FluxPipeline, path: str | Path) -> None:
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    # what `cachedit.harness.pipelines.check_model` reads to count blocks without loading weights
    index = {"_class_name": "FluxPipeline", "scheduler": ["diffusers", "FlowMatchEulerDiscreteScheduler"], "transformer": ["diffusers", "FluxTransformer2DModel"]}
    (path / "model_index.json").write_text(json.dumps(index, indent=2) + "\n")
    # float16 on disk halves the repository's share (the model is defined by these rounded weights; loads as float32)
    copy.deepcopy(pipe.transformer).to(torch.float16).save_pretrained(path / "transformer")
    pipe.scheduler.save_pretrained(path / "scheduler")
    save_file({k: v.contiguous() for k, v in pipe.class_prompts.state_dict().items()}, str(path / PROMPTS_FILE))


def load_tiny_flux(path: str | Path = TINY_FLUX_WEIGHTS, torch_dtype: torch.dtype = torch.float32) -> FluxPipeline:
    """Load the trained tiny FLUX (by default the weights shipped in the repository)."""
    path = Path(path)
    missing = [p for p in ("transformer/config.json", "scheduler/scheduler_config.json", PROMPTS_FILE) if not (path / p).is_file()]
    if missing:
        raise FileNotFoundError(f"No tiny FLUX weights at {path}: missing {missing}. Train them with `{TRAIN_COMMAND} output_dir={path}`.")
    transformer = FluxTransformer2DModel.from_pretrained(path / "transformer", torch_dtype=torch_dtype)
    state = load_file(str(path / PROMPTS_FILE))
    prompts = ClassPrompts(tokens=state["tokens"].shape[1], dim=state["tokens"].shape[2], pooled_dim=state["pooled"].shape[1])
    prompts.load_state_dict(state)
    pipe = assemble(transformer, prompts.to(torch_dtype))
    pipe.scheduler = FlowMatchEulerDiscreteScheduler.from_pretrained(path / "scheduler")
    return pipe
