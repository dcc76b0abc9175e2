"""Offline replicas of the DiT pipeline families of diffusers: the real pipeline, transformer and VAE classes, built
from scaled-down configs with seeded random weights, and the call that drives each one without text encoders.

Each `Spec` says how to build one family's replica (tiny transformer: 10 cached blocks, so that the default DBCache
F8B0 leaves a middle, width 32-64; tiny VAE of the family's own class; the real scheduler class) and which prompt
embeddings stand in for its text encoders. The specs live by modality (`image`, `video`, `audio`); the families
become entries of `cachedit.zoo.entries.MODELS` under their `name`.
"""

from __future__ import annotations

import diffusers
import torch

from ..model_config import ModelConfig, ModelSource
from ..calls import call_kwargs, prompt_of
from . import audio, image, other, video
from ._common import Spec

SPECS: list[Spec] = [*image.SPECS, *video.SPECS, *audio.SPECS, *other.SPECS]


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
    kwargs = call_kwargs(model, spec.size)  # numpy output: what the runner saves (tests ask for latents instead);
    # videos come back as (N, F, H, W, C) frames.
    if not spec.takes_size:
        kwargs.pop("height", None), kwargs.pop("width", None)
    replica = model.source == ModelSource.replica
    if spec.frames is not None:
        kwargs[spec.frames_key] = spec.frames if replica else None
        kwargs = {k: v for k, v in kwargs.items() if v is not None}
    prompt = prompt_of(model)
    negative = model.negative_prompt or ""
    if spec.steps is not None:  # the call takes no step count: the replica sets it on the pipeline
        steps = kwargs.pop("num_inference_steps")
        if replica:  # a hub checkpoint keeps its released schedule
            spec.steps(pipe, steps)
    if spec.name == "dit":
        kwargs.pop("height"), kwargs.pop("width")
        labels = model.class_labels if model.class_labels is not None else [1]
        return {**kwargs, "class_labels": [label for label in labels for _ in range(model.num_images)]}
    if not replica:
        return {**kwargs, "prompt": prompt, **({"negative_prompt": model.negative_prompt} if model.negative_prompt else {})}
    return {**kwargs, **spec.embeds(pipe, prompt, negative), **spec.call}

