"""Forward patterns: which streams a transformer block takes and returns, and in what order.

A cache engine treats every block as a function of its *streams* (``hidden_states`` and, for dual-stream models,
``encoder_hidden_states``). A pattern says where those streams sit in the block's call and in its return value,
so the engine can read a block's input, replace its output, or pass its input through unchanged.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

import torch

HIDDEN = "hidden_states"
ENCODER = "encoder_hidden_states"


@dataclass(frozen=True)
class ForwardPattern:
    """How a block's streams come in and go out.

    Args:
        name (`str`): short name used in errors and reports.
        outputs (`tuple[str, ...]`): the streams the block returns, in return order. A single stream is returned
            as a bare tensor, several as a tuple. Every output stream must also be an input argument of the block.
    """

    name: str
    outputs: tuple[str, ...]

    def check(self, block: torch.nn.Module) -> None:
        """Raise if `block.forward` does not take every stream this pattern returns."""
        params = inspect.signature(block.forward).parameters
        missing = [s for s in self.outputs if s not in params]
        if missing:
            raise ValueError(
                f"{type(block).__name__}.forward{inspect.signature(block.forward)} does not take {missing}, so it "
                f"does not fit forward pattern `{self.name}` (returns {list(self.outputs)})."
            )

    def pack(self, streams: dict[str, torch.Tensor]):
        """Build a block's return value from its streams."""
        if len(self.outputs) == 1:
            return streams[self.outputs[0]]
        return tuple(streams[s] for s in self.outputs)

    def unpack(self, output) -> dict[str, torch.Tensor]:
        """Read the streams out of a block's return value."""
        if len(self.outputs) == 1:
            return {self.outputs[0]: output[0] if isinstance(output, tuple) else output}
        return dict(zip(self.outputs, output))


class StreamReader:
    """Reads a block's input streams from ``(args, kwargs)``; positions are resolved once per block."""

    def __init__(self, block: torch.nn.Module, streams: tuple[str, ...]):
        names = list(inspect.signature(block.forward).parameters)
        self._positions = {s: names.index(s) for s in streams}

    def __call__(self, args: tuple, kwargs: dict) -> dict[str, torch.Tensor]:
        return {s: kwargs[s] if s in kwargs else args[pos] for s, pos in self._positions.items()}


# Dual-stream blocks that return (encoder, hidden): FLUX (both block lists), HunyuanVideo, ...
ENCODER_HIDDEN_OUT = ForwardPattern("encoder_hidden_out", (ENCODER, HIDDEN))
# Dual-stream blocks that return (hidden, encoder): SD3, CogVideoX, ...
HIDDEN_ENCODER_OUT = ForwardPattern("hidden_encoder_out", (HIDDEN, ENCODER))
# Single-stream blocks (text, if any, enters through cross-attention): DiT, PixArt, Sana, ...
HIDDEN_OUT = ForwardPattern("hidden_out", (HIDDEN,))
