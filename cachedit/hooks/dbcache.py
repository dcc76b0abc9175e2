"""DBCache (Fn/Bn) on a transformer's block stack; FBCache is its F1B0 case. Definitions: DESIGN.md §3.

Per transformer call (one denoising step of one guidance branch):

- blocks ``[0, Fn)`` always compute; their residual (output - input of the span) is compared with the residual of
  the last step that computed the middle, which decides whether the middle is skipped;
- blocks ``[Fn, L - Bn)`` (the middle) either compute, refreshing the cached middle residual, or are skipped: the
  first ones pass their input through and the last one returns ``input + cached residual`` (or, with TaylorSeer,
  the forecast of the residual or of the output). The middle is cut into segments at block-list boundaries, each
  with its own residual, because transformers may transform the streams between lists (FLUX.2 and Chroma
  concatenate text and image tokens there): a residual never spans such a transformation;
- blocks ``[L - Bn, L)`` always compute (or, outside ``Bn_compute_blocks_ids``, reuse their own residual while the
  change stays below ``non_compute_blocks_diff_threshold``).
"""

from __future__ import annotations

import torch

from ..adapters.patterns import ENCODER, HIDDEN
from ..configs import DBCacheConfig, TaylorSeerCacheType, TaylorSeerConfig
from ..distributed import reduce_metric
from ._diffusers import BaseState
from .engine import StackEngine
from .step_mask import COMPUTE, REUSE
from .taylorseer import TaylorSeerState

Streams = dict[str, torch.Tensor]


@torch.compiler.disable
def relative_l1(current: torch.Tensor, reference: torch.Tensor, group=None) -> float:
    """``mean|current - reference| / mean|reference|``, in float32, of the whole sequence when `group` shards it."""
    current, reference = current.float(), reference.float()
    return reduce_metric((current - reference).abs().sum(), reference.abs().sum(), group)


def add_streams(a: Streams, b: Streams) -> Streams:
    return {s: a[s] + b[s] for s in b}


def sub_streams(a: Streams, b: Streams) -> Streams:
    return {s: a[s] - b[s] for s in a}


class DBCacheState(BaseState):
    """Everything one guidance branch remembers between its steps; `reset()` restores what `__init__` set."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.step = -1
        self.position = 0.0  # where the step lies on the forecast's axis: the step index, or a timestep
        self.stats_key = ""  # "<transformer>/<branch>", set by the engine at each step
        self.signature: tuple | None = None  # (shape, dtype, device) of the transformer input
        self.skip = False  # this step skips the middle
        self.diff: float | None = None
        self.cached_steps = 0
        self.continuous_cached_steps = 0
        self.span_inputs: dict[int, torch.Tensor] = {}  # hidden input at block 0 and at list starts in the head
        self.head_residual: torch.Tensor | None = None  # first-Fn residual at the last computed step
        self.segment_inputs: dict[int, Streams] = {}  # per middle segment, this step (cleared at each step)
        self.segment_residuals: dict[int, Streams] = {}
        self.tail_residuals: dict[int, Streams] = {}
        self.forecasters: dict[tuple[int, str], TaylorSeerState] = {}  # (segment, stream)

    def invalidate(self) -> None:
        """Drop cached tensors (a shape or dtype change): the next step computes everything."""
        self.head_residual = None
        self.segment_residuals = {}
        self.tail_residuals = {}
        self.forecasters = {}


class DBCacheEngine(StackEngine):
    """The DBCache decision and bookkeeping for one transformer."""

    state_cls = DBCacheState

    def __init__(self, config: DBCacheConfig, blocks, stats, name="transformer", list_starts=(0,), *, taylorseer: TaylorSeerConfig | None = None, **kwargs) -> None:
        super().__init__(config, blocks, stats, name, list_starts, **kwargs)
        self.middle = range(config.Fn, self.num_blocks - config.Bn)
        cuts = sorted({self.middle.start, self.middle.stop, *(s for s in list_starts if s in self.middle)})
        self.segments = [range(a, b) for a, b in zip(cuts, cuts[1:])]
        self.segment_starts = {seg.start: i for i, seg in enumerate(self.segments)}
        self.segment_ends = {seg[-1]: i for i, seg in enumerate(self.segments)}
        self.head_starts = [s for s in list_starts if s < config.Fn] or [0]
        tail = range(self.num_blocks - config.Bn, self.num_blocks)
        always = config.Bn_compute_blocks_ids
        self.optional_tail = set() if always is None else {tail[j] for j in range(config.Bn) if j not in always}
        self.taylorseer = taylorseer if taylorseer is not None and taylorseer.order > 0 else None

    def begin_step(self, hidden_states: torch.Tensor, timestep=None) -> None:
        super().begin_step(hidden_states, timestep)
        state = self.states.get_state()
        state.segment_inputs = {}
        state.position = float(state.step)

    # ---------------------------------------------------------------- per block

    def run_block(self, index: int, forward, args: tuple, kwargs: dict):
        state = self.states.get_state()
        pattern = self.patterns[index]
        inputs = self.readers[index](args, kwargs)
        if index in self.head_starts:
            state.span_inputs[index] = inputs[HIDDEN]

        if state.skip and index in self.middle:
            self.stats.record_block(state.stats_key, skipped=True)
            if index in self.segment_starts:
                state.segment_inputs[self.segment_starts[index]] = inputs
            segment = self.segment_ends.get(index)
            # The estimate starts from the segment's input, not from what reaches its last block: the transformer may
            # add to the stream between blocks (ConsisID's face cross-attention, Wan VACE's hints), and the cached
            # residual already holds those additions.
            if segment is None:
                return pattern.pack(inputs)
            # A block the transformer left out this call (Wan-Animate 2's unconditional pass skips one) leaves no
            # segment input: start from what reaches the segment's end.
            return pattern.pack(self._estimate(state, segment, state.segment_inputs.get(segment, inputs)))
        if state.skip and index in self.optional_tail and self._reuse_tail(state, index):
            self.stats.record_block(state.stats_key, skipped=True)
            return pattern.pack(add_streams(inputs, state.tail_residuals[index]))

        output = forward(*args, **kwargs)
        self.stats.record_block(state.stats_key, skipped=False)
        outputs = pattern.unpack(output)
        if index in self.segment_starts:
            state.segment_inputs[self.segment_starts[index]] = inputs
        if index in self.segment_ends:
            segment = self.segment_ends[index]
            state.segment_residuals[segment] = sub_streams(outputs, state.segment_inputs.get(segment, inputs))
            self._update_forecast(state, segment, outputs)
        if index in self.optional_tail:
            state.tail_residuals[index] = sub_streams(outputs, inputs)
        if index == self.config.Fn - 1:
            self._decide(state, self._head_residual(state, outputs[HIDDEN]))
        return output

    def _head_residual(self, state: DBCacheState, head_output: torch.Tensor) -> torch.Tensor:
        """Output of block Fn-1 minus the stack input, or minus its own list's input where a transformation
        between lists changed the shape."""
        start = state.span_inputs[0]
        if start.shape != head_output.shape:
            start = state.span_inputs[self.head_starts[-1]]
        return head_output - start

    # ---------------------------------------------------------------- estimate of a skipped middle

    def _forecast_streams(self, residual: Streams) -> list[str]:
        if self.taylorseer is None:
            return []
        return [s for s in residual if s == HIDDEN or (s == ENCODER and self.taylorseer.encoder)]

    def _update_forecast(self, state: DBCacheState, segment: int, outputs: Streams) -> None:
        residual = state.segment_residuals[segment]
        by_residual = self.taylorseer is not None and self.taylorseer.cache_type == TaylorSeerCacheType.residual
        for stream in self._forecast_streams(residual):
            key = (segment, stream)
            if key not in state.forecasters or state.step < self.taylorseer.differences_from_step:
                state.forecasters[key] = TaylorSeerState(self.taylorseer.order)  # an early step: its value only
            state.forecasters[key].update(state.position, residual[stream] if by_residual else outputs[stream])

    def _estimate(self, state: DBCacheState, segment: int, inputs: Streams) -> Streams:
        """A skipped segment's output: its input + cached residual, or TaylorSeer's forecast."""
        residual = state.segment_residuals[segment]
        estimate = add_streams(inputs, residual)
        by_residual = self.taylorseer is not None and self.taylorseer.cache_type == TaylorSeerCacheType.residual
        for stream in self._forecast_streams(residual):
            forecast = state.forecasters[(segment, stream)].predict(state.position)
            estimate[stream] = inputs[stream] + forecast if by_residual else forecast
        if ENCODER in estimate and not getattr(self.config, "cache_encoder", True):  # DBPrune has no such knob
            estimate[ENCODER] = inputs[ENCODER]  # the text tokens pass the span as they entered it
        return estimate

    # ---------------------------------------------------------------- decisions

    @torch.compiler.disable
    def _decide(self, state: DBCacheState, head_residual: torch.Tensor) -> None:
        reference = state.head_residual
        comparable = reference is not None and reference.shape == head_residual.shape
        state.diff = relative_l1(head_residual, reference, self.group) if comparable else None
        has_cache = comparable and len(state.segment_residuals) == len(self.segments)
        state.skip = self._skips(state, has_cache)
        if state.skip:
            state.cached_steps += 1
            state.continuous_cached_steps += 1
        else:
            state.head_residual = head_residual
            state.continuous_cached_steps = 0
        self.stats.record_step(state.stats_key, state.step, computed=not state.skip, diff=state.diff)

    def _skips(self, state: DBCacheState, has_cache: bool) -> bool:
        """The step's decision: the step mask and the leading guidance branch first, then the policy's own rule."""
        rule = self.step_rule(state.step)
        if rule == COMPUTE or not has_cache:
            skip = False
        elif self.follows_leader:
            skip = self.leader_decision(state.step)
        else:
            skip = rule == REUSE or self._may_skip(state)
        self.share_decision(state.step, skip)
        return skip

    def _may_skip(self, state: DBCacheState) -> bool:
        c = self.config
        return (
            state.step >= c.max_warmup_steps
            and (c.max_cached_steps < 0 or state.cached_steps < c.max_cached_steps)
            and (c.max_continuous_cached_steps < 0 or state.continuous_cached_steps < c.max_continuous_cached_steps)
            and state.diff < c.residual_diff_threshold
        )

    def _reuse_tail(self, state: DBCacheState, index: int) -> bool:
        # A skipping step always has a diff: skipping needs a comparable reference.
        return index in state.tail_residuals and state.diff <= self.config.non_compute_blocks_diff_threshold
