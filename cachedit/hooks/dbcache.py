"""DBCache (Fn/Bn) on a transformer's block stack; FBCache is its F1B0 case. Definitions: DESIGN.md §3.

Per transformer call (one denoising step of one guidance branch):

- blocks ``[0, Fn)`` always compute; their residual (output - input of the span) is compared with the residual of
  the last step that computed the middle, which decides whether the middle is skipped;
- blocks ``[Fn, L - Bn)`` (the middle) either compute, refreshing the cached middle residual, or are skipped: the
  first ones pass their input through and the last one returns ``input + cached residual``;
- blocks ``[L - Bn, L)`` always compute (or, outside ``Bn_compute_blocks_ids``, reuse their own residual while the
  change stays below ``non_compute_blocks_diff_threshold``).
"""

from __future__ import annotations

import torch

from ..adapters.patterns import HIDDEN, ForwardPattern, StreamReader
from ..configs import DBCacheConfig
from ..stats import CacheStats
from ._diffusers import BaseState, BranchStates

Streams = dict[str, torch.Tensor]


@torch.compiler.disable
def relative_l1(current: torch.Tensor, reference: torch.Tensor) -> float:
    """``mean|current - reference| / mean|reference|``, in float32."""
    current, reference = current.float(), reference.float()
    return ((current - reference).abs().mean() / reference.abs().mean().clamp_min(1e-12)).item()


def _add(a: Streams, b: Streams) -> Streams:
    return {s: a[s] + b[s] for s in b}


def _sub(a: Streams, b: Streams) -> Streams:
    return {s: a[s] - b[s] for s in a}


class DBCacheState(BaseState):
    """Everything one guidance branch remembers between its steps; `reset()` restores what `__init__` set."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.step = -1
        self.signature: tuple | None = None  # (shape, dtype, device) of the transformer input
        self.skip = False  # this step skips the middle
        self.diff: float | None = None
        self.cached_steps = 0
        self.continuous_cached_steps = 0
        self.span_input: Streams | None = None
        self.head_residual: torch.Tensor | None = None  # first-Fn residual at the last computed step
        self.middle_input: Streams | None = None
        self.middle_residual: Streams | None = None
        self.tail_residuals: dict[int, Streams] = {}

    def invalidate(self) -> None:
        """Drop cached tensors (a shape or dtype change): the next step computes everything."""
        self.head_residual = None
        self.middle_residual = None
        self.tail_residuals = {}


class DBCacheEngine:
    """The DBCache decision and bookkeeping for one transformer; hooks call `begin_step` and `run_block`."""

    def __init__(
        self,
        config: DBCacheConfig,
        blocks: list[tuple[torch.nn.Module, ForwardPattern]],
        stats: CacheStats,
        name: str = "transformer",
    ) -> None:
        config.check_block_count(len(blocks), f"`{name}`")
        self.config = config
        self.stats = stats
        self.name = name
        self.patterns = [pattern for _, pattern in blocks]
        self.readers = [StreamReader(block, pattern.outputs) for block, pattern in blocks]
        self.middle = range(config.Fn, len(blocks) - config.Bn)
        tail = range(len(blocks) - config.Bn, len(blocks))
        always = config.Bn_compute_blocks_ids
        self.optional_tail = set() if always is None else {tail[j] for j in range(config.Bn) if j not in always}
        self.states = BranchStates(DBCacheState)

    # ---------------------------------------------------------------- lifecycle

    def reset(self) -> None:
        self.states.reset()

    def begin_step(self, hidden_states: torch.Tensor) -> None:
        """Called before each transformer forward: one step of the current branch begins."""
        state = self.states.get_state()
        state.step += 1
        state.skip = False
        signature = (tuple(hidden_states.shape), hidden_states.dtype, hidden_states.device)
        if state.signature is not None and signature != state.signature:
            state.invalidate()  # recompute, never broadcast a residual of another shape
        state.signature = signature

    # ---------------------------------------------------------------- per block

    def run_block(self, index: int, forward, args: tuple, kwargs: dict):
        state = self.states.get_state()
        pattern = self.patterns[index]
        inputs = self.readers[index](args, kwargs)
        if index == 0:
            state.span_input = inputs

        if state.skip and index in self.middle:
            self.stats.record_block(skipped=True)
            last = index == self.middle[-1]
            return pattern.pack(_add(inputs, state.middle_residual) if last else inputs)
        if state.skip and index in self.optional_tail and self._reuse_tail(state, index):
            self.stats.record_block(skipped=True)
            return pattern.pack(_add(inputs, state.tail_residuals[index]))

        output = forward(*args, **kwargs)
        self.stats.record_block(skipped=False)
        outputs = pattern.unpack(output)
        if index == self.middle[0]:
            state.middle_input = inputs
        if index == self.middle[-1]:
            state.middle_residual = _sub(outputs, state.middle_input)
        if index in self.optional_tail:
            state.tail_residuals[index] = _sub(outputs, inputs)
        if index == self.config.Fn - 1:
            self._decide(state, outputs[HIDDEN] - state.span_input[HIDDEN])
        return output

    # ---------------------------------------------------------------- decisions

    @torch.compiler.disable
    def _decide(self, state: DBCacheState, head_residual: torch.Tensor) -> None:
        reference = state.head_residual
        comparable = reference is not None and reference.shape == head_residual.shape
        state.diff = relative_l1(head_residual, reference) if comparable else None
        state.skip = self._may_skip(state)
        if state.skip:
            state.cached_steps += 1
            state.continuous_cached_steps += 1
        else:
            state.head_residual = head_residual
            state.continuous_cached_steps = 0
        branch = f"{self.name}/{self.states.branch}"
        self.stats.record_step(branch, state.step, computed=not state.skip, diff=state.diff)

    def _may_skip(self, state: DBCacheState) -> bool:
        c = self.config
        return (
            state.diff is not None
            and state.middle_residual is not None
            and state.step >= c.max_warmup_steps
            and (c.max_cached_steps < 0 or state.cached_steps < c.max_cached_steps)
            and (c.max_continuous_cached_steps < 0 or state.continuous_cached_steps < c.max_continuous_cached_steps)
            and state.diff < c.residual_diff_threshold
        )

    def _reuse_tail(self, state: DBCacheState, index: int) -> bool:
        return index in state.tail_residuals and state.diff <= self.config.non_compute_blocks_diff_threshold
