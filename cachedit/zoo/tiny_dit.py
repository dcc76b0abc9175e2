"""The embedded default model: a small class-conditional DiT on 16×16 digits, trained here on CPU with flow matching.

`build_tiny_dit_transformer` makes the untrained `DiTTransformer2DModel` with the original DiT initialisation,
`flow_matching_loss` is its training objective, `TinyDiTPipeline` samples it with `FlowMatchEulerDiscreteScheduler`
(which diffusers' `DiTPipeline` cannot drive), and `load_tiny_dit` loads the weights shipped in the repository.
Train them anew with `python -m runners.train_tiny` (recipe: `conf/train_tiny.yaml`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from diffusers import DiffusionPipeline, DiTTransformer2DModel, FlowMatchEulerDiscreteScheduler, ImagePipelineOutput
from diffusers.models.cache_utils import CacheMixin
from diffusers.utils.torch_utils import randn_tensor

__all__ = [
    "TINY_DIT_WEIGHTS", "NUM_CLASSES", "NULL_CLASS", "TRAIN_COMMAND", "build_tiny_dit_transformer",
    "flow_matching_loss", "TinyDiTPipeline", "load_tiny_dit", "generate_per_class"
]

TINY_DIT_WEIGHTS = Path(__file__).parent / "weights" / "tiny_dit"
NUM_CLASSES = 10
NULL_CLASS = NUM_CLASSES  # the label-embedding row reserved for the unconditional (guidance) branch
TRAIN_COMMAND = "python -m runners.train_tiny"


def build_tiny_dit_transformer(
    sample_size: int = 16,
    patch_size: int = 4,
    num_attention_heads: int = 4,
    attention_head_dim: int = 32,
    num_layers: int = 6,
    in_channels: int = 1,
    dit_init: bool = True,
) -> DiTTransformer2DModel:
    r"""
    An untrained tiny `DiTTransformer2DModel` with the original DiT initialisation.

    Args:
        sample_size (`int`, defaults to `16`): image side in pixels (the model works in pixel space).
        patch_size (`int`, defaults to `4`): patch side; 16 tokens at the defaults.
        num_attention_heads (`int`, defaults to `4`): heads per attention layer.
        attention_head_dim (`int`, defaults to `32`): width per head; the model width is heads × this.
        num_layers (`int`, defaults to `6`): number of transformer blocks.
        in_channels (`int`, defaults to `1`): image channels (grayscale); the output has as many.
        dit_init (`bool`, defaults to `True`): apply the original DiT initialisation (zero adaLN modulation, zero
            final layer, label embeddings with std 0.02). Pass `False` for a random-weight replica: with the DiT
            initialisation every block is the identity and the output is 0 until trained.

    Returns:
        `DiTTransformer2DModel`: in train mode, with `NUM_CLASSES` classes plus the null class `NULL_CLASS`.
    """
    model = DiTTransformer2DModel(
        num_attention_heads=num_attention_heads,
        attention_head_dim=attention_head_dim,
        in_channels=in_channels,
        out_channels=in_channels,
        num_layers=num_layers,
        sample_size=sample_size,
        patch_size=patch_size,
        num_embeds_ada_norm=NUM_CLASSES,
    )
    for block in model.transformer_blocks:
        # the training loop drops labels itself, once per sample for all blocks; the embedder's built-in
        # dropout (p = 0.1 in train mode) would drop independently in each block
        block.norm1.emb.class_embedder.dropout_prob = 0.0
    if not dit_init:
        return model
    with torch.no_grad():
        for block in model.transformer_blocks:
            # adaLN-Zero: every block starts as the identity (shift = scale = gate = 0)
            torch.nn.init.zeros_(block.norm1.linear.weight)
            torch.nn.init.zeros_(block.norm1.linear.bias)
            # DiT draws label embeddings with std 0.02 (diffusers leaves nn.Embedding's std 1)
            torch.nn.init.normal_(block.norm1.emb.class_embedder.embedding_table.weight, std=0.02)
        # zero final layer: its adaLN modulation and output projection, so the first prediction is 0
        for layer in (model.proj_out_1, model.proj_out_2):
            torch.nn.init.zeros_(layer.weight)
            torch.nn.init.zeros_(layer.bias)
    return model


def flow_matching_loss(
    transformer: DiTTransformer2DModel,
    x0: torch.Tensor,
    class_labels: torch.Tensor,
    generator: torch.Generator | None = None,
    label_drop_prob: float = 0.1,
    logit_normal_mean: float = 0.0,
    logit_normal_std: float = 1.0,
    num_train_timesteps: int = 1000,
) -> torch.Tensor:
    r"""
    Rectified-flow loss: predict the velocity `noise − x0` at `x_σ = (1 − σ) x0 + σ noise`, σ logit-normal.

    Args:
        transformer (`DiTTransformer2DModel`): the model being trained.
        x0 (`torch.Tensor`): clean images `(B, C, H, W)` in [-1, 1].
        class_labels (`torch.Tensor`): labels `(B,)` in 0..9.
        generator (`torch.Generator`, *optional*): source of noise, σ and label drops (for reproducible runs).
        label_drop_prob (`float`, defaults to `0.1`): share of labels replaced by `NULL_CLASS` (for guidance).
        logit_normal_mean (`float`, defaults to `0.0`): mean of the normal whose sigmoid is σ.
        logit_normal_std (`float`, defaults to `1.0`): its standard deviation.
        num_train_timesteps (`int`, defaults to `1000`): σ is fed to the model as σ × this, the timestep scale of
            `FlowMatchEulerDiscreteScheduler`.

    Returns:
        `torch.Tensor`: the scalar mean squared error.
    """
    b, device = x0.shape[0], x0.device
    noise = torch.randn(x0.shape, generator=generator, device=device, dtype=x0.dtype)
    u = torch.randn(b, generator=generator, device=device) * logit_normal_std + logit_normal_mean
    sigma = torch.sigmoid(u).to(x0.dtype)
    drop = torch.rand(b, generator=generator, device=device) < label_drop_prob
    labels = torch.where(drop, torch.full_like(class_labels, NULL_CLASS), class_labels)
    s = sigma.view(b, 1, 1, 1)
    x_t = (1.0 - s) * x0 + s * noise
    pred = transformer(x_t, timestep=sigma * num_train_timesteps, class_labels=labels).sample
    return torch.mean((pred - (noise - x0)) ** 2)


class TinyDiTPipeline(DiffusionPipeline):
    r"""
    Class-conditional pixel-space generation of 16×16 grayscale digits with a tiny DiT and flow matching.

    Parameters:
        transformer ([`DiTTransformer2DModel`]): predicts the flow velocity `noise − x0`; classes 0..9, null 10.
        scheduler ([`FlowMatchEulerDiscreteScheduler`]): integrates the flow from noise (σ = 1) to the image.
    """

    model_cpu_offload_seq = "transformer"
    _callback_tensor_inputs = ["latents"]

    def __init__(self, transformer: DiTTransformer2DModel, scheduler: FlowMatchEulerDiscreteScheduler):
        super().__init__()
        self.register_modules(transformer=transformer, scheduler=scheduler)

    @staticmethod
    def _check_inputs(class_labels, num_inference_steps, guidance_scale, output_type) -> list[int]:
        labels = [class_labels] if isinstance(class_labels, (int, np.integer)) else list(class_labels)
        if not labels:
            raise ValueError("class_labels must name at least one class")
        for label in labels:
            if isinstance(label, bool) or not isinstance(label, (int, np.integer)) or not 0 <= label < NUM_CLASSES:
                raise ValueError(f"class_labels must be integers in 0..{NUM_CLASSES - 1}, got {label!r}")
        if isinstance(num_inference_steps, bool) or not isinstance(num_inference_steps, (int, np.integer)):
            raise ValueError(f"num_inference_steps must be an integer >= 1, got {num_inference_steps!r}")
        if num_inference_steps < 1:
            raise ValueError(f"num_inference_steps must be >= 1, got {num_inference_steps}")
        if guidance_scale < 0:
            raise ValueError(f"guidance_scale must be >= 0, got {guidance_scale}")
        if output_type not in ("pil", "np", "pt"):
            raise ValueError(f"output_type must be 'pil', 'np' or 'pt', got {output_type!r}")
        return [int(label) for label in labels]

    @torch.no_grad()
    def __call__(
        self,
        class_labels: list[int] | int,
        num_inference_steps: int = 28,
        guidance_scale: float = 1.5,
        generator: torch.Generator | list[torch.Generator] | None = None,
        output_type: str = "pil",
        return_dict: bool = True,
        callback_on_step_end: Callable[[DiffusionPipeline, int, torch.Tensor, dict], dict] | None = None,
        callback_on_step_end_tensor_inputs: list[str] | None = None,
        image: torch.Tensor | None = None,
        strength: float = 1.0,
    ) -> ImagePipelineOutput | tuple:
        r"""
        Generate one image per requested class.

        Args:
            class_labels (`list[int]` or `int`): digits to draw, each in 0..9.
            num_inference_steps (`int`, defaults to `28`): Euler steps from noise to image, >= 1.
            guidance_scale (`float`, defaults to `1.5`): classifier-free guidance weight; above 1 the conditional
                and the null-class branch run batched in one transformer call, at or below 1 only the conditional.
            generator (`torch.Generator`, *optional*): makes the initial noise, and so the images, reproducible.
            output_type (`str`, defaults to `"pil"`): `"pil"` (grayscale images), `"np"` (`(B, 16, 16, 1)`
                float32) or `"pt"` (`(B, 1, 16, 16)`); values in [0, 1].
            return_dict (`bool`, defaults to `True`): return an [`ImagePipelineOutput`] rather than a tuple.
            callback_on_step_end (`Callable`, *optional*): called after each step as diffusers pipelines do,
                ``callback_on_step_end(self, step_index, timestep, callback_kwargs)``; the dict it returns may replace
                `latents`. An exception it raises stops the generation between steps (the server's timeouts).
            callback_on_step_end_tensor_inputs (`list[str]`, defaults to `["latents"]`): the tensors put in
                `callback_kwargs`; only `latents` exists here.
            image (`torch.Tensor`, *optional*): image-to-image: `(B, 1, 16, 16)` in [0, 1], one per label. It is
                noised to the schedule's σ after the first `num_inference_steps - max(1, int(num_inference_steps x
                strength))` steps and denoised from there; the cache sees only the steps that run.
            strength (`float`, defaults to `1.0`): with `image`, the share of the schedule redrawn, in (0, 1].

        Returns:
            [`ImagePipelineOutput`] or `tuple`: the images, in the order of `class_labels`.
        """
        labels = self._check_inputs(class_labels, num_inference_steps, guidance_scale, output_type)
        tensor_inputs = callback_on_step_end_tensor_inputs
        tensor_inputs = ["latents"] if tensor_inputs is None else tensor_inputs
        unknown = [name for name in tensor_inputs if name not in self._callback_tensor_inputs]
        if unknown:
            raise ValueError(
                f"callback_on_step_end_tensor_inputs must be in {self._callback_tensor_inputs}, got {unknown}")
        device, dtype = self._execution_device, self.transformer.dtype
        do_cfg = guidance_scale > 1.0
        config = self.transformer.config
        shape = (len(labels), config.in_channels, config.sample_size, config.sample_size)
        latents = randn_tensor(shape, generator=generator, device=device, dtype=dtype)
        cond = torch.tensor(labels, device=device)
        model_labels = torch.cat([cond, torch.full_like(cond, NULL_CLASS)]) if do_cfg else cond

        self.scheduler.set_timesteps(num_inference_steps, device=device)
        start = 0
        if image is not None:
            if not 0 < strength <= 1:
                raise ValueError(f"strength must be in (0, 1], got {strength!r}")
            if tuple(image.shape) != shape:
                raise ValueError(f"image must have shape {shape} (one per label), got {tuple(image.shape)}")
            start = num_inference_steps - max(1, int(num_inference_steps * strength))
            sigma = self.scheduler.sigmas[start]
            latents = (1.0 - sigma) * (image.to(device, dtype) * 2 - 1) + sigma * latents
            self.scheduler.set_begin_index(start)
        sigmas, running = self.scheduler.sigmas[start:], num_inference_steps - start
        for i, t in enumerate(self.progress_bar(self.scheduler.timesteps[start:])):
            model_input = torch.cat([latents, latents]) if do_cfg else latents
            timestep = t.expand(model_input.shape[0]).to(dtype)
            # one call for both guidance branches; the cache hooks key their state on this context.
            # DiTTransformer2DModel is no CacheMixin in diffusers 0.42.1, but the mixin's context manager only
            # needs the module, so it is borrowed unbound (same hook-state behaviour as on a CacheMixin model).
            context = dict(step_index=i, num_inference_steps=running, timestep=t, sigma=float(sigmas[i]))
            with CacheMixin.cache_context(self.transformer, "cond", **context):
                velocity = self.transformer(model_input, timestep=timestep, class_labels=model_labels).sample
            if do_cfg:
                v_cond, v_null = velocity.chunk(2)
                velocity = v_null + guidance_scale * (v_cond - v_null)
            latents = self.scheduler.step(velocity, t, latents).prev_sample
            if callback_on_step_end is not None:
                available = {"latents": latents}
                outputs = callback_on_step_end(self, i, t, {name: available[name] for name in tensor_inputs})
                latents = outputs.pop("latents", latents)

        images = (latents.float() / 2 + 0.5).clamp(0, 1)
        if output_type != "pt":
            images = images.cpu().permute(0, 2, 3, 1).numpy()
            if output_type == "pil":
                images = self.numpy_to_pil(images)
        self.maybe_free_model_hooks()
        if not return_dict:
            return (images,)
        return ImagePipelineOutput(images=images)


def load_tiny_dit(path: str | Path = TINY_DIT_WEIGHTS, torch_dtype: torch.dtype = torch.float32) -> TinyDiTPipeline:
    r"""
    Load a trained tiny DiT pipeline (by default the weights shipped in the repository).

    Args:
        path (`str` or `Path`, defaults to `TINY_DIT_WEIGHTS`): a `TinyDiTPipeline.save_pretrained` directory.
        torch_dtype (`torch.dtype`, defaults to `torch.float32`): dtype to load the transformer in.
    """
    path = Path(path)
    if not (path / "model_index.json").is_file():
        raise FileNotFoundError(
            f"No tiny DiT weights at {path} (model_index.json missing). "
            f"Train them with `{TRAIN_COMMAND} output_dir={path}`."
        )
    return TinyDiTPipeline.from_pretrained(path, dtype=torch_dtype)


def generate_per_class(
    pipe: TinyDiTPipeline,
    samples_per_class: int,
    seed: int = 0,
    batch_size: int = 100,
    **call_kwargs,
) -> tuple[np.ndarray, np.ndarray]:
    r"""
    Draw the same number of samples of every digit, reproducibly, for task-quality metrics.

    Args:
        pipe (`TinyDiTPipeline`): the pipeline (cached or not).
        samples_per_class (`int`): samples of each digit 0..9.
        seed (`int`, defaults to `0`): seed of one generator shared by all batches in order.
        batch_size (`int`, defaults to `100`): images per pipeline call.
        call_kwargs: passed to the pipeline call (`num_inference_steps`, `guidance_scale`, ...).

    Returns:
        `tuple[np.ndarray, np.ndarray]`: images `(N, 16, 16)` float32 in [0, 1] and their labels `(N,)`.
    """
    labels = np.repeat(np.arange(NUM_CLASSES), samples_per_class)
    generator = torch.Generator("cpu").manual_seed(seed)
    chunks = []
    for start in range(0, len(labels), batch_size):
        batch = labels[start : start + batch_size].tolist()
        out = pipe(batch, generator=generator, output_type="np", **call_kwargs).images
        chunks.append(out[..., 0])
    return np.concatenate(chunks), labels
