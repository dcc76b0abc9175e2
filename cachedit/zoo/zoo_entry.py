"""The zoo's one record type: a `ZooEntry` is one ``model.name``, everything the runners need to build and call it.

Most entries are replica recipes (the tiny transformer, the pipeline's other components, the stand-in prompt
embeddings); `build_replica` and `inputs` follow the recipe. The few models whose replica or call is its own (FLUX.1,
PixArt-alpha, the embedded tiny models, FLUX.3's modular pipeline) pass `build` and `call_inputs` instead.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import diffusers
import torch

from .model_config import ModelConfig, ModelSource
from .calls import call_kwargs, prompt_of

__all__ = ["ZooEntry"]


@dataclass(frozen=True)
class ZooEntry:
    """Args:
    name (`str`): the ``model.name`` key.
    pipeline_class (`str`): the diffusers pipeline class a hub checkpoint of this model loads as.
    transformer (`Callable`): ``(**overrides) -> transformer`` of the replica (also built on the meta device to count
        blocks).
    components (`Callable`, *optional*): ``() -> dict`` of the pipeline's other modules (text encoders left as None).
    embeds (`Callable`, *optional*): ``(pipe, prompt, negative) -> dict`` of prompt embeddings for the replica's call.
    size (`int`): replica height and width in pixels.
    takes_size (`bool`): False where the call takes no height and width (VisualCloze sizes by its `resolution`).
    call (`dict`): fixed extra call arguments of the replica (e.g. resolution binning off).
    frames (`int`, *optional*): frames for video families (None: an image family).
    frames_key (`str`): the call argument taking the frame count (Sana-Video names it ``frames``).
    output (`str`): the attribute of the pipeline output holding the result (images, frames, audios).
    transformers (`tuple[str, ...]`): pipeline attributes built with `transformer` (Wan 2.2: two; Shap-E: ``prior``).
    setup (`dict`): pipeline attributes to set after construction (HiDream's fixed 1024 px sample area).
    randomize_zeros (`bool`): Kandinsky 5 zero-initialises its output layer, so a random replica's output would not
        depend on its blocks at all; this gives such weights seeded random values.
    steps (`Callable`, *optional*): ``(pipe, num_inference_steps)`` for a pipeline whose call takes no step count
        (RFD4-Proteina's is the length of its `recycle_depths` config): the count is set on the pipeline instead.
    build (`Callable`, *optional*): ``(seed, **transformer_overrides) -> pipeline``: a replica built its own way
        (instead of `transformer` + `components`).
    call_inputs (`Callable`, *optional*): ``(pipe, model_config) -> dict``: a call made its own way (instead of the
        recipe's `inputs`).
    load_embedded (`Callable`, *optional*): ``(path | None, dtype) -> pipeline`` for shipped weights.
    quality (`Callable`, *optional*): ``(images, inputs) -> dict`` of task metrics (e.g. digit accuracy).
    grid_rows (`Callable`, *optional*): ``(inputs) -> row labels`` for image grids; one row per label.
    embedded_weights (`Path`, *optional*): where `load_embedded` finds the shipped weights by default.
    """

    name: str
    pipeline_class: str
    transformer: Callable
    components: Callable[[], dict] | None = None
    embeds: Callable | None = None
    size: int = 64
    takes_size: bool = True
    call: dict = field(default_factory=dict)
    frames: int | None = None
    frames_key: str = "num_frames"
    output: str = "images"
    transformers: tuple[str, ...] = ("transformer",)
    setup: dict = field(default_factory=dict)
    randomize_zeros: bool = False
    steps: Callable | None = None
    build: Callable | None = None
    call_inputs: Callable[[object, ModelConfig], dict] | None = None
    load_embedded: Callable | None = None
    quality: Callable | None = None
    grid_rows: Callable | None = None
    embedded_weights: Path | None = None

    def __post_init__(self) -> None:
        # Each half of the recipe, or its own way: a record missing one would fail only when first built or called.
        if self.build is None and self.components is None:
            raise ValueError(f"ZooEntry `{self.name}`: give `components` (a replica recipe) or `build`.")
        if self.call_inputs is None and self.embeds is None:
            raise ValueError(f"ZooEntry `{self.name}`: give `embeds` (a replica recipe) or `call_inputs`.")

    def replica_transformer(self, **overrides) -> torch.nn.Module:
        return self.transformer(**overrides)

    def build_replica(self, seed: int = 0, **overrides):
        """The pipeline with seeded random weights; `overrides` change the transformer's config."""
        if self.build is not None:
            return self.build(seed, **overrides)
        torch.manual_seed(seed)
        transformers = {attr: self.transformer(**overrides).eval() for attr in self.transformers}
        if self.randomize_zeros:
            with torch.no_grad():
                for transformer in transformers.values():
                    for param in transformer.parameters():
                        if param.ndim > 1 and not param.any():
                            param.normal_(std=0.2)
        pipe = getattr(diffusers, self.pipeline_class)(**transformers, **self.components())
        for attr, value in self.setup.items():
            setattr(pipe, attr, value)
        return pipe

    def inputs(self, pipe, model: ModelConfig) -> dict:
        """The call for `model` (no generator): prompts for hub checkpoints, seeded prompt embeddings for replicas."""
        if self.call_inputs is not None:
            return self.call_inputs(pipe, model)
        kwargs = call_kwargs(model, self.size)  # numpy output: what the runner saves (tests ask for latents instead);
        # videos come back as (N, F, H, W, C) frames.
        if not self.takes_size:
            kwargs.pop("height", None), kwargs.pop("width", None)
        replica = model.source == ModelSource.replica
        if self.frames is not None:
            kwargs[self.frames_key] = self.frames if replica else None
            kwargs = {k: v for k, v in kwargs.items() if v is not None}
        if self.steps is not None:  # the call takes no step count: the replica sets it on the pipeline
            steps = kwargs.pop("num_inference_steps")
            if replica:  # a hub checkpoint keeps its released schedule
                self.steps(pipe, steps)
        if not replica:
            negative = {"negative_prompt": model.negative_prompt} if model.negative_prompt else {}
            return {**kwargs, "prompt": prompt_of(model), **negative}
        return {**kwargs, **self.embeds(pipe, prompt_of(model), model.negative_prompt or ""), **self.call}
