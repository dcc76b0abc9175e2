"""The model zoo's one table: per ``model.name``, one `ZooEntry` (the pipeline class it runs, how to build its offline
replica and how to call it). Adding a model is one entry (here, or a family recipe in `dit_families`) plus its
``conf/model/<name>.yaml``.

``model.name`` in the Hydra config selects an entry of `MODELS`; everything about *which blocks to cache* lives in the
adapter registry (keyed by pipeline class, `cachedit.adapters.registry`), not here. A registry family is proven by
the entries (`models_of`) and modular replicas (`dit_families.modular.modular_classes`, tests/test_modular.py) that
run one of its pipeline classes; `UNPROVEN` says why a pipeline class has none.
"""

from __future__ import annotations

from collections.abc import Collection
from functools import partial
from pathlib import Path

import torch

from .model_config import ModelConfig, ModelSource
from . import dit_families, replicas
from .calls import call_kwargs, prompt_of
from .dit_families import modular
from .zoo_entry import ZooEntry

__all__ = [
    "ZooEntry", "MODELS", "UNPROVEN", "models_of", "get_entry"
]


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


def _modular_entry(name: str, modular_class: str) -> ZooEntry:
    """A modular-only image model (FLUX.3): the runner drives its Modular Diffusers pipeline."""
    return ZooEntry(name, modular_class, partial(modular.replica_transformer, modular_class),
                    build=partial(modular.build_runner_replica, modular_class),
                    call_inputs=partial(modular.runner_inputs, modular_class))


_WEIGHTS = Path(__file__).parent / "weights"  # the embedded models' shipped weights
MODELS: dict[str, ZooEntry] = {
    entry.name: entry
    for entry in (
        ZooEntry("flux", "FluxPipeline", replicas.flux_transformer, build=replicas.build_flux,
                 call_inputs=_flux_inputs),
        ZooEntry("pixart_alpha", "PixArtAlphaPipeline", replicas.pixart_transformer, build=replicas.build_pixart,
                 call_inputs=_pixart_inputs),
        ZooEntry("tiny_dit", "TinyDiTPipeline", _tiny_dit_transformer, build=_tiny_dit_replica,
                 call_inputs=_tiny_dit_inputs, load_embedded=_tiny_dit_load, quality=_digit_quality,
                 grid_rows=_digit_rows, embedded_weights=_WEIGHTS / "tiny_dit"),
        ZooEntry("tiny_flux", "FluxPipeline", _tiny_flux_transformer, build=_tiny_flux_replica,
                 call_inputs=_tiny_flux_inputs, load_embedded=_tiny_flux_load, quality=_digit_quality,
                 grid_rows=_digit_rows, embedded_weights=_WEIGHTS / "tiny_flux"),
        *dit_families.ENTRIES,
        _modular_entry("flux3", "Flux3ModularPipeline"),
    )
}

# Registry pipeline classes that no offline replica runs, and why: tests/test_families.py checks that every registry
# family has a replica or a reason here, and `python -m runners.families` prints it.
UNPROVEN: dict[str, str] = {
    "OmniGenPipeline": "needs torchvision: OmniGenPipeline.__init__ builds OmniGenMultiModalProcessor (torchvision "
                       "transforms), which diffusers imports only with torchvision installed, so construction fails "
                       "(NameError); PyPI's torchvision 0.28 for torch 2.13 is a CUDA build that does not import with "
                       "the CPU torch here",
}


def models_of(pipeline_classes: Collection[str]) -> list[str]:
    """The ``model.name`` of every entry whose pipeline runs one of `pipeline_classes` (what proves their family)."""
    return [name for name, entry in MODELS.items() if entry.pipeline_class in pipeline_classes]


def get_entry(name: str) -> ZooEntry:
    if name not in MODELS:
        raise ValueError(f"Unknown `model.name={name}`. Known models: {', '.join(sorted(MODELS))}.")
    return MODELS[name]
