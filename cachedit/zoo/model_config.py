"""The model schema: what to load from the zoo and how to call it (the ``model`` group, ``conf/model/*.yaml``).

A zoo schema, not a core one: ``enable_cache`` never reads it; the harness loads pipelines from it and the zoo's
entries build each call's inputs from it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from omegaconf import MISSING

from ..config_types import check_types
from ..configs import require

__all__ = ["DEVICE_PATTERN", "ModelConfig", "ModelSource", "TorchDtype"]

DEVICE_PATTERN = re.compile(r"auto|cpu|mps|(cuda|xpu)(:\d+)?")  # what torch.device accepts and cachedit runs on


class ModelSource(str, Enum):
    hub = "hub"  # from_pretrained(repo_id), or model.path when set
    replica = "replica"  # the same diffusers classes, scaled down, seeded random weights
    embedded = "embedded"  # the weights shipped in this repository


class TorchDtype(str, Enum):
    """A string, not a ``torch.dtype`` (OmegaConf rejects those); converted in :mod:`cachedit.harness.pipelines`."""

    float32 = "float32"
    float16 = "float16"
    bfloat16 = "bfloat16"


@dataclass
class ModelConfig:
    """What to load and how to call it.

    Args:
        name (`str`): zoo model name, e.g. `flux`, `pixart_alpha`, `tiny_dit` (see ``cachedit.zoo.entries.MODELS``).
        repo_id (`str`, *optional*): the real checkpoint on the hub.
        source (`ModelSource`, defaults to `hub`): `hub`, `replica` or `embedded`.
        path (`str`, *optional*): a local ``save_pretrained`` directory; loaded instead of `repo_id`.
        replica (`dict`, defaults to `{}`): overrides of the replica's transformer config (e.g. `num_layers`).
        torch_dtype (`TorchDtype`, *optional*): `float32`, `float16` or `bfloat16`; by default bfloat16 on CUDA and
            float32 on CPU (where bfloat16 kernels are slow).
        device (`str`, defaults to `"auto"`): `auto`, `cpu`, `cuda`, `cuda:1`, ...
        num_images (`int`, defaults to `1`): images per prompt, or per class label.
    """

    name: str = MISSING
    repo_id: str | None = None
    source: ModelSource = ModelSource.hub
    path: str | None = None
    torch_dtype: TorchDtype | None = None  # None: bfloat16 on CUDA, float32 on CPU
    device: str = "auto"  # auto: cuda when available, else cpu
    num_inference_steps: int = 28
    guidance_scale: float | None = None
    height: int | None = None
    width: int | None = None
    prompt: str | None = None
    negative_prompt: str | None = None
    class_labels: list[int] | None = None
    num_images: int = 1
    replica: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_types(self, "model")
        require(self.num_inference_steps >= 1, f"`model.num_inference_steps` must be >= 1, got {self.num_inference_steps}.")
        require(self.num_images >= 1, f"`model.num_images` must be >= 1, got {self.num_images}.")
        require(
            DEVICE_PATTERN.fullmatch(self.device) is not None,
            f"`model.device` must be auto, cpu, mps, cuda[:N] or xpu[:N], got `{self.device}`.",
        )
        for side in ("height", "width"):
            value = getattr(self, side)
            require(value is None or value > 0, f"`model.{side}` must be positive, got {value}.")
