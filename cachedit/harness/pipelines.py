"""Loading pipelines for a `ModelConfig`: hub checkpoints, local copies, offline replicas, shipped weights.

`meta_transformers` builds a model's transformers from their configs on the meta device (no weights), and
`check_model` answers "can this run at all, and how many blocks does it have?" from them, so configuration mistakes
surface before minutes of loading.
"""

from __future__ import annotations

import json
from pathlib import Path

import diffusers
import torch
from accelerate import init_empty_weights

from ..adapters import adapters_for_class
from ..zoo.model_config import ModelConfig, ModelSource
from ..zoo.entries import ZooEntry, get_entry

__all__ = [
    "ModelNotReachableError", "resolve_device", "resolve_dtype", "meta_transformers", "runnable_transformers",
    "block_counts", "check_model", "load_pipeline",
]

_LOADED: dict[tuple, object] = {}  # sweeps run every job in one process: load each pipeline once


class ModelNotReachableError(RuntimeError):
    """The checkpoint is neither in a local directory, nor in the local hub cache, nor reachable online."""


def resolve_device(model: ModelConfig) -> torch.device:
    if model.device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(model.device)


def resolve_dtype(model: ModelConfig) -> torch.dtype:
    if model.torch_dtype is None:
        return torch.bfloat16 if resolve_device(model).type == "cuda" else torch.float32
    return getattr(torch, model.torch_dtype.value)


def _hub_location(model: ModelConfig, entry: ZooEntry) -> str:
    """A local directory holding the checkpoint, or raise with the ways to run without the hub."""
    if model.path is not None:
        if not any((Path(model.path) / index).is_file() for index in ("model_index.json", "modular_model_index.json")):
            raise FileNotFoundError(
                f"`model.path={model.path}` is not a saved pipeline (no model_index.json). Save one with "
                f"`{entry.pipeline_class}.from_pretrained(...).save_pretrained(DIR)`."
            )
        return model.path
    if model.repo_id is None:
        raise ValueError(f"`model.repo_id` or `model.path` is needed for `model.source=hub` ({model.name}).")
    import huggingface_hub

    try:
        return huggingface_hub.snapshot_download(model.repo_id, local_files_only=True)
    except Exception:
        pass
    try:
        huggingface_hub.model_info(model.repo_id, timeout=10)
    except Exception as error:
        raise ModelNotReachableError(
            f"Cannot reach `{model.repo_id}` ({type(error).__name__}: {error}), and it is not in the local hub "
            f"cache. Offline, use the replica (`model.source=replica`: the same diffusers classes, scaled down, "
            f"random weights) or a saved copy (`model.path=/local/dir`)."
        ) from error
    return model.repo_id  # reachable: from_pretrained downloads it


def _transformer_config(location: str, attr: str) -> tuple[type, dict]:
    modular_index = Path(location) / "modular_model_index.json"
    if modular_index.is_file():  # a Modular Diffusers pipeline: each component names where it is stored
        _, class_name, spec = json.loads(modular_index.read_text())[attr]
        cls = getattr(diffusers, class_name)
        return cls, cls.load_config(spec.get("pretrained_model_name_or_path") or location, subfolder=spec.get("subfolder"))
    index = json.loads((Path(location) / "model_index.json").read_text()) if Path(location).is_dir() else None
    if index is None:
        index = diffusers.DiffusionPipeline.load_config(location)
    _, class_name = index[attr]
    cls = getattr(diffusers, class_name)
    return cls, cls.load_config(location, subfolder=attr)


def meta_transformers(model: ModelConfig) -> dict[str, torch.nn.Module]:
    """The transformers that the adapters of `model`'s pipeline class name, by pipeline attribute, built from configs
    on the meta device (no weights). A checkpoint without an optional one (Wan 2.1's empty `transformer_2`) has no
    entry; raises if the checkpoint is unreachable."""
    entry = get_entry(model.name)
    wanted = [adapter.transformer for adapter in adapters_for_class(entry.pipeline_class)]
    if model.source == ModelSource.replica:
        with init_empty_weights():
            return {attr: entry.replica_transformer(**model.replica) for attr in entry.transformers if attr in wanted}
    if model.source == ModelSource.embedded:
        if entry.load_embedded is None:
            raise ValueError(f"`model.source=embedded`: the `{model.name}` model ships no weights; use hub or replica.")
        location = model.path or str(entry.embedded_weights)
        _check_saved_pipeline(location, entry.transformers, "model.path" if model.path else "the shipped weights")
    else:
        location = _hub_location(model, entry)
    transformers = {}
    # Every transformer an adapter names (`transformer_2`, Ideogram 4's `unconditional_transformer`, Shap-E's `prior`).
    for attr in wanted:
        try:
            cls, config = _transformer_config(location, attr)
        except (KeyError, OSError):
            continue
        with init_empty_weights():
            transformers[attr] = cls.from_config(config)
    return transformers


def runnable_transformers(model: ModelConfig) -> dict[str, torch.nn.Module]:
    """Whether `model` can run here at all (its device, its sizes, a reachable checkpoint) before any weight loads;
    returns its transformers built on the meta device (`meta_transformers`)."""
    _check_device(model)
    if model.name == "tiny_dit" and (model.height, model.width) != (None, None):  # its pipeline has no size argument
        raise ValueError("`model.height`/`model.width`: tiny_dit always generates 16x16 digits; remove the override.")
    return meta_transformers(model)


def block_counts(transformers: dict[str, torch.nn.Module], pipeline_class: str) -> dict[str, int]:
    """Blocks per transformer, as the pipeline class's adapters lay them out."""
    blocks = {}
    for adapter in adapters_for_class(pipeline_class):
        if adapter.transformer in transformers:
            blocks[adapter.transformer] = len(adapter.blocks(transformers[adapter.transformer]))
        elif not adapter.optional:
            raise ValueError(f"{pipeline_class} has no transformer module at `{adapter.transformer}`.")
    return blocks


def check_model(model: ModelConfig) -> dict[str, int]:
    """Block count per transformer, read from configs only (meta device, no weights); raises if unreachable."""
    return block_counts(runnable_transformers(model), get_entry(model.name).pipeline_class)


def _check_device(model: ModelConfig) -> None:
    device = resolve_device(model)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"`model.device={model.device}`: CUDA is not available on this machine; use cpu or auto.")


def _check_saved_pipeline(location: str, transformers, key: str) -> None:
    """A ``save_pretrained`` directory with its index and every transformer's config, else what is missing where."""
    path = Path(location)
    wanted = [path / "model_index.json", *(path / attr / "config.json" for attr in transformers)]
    missing = [str(p) for p in wanted if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"`{key}` ({path}) is not a saved pipeline: missing {', '.join(missing)}.")


def _from_pretrained(cls: type, location: str, dtype: torch.dtype):
    if issubclass(cls, diffusers.ModularPipeline):  # FLUX.3: the pipeline definition first, then its components
        pipe = cls.from_pretrained(location)
        pipe.load_components(torch_dtype=dtype)
        return pipe
    return cls.from_pretrained(location, torch_dtype=dtype)


def load_pipeline(model: ModelConfig):
    """The pipeline for `model`, on its device and dtype; loaded once per process and configuration."""
    key = (model.name, model.source, model.path, model.repo_id, repr(sorted(model.replica.items())), model.torch_dtype, model.device)
    if key not in _LOADED:
        entry = get_entry(model.name)
        dtype = resolve_dtype(model)
        if model.source == ModelSource.replica:
            pipe = entry.build_replica(0, **model.replica)  # fixed weights: seeds vary the noise only
        elif model.source == ModelSource.embedded:
            pipe = entry.load_embedded(model.path, dtype)
        else:
            pipe = _from_pretrained(getattr(diffusers, entry.pipeline_class), _hub_location(model, entry), dtype)
        pipe = pipe.to(resolve_device(model))
        _LOADED[key] = pipe if pipe.dtype == dtype else pipe.to(dtype=dtype)  # Shap-E's denoiser is its `prior`
    return _LOADED[key]
