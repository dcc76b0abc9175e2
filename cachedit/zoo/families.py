"""Model families: how to build a family's offline replica and how to call its pipeline.

``model.name`` in the Hydra config selects a family here; everything about *which blocks to cache* lives in the
adapter registry (keyed by pipeline class), not here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from ..configs import ModelConfig, ModelSource
from . import replicas
from .calls import call_kwargs, prompt_of


@dataclass(frozen=True)
class Family:
    """Args:
    name (`str`): the ``model.name`` key.
    pipeline_class (`str`): the diffusers pipeline class a hub checkpoint of this family loads as.
    build_replica (`Callable`): ``(seed, **transformer_overrides) -> pipeline`` with random weights.
    replica_transformer (`Callable`): ``(**overrides) -> transformer``, built on the meta device to count blocks.
    inputs (`Callable`): ``(pipe, model_config) -> dict`` of call arguments (no generator).
    load_embedded (`Callable`, *optional*): ``(path | None, dtype) -> pipeline`` for shipped weights.
    quality (`Callable`, *optional*): ``(images, inputs) -> dict`` of task metrics (e.g. digit accuracy).
    grid_rows (`Callable`, *optional*): ``(inputs) -> row labels`` for image grids; one row per label.
    output (`str`): the attribute of the pipeline output holding the result (``frames`` for video pipelines).
    transformers (`tuple[str, ...]`): the pipeline attributes the replica builds with `replica_transformer` (Wan
        2.2: ``transformer`` and ``transformer_2``; Shap-E: ``prior``).
    embedded_weights (`Path`, *optional*): where `load_embedded` finds the shipped weights by default.
    """

    name: str
    pipeline_class: str
    build_replica: Callable
    replica_transformer: Callable
    inputs: Callable[[object, ModelConfig], dict]
    load_embedded: Callable | None = None
    quality: Callable | None = None
    grid_rows: Callable | None = None
    output: str = "images"
    transformers: tuple[str, ...] = ("transformer",)
    embedded_weights: Path | None = None


def _flux_inputs(pipe, model: ModelConfig) -> dict:
    kwargs = {**call_kwargs(model, replica_size=256), "num_images_per_prompt": model.num_images}
    if model.source != ModelSource.replica:
        return {**kwargs, "prompt": prompt_of(model)}
    cfg, dtype = pipe.transformer.config, pipe.transformer.dtype
    prompt = prompt_of(model)
    return {
        **kwargs,
        "prompt_embeds": replicas.prompt_embeddings(prompt, (1, replicas.PROMPT_TOKENS, cfg.joint_attention_dim), dtype),
        "pooled_prompt_embeds": replicas.prompt_embeddings("pooled:" + prompt, (1, cfg.pooled_projection_dim), dtype),
    }


def _pixart_inputs(pipe, model: ModelConfig) -> dict:
    kwargs = {**call_kwargs(model, replica_size=128), "num_images_per_prompt": model.num_images}
    if model.source != ModelSource.replica:
        return {**kwargs, "prompt": prompt_of(model), "negative_prompt": model.negative_prompt or ""}
    shape = (1, replicas.PROMPT_TOKENS, pipe.transformer.config.caption_channels)
    dtype = pipe.transformer.dtype
    mask = torch.ones(shape[:2], dtype=torch.long)
    return {
        **kwargs,
        "prompt_embeds": replicas.prompt_embeddings(prompt_of(model), shape, dtype),
        "prompt_attention_mask": mask,
        "negative_prompt_embeds": replicas.prompt_embeddings(model.negative_prompt or "", shape, dtype),
        "negative_prompt_attention_mask": mask,
        "negative_prompt": None,  # the pipeline defaults it to "", which clashes with the embeddings
        "use_resolution_binning": False,  # the bins only exist for the real sample sizes
    }


def _tiny_dit_inputs(pipe, model: ModelConfig) -> dict:
    labels = model.class_labels if model.class_labels is not None else list(range(10))
    kwargs = call_kwargs(model)
    kwargs.pop("height", None), kwargs.pop("width", None)  # fixed 16x16
    return {**kwargs, "class_labels": [label for label in labels for _ in range(model.num_images)]}


def _tiny_dit_replica(seed: int = 0, **overrides):
    from .tiny_dit import TinyDiTPipeline, build_tiny_dit_transformer

    torch.manual_seed(seed)
    # Random weights everywhere: with DiT's zero initialisation every block would be the identity.
    transformer = build_tiny_dit_transformer(**{"dit_init": False, **overrides}).eval()
    return TinyDiTPipeline(transformer=transformer, scheduler=_tiny_dit_scheduler())


def _tiny_dit_scheduler():
    from diffusers import FlowMatchEulerDiscreteScheduler

    return FlowMatchEulerDiscreteScheduler()


def _tiny_dit_transformer(**overrides):
    from .tiny_dit import build_tiny_dit_transformer

    return build_tiny_dit_transformer(**overrides)


def _tiny_dit_load(path, dtype):
    from .tiny_dit import TINY_DIT_WEIGHTS, load_tiny_dit

    return load_tiny_dit(path or TINY_DIT_WEIGHTS, torch_dtype=dtype)


def _tiny_flux_inputs(pipe, model: ModelConfig) -> dict:
    from .tiny_flux import digit_inputs

    labels = model.class_labels if model.class_labels is not None else list(range(10))
    kwargs = call_kwargs(model)
    kwargs.pop("height", None), kwargs.pop("width", None)  # fixed 16x16, as for tiny_dit
    # FLUX guides by true CFG with the null prompt: `model.guidance_scale` is that scale (FluxPipeline's own
    # `guidance_scale` feeds a distilled guidance embedding, which this model does not have)
    scale = kwargs.pop("guidance_scale", 1.5)
    return digit_inputs(pipe, [label for label in labels for _ in range(model.num_images)], true_cfg_scale=scale, **kwargs)


def _tiny_flux_replica(seed: int = 0, **overrides):
    from .tiny_flux import ClassPrompts, assemble, build_tiny_flux_transformer

    torch.manual_seed(seed)
    transformer = build_tiny_flux_transformer(**{"zero_init": False, **overrides}).eval()
    return assemble(transformer, ClassPrompts(dim=transformer.config.joint_attention_dim, pooled_dim=transformer.config.pooled_projection_dim))


def _tiny_flux_transformer(**overrides):
    from .tiny_flux import build_tiny_flux_transformer

    return build_tiny_flux_transformer(**overrides)


def _tiny_flux_load(path, dtype):
    from .tiny_flux import TINY_FLUX_WEIGHTS, load_tiny_flux

    return load_tiny_flux(path or TINY_FLUX_WEIGHTS, torch_dtype=dtype)


def _digit_quality(images, inputs: dict) -> dict:
    """Digit accuracy, and with 100+ images the Fréchet distance to the held-out real digits."""
    from . import digits

    labels = inputs["class_labels"] if "class_labels" in inputs else inputs.class_labels  # tiny_dit | tiny_flux
    quality = {"accuracy": digits.accuracy(images[..., 0], labels)}
    if len(images) >= 100:  # fewer samples make the covariance estimate meaningless
        quality["frechet"] = digits.frechet_distance(images[..., 0], digits.load_split("test")[0])
    return quality


def _digit_rows(inputs: dict) -> list[str]:
    labels = inputs["class_labels"] if "class_labels" in inputs else inputs.class_labels
    return [f"digit {label}" for label in dict.fromkeys(labels)]  # unique, in order


_WEIGHTS = Path(__file__).parent / "weights"  # the embedded models' shipped weights
FAMILIES: dict[str, Family] = {
    f.name: f
    for f in (
        Family("flux", "FluxPipeline", replicas.build_flux, replicas.flux_transformer, _flux_inputs),
        Family("pixart_alpha", "PixArtAlphaPipeline", replicas.build_pixart, replicas.pixart_transformer, _pixart_inputs),
        Family(
            "tiny_dit",
            "TinyDiTPipeline",
            _tiny_dit_replica,
            _tiny_dit_transformer,
            _tiny_dit_inputs,
            _tiny_dit_load,
            _digit_quality,
            _digit_rows,
            embedded_weights=_WEIGHTS / "tiny_dit",
        ),
        Family(
            "tiny_flux",
            "FluxPipeline",
            _tiny_flux_replica,
            _tiny_flux_transformer,
            _tiny_flux_inputs,
            _tiny_flux_load,
            _digit_quality,
            _digit_rows,
            embedded_weights=_WEIGHTS / "tiny_flux",
        ),
    )
}


def _register_dit_families() -> None:
    """The DiT families of `dit_families` (SD3, Qwen-Image, FLUX.2, Sana, ...), each with its offline replica."""
    from functools import partial

    from . import dit_families

    for spec in dit_families.SPECS:
        if spec.name not in FAMILIES:
            FAMILIES[spec.name] = Family(
                spec.name,
                spec.pipeline_class,
                partial(dit_families.build_replica, spec),
                spec.transformer,
                partial(dit_families.inputs, spec),
                output=spec.output,
                transformers=spec.transformers,
            )


_register_dit_families()


def _register_modular_families() -> None:
    """Modular-only image families (FLUX.3): the runner drives their Modular Diffusers pipeline."""
    from functools import partial

    from .dit_families import modular

    for name, modular_class in modular.RUNNER_FAMILIES.items():
        FAMILIES[name] = Family(
            name,
            modular_class,
            partial(modular.build_runner_replica, modular_class),
            partial(modular.replica_transformer, modular_class),
            partial(modular.runner_inputs, modular_class),
        )


_register_modular_families()


def get_family(name: str) -> Family:
    if name not in FAMILIES:
        raise ValueError(f"Unknown `model.name={name}`. Known families: {', '.join(sorted(FAMILIES))}.")
    return FAMILIES[name]
