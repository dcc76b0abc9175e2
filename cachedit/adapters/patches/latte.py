"""Latte: each spatial block is cached together with the temporal block that follows it.

`LatteTransformer3DModel.forward` interleaves its two block lists, ``s0, t0, s1, t1, ...``, with a reshape from the
spatial layout ``(batch * frames, tokens, dim)`` to the temporal layout ``(batch * tokens, frames, dim)`` and back
around every temporal block. A stack of both lists in list order would let a skipped span's residual cover blocks of
the other list that still compute (or cross a layout change). So while the cache is on, `PairedLatteAdapter` runs the
forward with ``s1..`` replaced by `_Pair` modules (``s_i``, the reshape, ``t_i``, the reshape back: the operations the
forward itself would run) and ``t1..`` by pass-throughs; the cached stack is ``s0, pair_1, ..., pair_n-1``, each
mapping the spatial layout to itself. Block 0 stays as it is: the forward adds the temporal position embedding between
``s0`` and ``t0``, and ``t0`` always computes (DBCache's ``Fn >= 1`` keeps ``s0`` in the computed head).

The swap is the layout's `forward_patch` (`_Pairs`): laying the stack out builds the pairs and attaches nothing;
`enable_cache` attaches the patch with the engine's hooks and `disable_cache` removes it with them. Outside a call the
transformer's modules are never changed.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..block_adapter import BlockAdapter, StackLayout


class _Call:
    """What the pairs need from the current transformer call."""

    num_frames = 1
    temporal = True


class _Pair(torch.nn.Module):
    """Spatial block i, then temporal block i in the temporal layout, as LatteTransformer3DModel runs them."""

    def __init__(self, spatial: torch.nn.Module, temporal: torch.nn.Module, call: _Call) -> None:
        super().__init__()
        self.spatial, self.temporal, self.call = spatial, temporal, call

    def forward(self, hidden_states, attention_mask=None, encoder_hidden_states=None, encoder_attention_mask=None,
                timestep=None, cross_attention_kwargs=None, class_labels=None):
        hidden_states = self.spatial(hidden_states, attention_mask, encoder_hidden_states, encoder_attention_mask,
                                     timestep, cross_attention_kwargs, class_labels)
        if not self.call.temporal:
            return hidden_states
        frames, (rows, tokens, dim) = self.call.num_frames, hidden_states.shape
        batch = rows // frames
        # The forward's timestep_temp: each sample's timestep embedding repeated for every token.
        timestep_temp = timestep.view(batch, frames, -1)[:, 0].repeat_interleave(tokens, dim=0)
        hidden_states = hidden_states.reshape(batch, -1, tokens, dim).permute(0, 2, 1, 3).reshape(-1, frames, dim)
        hidden_states = self.temporal(hidden_states, None, None, None, timestep_temp, None, None)
        hidden_states = hidden_states.reshape(batch, -1, frames, dim).permute(0, 2, 1, 3)
        return hidden_states.reshape(-1, tokens, dim)


class _PassThrough(torch.nn.Module):
    """Temporal block i >= 1 during a cached call: its pair already ran it."""

    def forward(self, hidden_states, *args, **kwargs):
        return hidden_states


class _Pairs:
    """The forward patch: runs the transformer's forward with ``s1..`` swapped for the pairs and ``t1..`` for
    pass-throughs."""

    def __init__(self, transformer: torch.nn.Module) -> None:
        self.call = _Call()
        spatial, temporal = transformer.transformer_blocks, transformer.temporal_transformer_blocks
        pairs = [_Pair(s, t, self.call) for s, t in zip(spatial[1:], temporal[1:])]
        self.spatial = torch.nn.ModuleList([spatial[0], *pairs])
        self.temporal = torch.nn.ModuleList([temporal[0], *(_PassThrough() for _ in pairs)])

    def __call__(self, module: torch.nn.Module, forward, args: tuple, kwargs: dict):
        hidden_states = kwargs["hidden_states"] if "hidden_states" in kwargs else args[0]
        self.call.num_frames = hidden_states.shape[2]
        self.call.temporal = kwargs.get("enable_temporal_attentions", args[4] if len(args) > 4 else True)
        blocks = module._modules
        saved = blocks["transformer_blocks"], blocks["temporal_transformer_blocks"]
        blocks["transformer_blocks"], blocks["temporal_transformer_blocks"] = self.spatial, self.temporal
        try:
            return forward(*args, **kwargs)
        finally:
            blocks["transformer_blocks"], blocks["temporal_transformer_blocks"] = saved


@dataclass(frozen=True)
class PairedLatteAdapter(BlockAdapter):
    """Caches a LatteTransformer3DModel's ``s0, pair_1, ..., pair_n-1`` stack (``block_lists`` names the spatial list
    for the registry listing and auto-discovery checks)."""

    def layout(self, transformer: torch.nn.Module) -> list[StackLayout]:
        """The paired stack and the forward patch that runs it; nothing is attached here."""
        (stack,) = super().layout(transformer)  # checks the spatial blocks against the pattern
        pairs = _Pairs(transformer)
        pattern = stack.blocks[0][1]
        return [StackLayout(stack.name, [(block, pattern) for block in pairs.spatial], (0,), stack.knobs, pairs)]
