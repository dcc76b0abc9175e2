"""Motif-Video: its DDT decoder blocks sit at the end of `single_transformer_blocks`."""

from __future__ import annotations

from dataclasses import dataclass

from ..block_adapter import BlockAdapter


@dataclass(frozen=True)
class DecoderTailAdapter(BlockAdapter):
    """Motif-Video: the last `transformer.num_decoder_layers` single blocks are a DDT decoder that refines a fresh copy
    of the patch embeddings with the encoder's output as its context, so the streams change inside one list.
    ``"<list>:encoder"`` and ``"<list>:decoder"`` name the two parts as lists of their own, so the engine cuts a
    skipped span where the streams change (a checkpoint without decoder blocks gets an empty decoder part)."""

    def _list(self, transformer, attr):
        name, _, part = attr.partition(":")
        blocks = super()._list(transformer, name)
        if not part:
            return blocks
        cut = len(blocks) - transformer.num_decoder_layers
        return blocks[:cut] if part == "encoder" else blocks[cut:]
