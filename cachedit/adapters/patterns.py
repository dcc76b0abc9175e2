"""Forward patterns: which streams a transformer block takes and returns, and in what order.

A cache engine treats every block as a function of its *streams* (``hidden_states`` and, for dual-stream models,
``encoder_hidden_states``). A pattern says where those streams sit in the block's call and in its return value,
so the engine can read a block's input, replace its output, or pass its input through unchanged.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

import torch

__all__ = [
    "HIDDEN", "ENCODER", "AUDIO", "ForwardPattern", "STREAM_ALIASES", "stream_param", "StreamReader",
    "ENCODER_HIDDEN_OUT", "HIDDEN_ENCODER_OUT", "HIDDEN_OUT", "HIDDEN_AUDIO_OUT", "VIS_AUD_OUT", "UND_GEN_OUT",
    "VALUES_OUT", "PATTERNS"
]

HIDDEN = "hidden_states"
ENCODER = "encoder_hidden_states"
AUDIO = "audio_hidden_states"  # LTX-2's audio latents, carried and cached like the text stream


@dataclass(frozen=True)
class ForwardPattern:
    """How a block's streams come in and go out.

    Args:
        name (`str`): short name used in errors and reports.
        outputs (`tuple[str, ...]`): the streams the block returns, in return order. A single stream is returned
            as a bare tensor, several as a tuple. Every output stream must also be an input argument of the block,
            under its own name or one of its aliases (`STREAM_ALIASES`: ``x``/``img`` for ``hidden_states``,
            ``txt``/``context`` for ``encoder_hidden_states``). Streams beyond these two (LTX-2's
            ``audio_hidden_states``) are carried and cached like the text stream.
        params (`tuple[tuple[str, str], ...]`, *optional*): ``(stream, parameter)`` pairs for blocks whose
            parameters no alias covers (Cosmos 3 Omni's ``gen_seq`` is its ``hidden_states``).
    """

    name: str
    outputs: tuple[str, ...]
    params: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if HIDDEN not in self.outputs:
            raise ValueError(f"Forward pattern `{self.name}` must return `{HIDDEN}` (the change signal is read there).")
        unknown = [stream for stream, _ in self.params if stream not in self.outputs]
        if unknown:
            raise ValueError(f"Forward pattern `{self.name}` names parameters for {unknown}, which it does not return.")

    def param(self, stream: str, params) -> str | None:
        """The parameter of a block's ``forward`` (names `params`) that carries `stream`, or None."""
        named = dict(self.params).get(stream)
        if named is not None:
            return named if named in params else None
        return stream_param(stream, params)

    def check(self, block: torch.nn.Module) -> None:
        """Raise if `block.forward` does not take every stream this pattern returns."""
        params = inspect.signature(block.forward).parameters
        missing = [s for s in self.outputs if self.param(s, params) is None]
        if missing:
            expected = [dict(self.params).get(s) or STREAM_ALIASES.get(s, (s,)) for s in missing]
            raise ValueError(
                f"{type(block).__name__}.forward{inspect.signature(block.forward)} does not take {missing} (as "
                f"{expected}), so it does not fit forward pattern `{self.name}` (returns {list(self.outputs)})."
            )

    def pack(self, streams: dict[str, torch.Tensor]):
        """Build a block's return value from its streams (a stream the block did not return stays None)."""
        if len(self.outputs) == 1:
            return streams[self.outputs[0]]
        return tuple(streams.get(s) for s in self.outputs)

    def unpack(self, output) -> dict[str, torch.Tensor]:
        """Read the streams out of a block's return value. A None stream is left out: the last SD3 block returns
        ``(None, hidden_states)`` because nothing reads the text stream after it."""
        returned = len(output) if isinstance(output, (tuple, list)) else 1
        if returned != len(self.outputs) and not (len(self.outputs) == 1 and returned == 1):
            # A block whose source `enable_cache` could not read (BlockAdapter.check_returns): caught at its first
            # computed call, before any of its output is cached, instead of as a shape error further on.
            raise ValueError(
                f"A block returned {returned} value(s), but its forward pattern `{self.name}` returns "
                f"{list(self.outputs)}; name the pattern that fits its block list (cachedit.patterns)."
            )
        if len(self.outputs) == 1:
            return {self.outputs[0]: output[0] if isinstance(output, tuple) else output}
        return {s: value for s, value in zip(self.outputs, output) if value is not None}


# The parameter names a block may give a stream, in order of preference (diffusers blocks mostly use the stream
# name itself; ERNIE-Image, Z-Image, Stable Audio 3 call the latent stream `x`, PRX and JoyImage `img`/`txt`).
STREAM_ALIASES = {
    HIDDEN: (HIDDEN, "x", "img", "latents", "hidden", "visual_embed"),
    ENCODER: (ENCODER, "txt", "context", "encoder_states"),
}


def stream_param(stream: str, params) -> str | None:
    """The parameter of a block's ``forward`` (names `params`) that carries `stream`, or None."""
    return next((name for name in STREAM_ALIASES.get(stream, (stream,)) if name in params), None)


class StreamReader:
    """Reads a block's input streams from ``(args, kwargs)``; positions are resolved once per block."""

    def __init__(self, block: torch.nn.Module, pattern: ForwardPattern):
        names = list(inspect.signature(block.forward).parameters)
        self._params = {s: (pattern.param(s, names), names.index(pattern.param(s, names))) for s in pattern.outputs}

    def __call__(self, args: tuple, kwargs: dict) -> dict[str, torch.Tensor]:
        return {s: kwargs[p] if p in kwargs else args[pos] for s, (p, pos) in self._params.items()}


# Dual-stream blocks that return (encoder, hidden): FLUX (both block lists), HunyuanVideo, ...
ENCODER_HIDDEN_OUT = ForwardPattern("encoder_hidden_out", (ENCODER, HIDDEN))
# Dual-stream blocks that return (hidden, encoder): SD3, CogVideoX, ...
HIDDEN_ENCODER_OUT = ForwardPattern("hidden_encoder_out", (HIDDEN, ENCODER))
# Single-stream blocks (text, if any, enters through cross-attention): DiT, PixArt, Sana, ...
HIDDEN_OUT = ForwardPattern("hidden_out", (HIDDEN,))
# Audio-video blocks that return (video, audio); text enters through cross-attention: LTX-2.
HIDDEN_AUDIO_OUT = ForwardPattern("hidden_audio_out", (HIDDEN, AUDIO))
# Kandinsky 6's fused video/audio blocks: the same streams as `vis` and `aud` (None when the call makes no audio).
VIS_AUD_OUT = ForwardPattern("vis_aud_out", (HIDDEN, AUDIO), params=((HIDDEN, "vis"), (AUDIO, "aud")))
# Mixture-of-transformers layers that return (understanding, generation): Cosmos 3 Omni's `und_seq` is the text
# stream, `gen_seq` the latent (vision, sound, action) stream.
UND_GEN_OUT = ForwardPattern("und_gen_out", (ENCODER, HIDDEN), params=((HIDDEN, "gen_seq"), (ENCODER, "und_seq")))
# RFD4-Proteina's trunk layers take and return the token stream as `values`; the pair stream they read (`pairs`) is
# updated between layers by the transformer, never returned by a layer, so it is an input like the condition.
VALUES_OUT = ForwardPattern("values_out", (HIDDEN,), params=((HIDDEN, "values"),))

PATTERNS = {p.name: p for p in (
    ENCODER_HIDDEN_OUT, HIDDEN_ENCODER_OUT, HIDDEN_OUT, HIDDEN_AUDIO_OUT, VIS_AUD_OUT, UND_GEN_OUT, VALUES_OUT,
)}
