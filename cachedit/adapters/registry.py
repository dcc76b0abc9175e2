"""Which blocks to cache for each known diffusers pipeline, keyed by pipeline class name."""

from __future__ import annotations

from .block_adapter import BlockAdapter
from .patterns import ENCODER_HIDDEN_OUT, HIDDEN_OUT

_FLUX = (
    BlockAdapter(
        block_lists=(("transformer_blocks", ENCODER_HIDDEN_OUT), ("single_transformer_blocks", ENCODER_HIDDEN_OUT))
    ),
)
_SINGLE_STREAM = (BlockAdapter(block_lists=(("transformer_blocks", HIDDEN_OUT),)),)

ADAPTERS: dict[str, tuple[BlockAdapter, ...]] = {
    "FluxPipeline": _FLUX,
    "FluxImg2ImgPipeline": _FLUX,
    "FluxInpaintPipeline": _FLUX,
    "PixArtAlphaPipeline": _SINGLE_STREAM,
    "PixArtSigmaPipeline": _SINGLE_STREAM,
    "DiTPipeline": _SINGLE_STREAM,
    "TinyDiTPipeline": _SINGLE_STREAM,
}


def supported_pipelines() -> list[str]:
    """Pipeline class names that `enable_cache` adapts without a BlockAdapter."""
    return sorted(ADAPTERS)


def adapters_for(pipe) -> tuple[BlockAdapter, ...]:
    """The registered adapters for `pipe`'s class (or its nearest registered base class)."""
    for cls in type(pipe).__mro__:
        if cls.__name__ in ADAPTERS:
            return ADAPTERS[cls.__name__]
    raise ValueError(
        f"{type(pipe).__name__} is not a supported pipeline. Supported: {', '.join(supported_pipelines())}. "
        "For any other pipeline, describe its blocks: "
        "`cachedit.enable_cache(pipe, config, adapters=[cachedit.BlockAdapter(block_lists=(('transformer_blocks', "
        "cachedit.patterns.HIDDEN_OUT),))])`."
    )
