"""The span engine: compute a stack's first `Fn` and last `Bn` blocks every step, and let a `Policy` decide per step
whether the middle is skipped (the span techniques of `cachedit/caches/`: DBCache, FBCache, Forecast Cache;
definitions: DESIGN.md §3). It knows no technique's knobs: what is not span geometry (`Fn`, `Bn`) it asks the policy.

Per transformer call (one denoising step of one guidance branch):

- blocks ``[0, Fn)`` always compute; where the policy measures change, their residual (output - input of the span)
  is compared with the residual of the last step that computed the middle, and the policy decides from that change;
- blocks ``[Fn, L - Bn)`` (the middle) either compute, refreshing the cached middle residual, or are skipped: the
  first ones pass their input through and the last one returns ``input + cached residual`` (or, with a calibrator,
  the forecast of the residual or of the output). The middle is cut into segments at block-list boundaries, each
  with its own residual, because transformers may transform the streams between lists (FLUX.2 and Chroma
  concatenate text and image tokens there): a residual never spans such a transformation;
- blocks ``[L - Bn, L)`` always compute, except those the policy calls optional (`Policy.optional_tail`), which on
  a skipped step reuse their own residual where the policy says so for the measured change (`Policy.tail_reuses`).

With ``Fn=0`` (the forecast's default) the policy decides as the step begins, and a skipped step runs no block; where
the policy forecasts the output, its transformer call does not run at all (`SpanEngine.skipped_call`).
"""

from __future__ import annotations

import torch

from ..adapters.patterns import ENCODER, HIDDEN
from ..configs import ForecastAxis, TaylorSeerCacheType, TaylorSeerConfig
from ..distributed import reduce_metric
from .drift import drift_corrected, time_falls_to
from .engine import StackEngine
from .protocol import COMPUTE, REUSE, Calibrator, EngineState, Policy, StepContext
from .taylorseer import TaylorSeerCalibrator

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


def output_tensors(output) -> list[torch.Tensor]:
    """Every tensor a transformer call returns, in order: the output itself, or those in its tuples, lists and
    diffusers output classes (video and audio; one latent per image)."""
    if isinstance(output, torch.Tensor):
        return [output]
    items = output.values() if isinstance(output, dict) else output if isinstance(output, (tuple, list)) else ()
    return [tensor for item in items for tensor in output_tensors(item)]


def with_output_tensors(output, tensors):
    """`output` with `tensors` (an iterator, in `output_tensors`' order) in place of its tensors, of the same types."""
    if isinstance(output, torch.Tensor):
        return next(tensors)
    if isinstance(output, dict):  # diffusers' output classes (`BaseOutput`) are ordered dicts of their fields
        return type(output)(**{key: with_output_tensors(value, tensors) for key, value in output.items()})
    if isinstance(output, (tuple, list)):
        return type(output)([with_output_tensors(item, tensors) for item in output])
    return output


_NO_FALLING_TIME = (
    "the timesteps this pipeline passes do not fall toward 0 (none, or rising ones such as Lumina2's 1 - sigma); "
    "the correction models a sampler time proportional to the timestep, so it left the outputs as computed. "
    "Set `cache.drift_correction=false` to say so"
)


class SpanState(EngineState):
    """Everything one guidance branch remembers between its steps."""

    def reset(self) -> None:
        self.position = 0.0  # where the step lies on the calibrator's axis: the step index, or a timestep
        self.skip = False  # this step skips the middle
        self.diff: float | None = None
        self.cached_steps = 0
        self.continuous_cached_steps = 0
        self.span_inputs: dict[int, torch.Tensor] = {}  # hidden input at block 0 and at list starts in the head
        self.head_residual: torch.Tensor | None = None  # first-Fn residual at the last computed step
        self.segment_inputs: dict[int, Streams] = {}  # per middle segment, this step (cleared at each step)
        self.segment_residuals: dict[int, Streams] = {}
        self.tail_residuals: dict[int, Streams] = {}
        self.calibrators: dict[tuple[int, str], Calibrator] = {}  # (segment, stream)
        self.output_forecasts: list[TaylorSeerCalibrator] = []  # per tensor of the transformer's output
        self.output_template = None  # the last output a call really returned: the form a skipped call's forecasts take
        self.step_blocks = 0  # the blocks this step reached (a skipped call charges as many as the last one that ran)
        self.call_blocks = 0
        self.forecast_positions: list[float] = []  # of the steps forecast since the last computed one (drift)

    def invalidate(self) -> None:
        """Drop cached tensors (a shape or dtype change): the next step computes everything."""
        self.head_residual = None
        self.segment_residuals = {}
        self.tail_residuals = {}
        self.calibrators = {}
        self.output_forecasts = []
        self.output_template = None


class SpanEngine(StackEngine):
    """One stack's span cache: the bookkeeping of computed and skipped spans; `policy` decides, `forecast`
    (TaylorSeer settings, *optional*) makes the calibrators that estimate what is skipped.

    `list_starts` are the stack indices where each block list begins: the middle is cut there into segments."""

    def __init__(self, config, blocks, stats, name="transformer", list_starts=(0,), *, policy: Policy,
                 forecast: TaylorSeerConfig | None = None, **kwargs) -> None:
        super().__init__(config, blocks, stats, name, **kwargs)
        self.policy = policy
        self.middle = range(config.Fn, self.num_blocks - config.Bn)
        cuts = sorted({self.middle.start, self.middle.stop, *(s for s in list_starts if s in self.middle)})
        self.segments = [range(a, b) for a, b in zip(cuts, cuts[1:])]
        self.segment_starts = {seg.start: i for i, seg in enumerate(self.segments)}
        self.segment_ends = {seg[-1]: i for i, seg in enumerate(self.segments)}
        self.head_starts = [s for s in list_starts if s < config.Fn] or [0]
        tail = range(self.num_blocks - config.Bn, self.num_blocks)
        self.optional_tail = {tail[j] for j in policy.optional_tail()}
        self.forecast = forecast if forecast is not None and forecast.order > 0 else None
        # the calibrators forecast the segment's residual (added to its input), or else its output
        residual = TaylorSeerCacheType.residual
        self.forecasts_residual = self.forecast is not None and self.forecast.cache_type == residual
        # an error estimate needs one more divided difference than the forecast uses
        self.estimates_error = self.forecast is not None and policy.estimates_forecast_error

    def new_state(self) -> SpanState:
        return SpanState()

    @property
    def needs_step_count(self) -> bool:
        return super().needs_step_count or self.policy.needs_step_count

    def begin_call(self, num_steps: int | None) -> None:
        super().begin_call(num_steps)
        self.policy.begin_call(num_steps)
        reason = self.policy.cannot_skip(num_steps)
        if reason is not None:
            self.stats.note_cannot_skip(self.name, reason)

    def begin_step(self, step: StepContext) -> None:
        state = step.state
        state.skip = False
        state.segment_inputs = {}
        state.step_blocks = 0
        by_timestep = self.policy.forecast_axis == ForecastAxis.timestep and step.timestep is not None
        state.position = step.timestep if by_timestep else float(step.index)
        if self.config.Fn == 0:
            self._decide(step, None)

    # ---------------------------------------------------------------- per block

    def run_block(self, step: StepContext, index: int, forward, args: tuple, kwargs: dict):
        state = step.state
        state.step_blocks += 1
        pattern = self.patterns[index]
        inputs = self.readers[index](args, kwargs)
        if index in self.head_starts:
            state.span_inputs[index] = inputs[HIDDEN]

        if state.skip and index in self.middle:
            self.stats.record_block(step.stats_key, skipped=True)
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
            return pattern.pack(self._estimate(step, segment, state.segment_inputs.get(segment, inputs)))
        if state.skip and index in self.optional_tail and self._reuse_tail(state, index):
            self.stats.record_block(step.stats_key, skipped=True)
            return pattern.pack(add_streams(inputs, state.tail_residuals[index]))

        output = forward(*args, **kwargs)
        self.stats.record_block(step.stats_key, skipped=False)
        outputs = pattern.unpack(output)
        if index in self.segment_starts:
            state.segment_inputs[self.segment_starts[index]] = inputs
        if index in self.segment_ends:
            segment = self.segment_ends[index]
            state.segment_residuals[segment] = sub_streams(outputs, state.segment_inputs.get(segment, inputs))
            self._update_forecast(step, segment, outputs)
        if index in self.optional_tail:
            state.tail_residuals[index] = sub_streams(outputs, inputs)
        if index == self.config.Fn - 1:
            self._decide(step, self._head_residual(state, outputs[HIDDEN]) if self.policy.measures_change else None)
        return output

    def _head_residual(self, state: SpanState, head_output: torch.Tensor) -> torch.Tensor:
        """Output of block Fn-1 minus the stack input, or minus its own list's input where a transformation
        between lists changed the shape."""
        start = state.span_inputs[0]
        if start.shape != head_output.shape:
            start = state.span_inputs[self.head_starts[-1]]
        return head_output - start

    # ---------------------------------------------------------------- estimate of a skipped middle

    def _forecast_streams(self, residual: Streams) -> list[str]:
        if self.forecast is None or self.policy.forecasts_output:  # the output's forecast replaces what they give
            return []
        return [s for s in residual if s == HIDDEN or (s == ENCODER and self.forecast.encoder)]

    def _update_forecast(self, step: StepContext, segment: int, outputs: Streams) -> None:
        state = step.state
        residual = state.segment_residuals[segment]
        for stream in self._forecast_streams(residual):
            key = (segment, stream)
            if key not in state.calibrators:
                state.calibrators[key] = TaylorSeerCalibrator(self.forecast.order + self.estimates_error)
            feature = residual[stream] if self.forecasts_residual else outputs[stream]
            state.calibrators[key].update(state.position, feature, step.index < self.forecast.differences_from_step)

    def _estimate(self, step: StepContext, segment: int, inputs: Streams) -> Streams:
        """A skipped segment's output: its input + cached residual, or the calibrator's forecast."""
        state = step.state
        residual = state.segment_residuals[segment]
        estimate = add_streams(inputs, residual)
        for stream in self._forecast_streams(residual):
            forecast = state.calibrators[(segment, stream)].predict(state.position, self.forecast.order)
            estimate[stream] = inputs[stream] + forecast if self.forecasts_residual else forecast
        if ENCODER in estimate and not self.policy.moves_encoder:
            estimate[ENCODER] = inputs[ENCODER]  # the text tokens pass the span as they entered it
        return estimate

    # ---------------------------------------------------------------- the transformer's output

    def skipped_call(self, step: StepContext):
        """With `Policy.forecasts_output` a skipped step needs nothing of the transformer: its call does not run,
        and `end_step` puts the forecasts in the form of the last output a call returned. Its blocks count as
        skipped, as many as the last call that ran reached."""
        state = step.state
        if not (self.policy.forecasts_output and state.skip) or state.output_template is None:
            return None
        self.stats.record_block(step.stats_key, skipped=True, count=state.call_blocks)
        return state.output_template

    def end_step(self, step: StepContext, output):
        """With `Policy.forecasts_output`: a computed step's output tensors feed their forecasts, a skipped step
        returns the forecasts (on the policy's axis; steps before `differences_from_step` enter as values only)."""
        if not self.policy.forecasts_output:
            return output
        state, forecast = step.state, self.policy.forecast
        if output is not state.output_template:  # the call ran
            state.output_template, state.call_blocks = output, state.step_blocks
        if state.skip:
            state.forecast_positions.append(state.position)
            predicted = (c.predict(state.position, forecast.order) for c in state.output_forecasts)
            return with_output_tensors(output, predicted)
        tensors = output_tensors(output)
        if not tensors:
            raise TypeError(f"`target=output` forecasts the tensors a transformer returns, but this one returns "
                            f"{type(output).__name__} without any. Use `target=residual` for it.")
        if len(tensors) != len(state.output_forecasts):
            state.output_forecasts = [TaylorSeerCalibrator(forecast.order + self.estimates_error) for _ in tensors]
            state.forecast_positions = []
        value_only = step.index < forecast.differences_from_step
        anchors = tensors
        if self.policy.corrects_drift and state.forecast_positions and not value_only:
            if not time_falls_to(state.position, state.output_forecasts[0]):
                self.stats.note_drift_not_corrected(self.name, _NO_FALLING_TIME)
            else:
                pairs = [drift_corrected(c, forecast.order, tensor, state.position, state.forecast_positions)
                         for c, tensor in zip(state.output_forecasts, tensors)]
                output = with_output_tensors(output, iter([sampled for sampled, _ in pairs]))
                anchors = [anchor for _, anchor in pairs]
                self.stats.record_drift_corrected(step.stats_key)
        state.forecast_positions = []
        for calibrator, anchor in zip(state.output_forecasts, anchors):
            calibrator.update(state.position, anchor, value_only)
        return output

    # ---------------------------------------------------------------- decisions

    @torch.compiler.disable
    def _decide(self, step: StepContext, head_residual: torch.Tensor | None) -> None:
        state = step.state
        has_cache = len(state.segment_residuals) == len(self.segments)
        state.diff = None
        if self.estimates_error:
            state.diff = self._forecast_error(state)
        if self.policy.measures_change:
            reference = state.head_residual
            comparable = reference is not None and reference.shape == head_residual.shape
            state.diff = relative_l1(head_residual, reference, self.group) if comparable else None
            has_cache = has_cache and comparable
        state.skip = self._skips(step, has_cache)
        if state.skip:
            state.cached_steps += 1
            state.continuous_cached_steps += 1
        else:
            if self.policy.measures_change:
                state.head_residual = head_residual
            state.continuous_cached_steps = 0
        self.policy.record(step, state.skip)
        self.stats.record_step(step.stats_key, step.index, computed=not state.skip, diff=state.diff)
        if not state.cached_steps and step.num_steps is not None and step.index == step.num_steps - 1:
            reason = self.policy.skipped_none(step)
            if reason is not None:
                self.stats.note_cannot_skip(self.name, reason)

    def _forecast_error(self, state: SpanState) -> float | None:
        """The largest estimated relative forecast error over the segments' streams at this step; None until every
        one can estimate (or before any step computed)."""
        calibrators = state.output_forecasts if self.policy.forecasts_output else state.calibrators.values()
        estimates = [c.error_estimate(state.position, self.forecast.order) for c in calibrators]
        if not estimates or None in estimates:
            return None
        return max(estimates)

    def _skips(self, step: StepContext, has_cache: bool) -> bool:
        """The step's decision: the step rule and the leading guidance branch first, then the policy."""
        rule = self.step_rule.rule(step.index)
        if rule == COMPUTE or not has_cache:
            skip = False
        elif self.follows_leader(step):
            skip = self.leader_decision(step)
        else:
            skip = rule == REUSE or self.policy.decide(step, step.state.diff)
        self.share_decision(step, skip)
        return skip

    def _reuse_tail(self, state: SpanState, index: int) -> bool:
        # A skipping step always has a diff: skipping needs a comparable reference.
        return index in state.tail_residuals and self.policy.tail_reuses(state.diff)
