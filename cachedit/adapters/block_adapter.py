"""BlockAdapter: where a pipeline's cacheable blocks live, and how each block list is called."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .patterns import ForwardPattern


@dataclass(frozen=True)
class BlockAdapter:
    """One transformer of a pipeline and its block lists, treated as one stack in the order given.

    Args:
        block_lists (`tuple[tuple[str, ForwardPattern], ...]`):
            ``(attribute, pattern)`` per block list, e.g. FLUX:
            ``(("transformer_blocks", ENCODER_HIDDEN_OUT), ("single_transformer_blocks", ENCODER_HIDDEN_OUT))``.
        transformer (`str`, defaults to `"transformer"`): the pipeline attribute holding the transformer.
    """

    block_lists: tuple[tuple[str, ForwardPattern], ...]
    transformer: str = "transformer"

    def find_transformer(self, pipe) -> torch.nn.Module:
        module = getattr(pipe, self.transformer, None)
        if not isinstance(module, torch.nn.Module):
            raise ValueError(f"{type(pipe).__name__} has no transformer module at `{self.transformer}`.")
        return module

    def blocks(self, transformer: torch.nn.Module) -> list[tuple[torch.nn.Module, ForwardPattern]]:
        """The flattened block stack, each block with its pattern (checked against its signature)."""
        stack = []
        for attr, pattern in self.block_lists:
            block_list = getattr(transformer, attr, None)
            if not isinstance(block_list, torch.nn.ModuleList):
                raise ValueError(
                    f"{type(transformer).__name__} has no block list `{attr}` (a torch.nn.ModuleList)."
                )
            for block in block_list:
                pattern.check(block)
                stack.append((block, pattern))
        return stack
