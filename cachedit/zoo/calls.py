"""What every family's pipeline call shares: step count, guidance, size and the prompt, from the model config."""

from __future__ import annotations

from .model_config import ModelConfig, ModelSource

DEFAULT_PROMPT = "a photo of a cat"


def call_kwargs(model: ModelConfig, replica_size: int | None = None) -> dict:
    """Step count, guidance and size; replicas default to a small size instead of the pipeline's 512-1024 px."""
    kwargs = {"num_inference_steps": model.num_inference_steps, "output_type": "np"}
    if model.guidance_scale is not None:
        kwargs["guidance_scale"] = model.guidance_scale
    default = replica_size if model.source == ModelSource.replica else None
    for key in ("height", "width"):
        value = getattr(model, key) if getattr(model, key) is not None else default
        if value is not None:
            kwargs[key] = value
    return kwargs


def prompt_of(model: ModelConfig) -> str:
    return model.prompt if model.prompt is not None else DEFAULT_PROMPT
