"""What a transformer class's calls mean beyond their inputs, as data the hooks read instead of knowing families.

``CALL_FACTS`` maps a transformer class name to its `CallFacts`, the way diffusers' `TransformerBlockRegistry` holds
per-class facts; `call_facts_for` walks the class hierarchy, and a class without an entry gets `GENERIC`, the
lifecycle's family-free behaviour. What stays generic (every transformer gets it, so none needs a fact): a timestep
that turns back starts a new sampling loop (`cachedit.hooks.lifecycle`); a call outside any ``cache_context`` is
branch ``default``, the k-th call at one timestep ``default#k``; a second pass over the blocks within one call is a
step of its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch

__all__ = ["CALL_FACTS", "GENERIC", "CallFacts", "KwargSays", "call_facts_for"]


@dataclass(frozen=True)
class KwargSays:
    """A call's keyword argument `name` equals `value`; with `item`, the item `item` of that keyword's dict does."""

    name: str
    value: object
    item: str | None = None

    def holds(self, kwargs: Mapping) -> bool:
        found = kwargs.get(self.name)
        if self.item is not None:
            found = found.get(self.item) if isinstance(found, Mapping) else None
        return found == self.value


@dataclass(frozen=True)
class CallFacts:
    """Facts about every call of one transformer class.

    Args:
        stores_kv (`tuple[KwargSays, ...]`): the call stores every block's keys and values for later calls when any
            of these holds. Such a call runs uncached and is no step of any branch: a skipped block would store
            nothing, and the calls that read the keys and values count as usual.
    """

    stores_kv: tuple[KwargSays, ...] = ()

    def stores_kv_cache(self, kwargs: Mapping) -> bool:
        return any(says.holds(kwargs) for says in self.stores_kv)


GENERIC = CallFacts()

_EXTRACT = CallFacts(stores_kv=(KwargSays("kv_cache_mode", "extract"),))

CALL_FACTS: dict[str, CallFacts] = {
    # FLUX.2 Klein KV: with a reference image, each call's first step extracts the reference K/V.
    "Flux2Transformer2DModel": _EXTRACT,
    # Qwen-Image 2.1's default KV cache: step 0 runs the whole sequence and stores the prefix K/V.
    "QwenImage21Transformer2DModel": _EXTRACT,
    # Wan-Animate 2: one reference pass per segment stores every block's K/V.
    "WanAnimate2Transformer3DModel": _EXTRACT,
    # AnyFlow-FAR re-encodes each finished chunk to write every block's KV cache.
    "AnyFlowFARTransformer3DModel": CallFacts(stores_kv=(KwargSays("kv_cache_flag", True, item="is_cache_step"),)),
}


def call_facts_for(transformer: torch.nn.Module) -> CallFacts:
    """The facts of `transformer`'s class (or its nearest registered base class); `GENERIC` without any."""
    for cls in type(transformer).__mro__:
        if cls.__name__ in CALL_FACTS:
            return CALL_FACTS[cls.__name__]
    return GENERIC
