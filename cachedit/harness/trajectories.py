"""Record an uncached run's trajectory: per transformer call, its timestep and what the Forecast Cache would forecast
there: the residual of every span it would skip (output minus input of each middle segment, per stream it
forecasts), or with `target=output` the transformer's output.

One recorded call is all the calibrator needs to score *any* schedule offline (`cachedit.harness.schedule_fit`):
the forecast of a skipped step from the residuals of earlier computed steps can be compared with the residual the
uncached run really had there. The segments are the span engine's own (`resolve_plan` on a Forecast config with
`Fn=0, Bn=0`), so what is recorded is exactly what a cached run would cache.

Calls are grouped into branches by their order within a step (true CFG: the conditional and the unconditional call
of each step share a timestep), steps by a change of timestep.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from ..adapters.patterns import StreamReader
from ..caches import ForecastCacheConfig
from ..caches.forecast import ForecastTarget
from ..hooks import output_tensors
from ..plan import resolve_plan
from .pareto import BlockCounter

__all__ = ["Trajectory", "record_trajectory"]


@dataclass
class Trajectory:
    """One uncached call, as the calibrator sees it.

    Args:
        timesteps (`list[float]`): the timestep of each step (the forecast's axis).
        features (`list[list[torch.Tensor]]`): per branch, per step, what the cache forecasts (every segment's
            residual of every forecast stream, or the transformer's output), flattened into one float32 vector (on CPU).
        images (`np.ndarray`): the call's output, the reference a verified schedule is scored against.
        blocks (`int`): block executions the call ran.
    """

    timesteps: list[float] = field(default_factory=list)
    features: list[list[torch.Tensor]] = field(default_factory=list)
    images: np.ndarray | None = None
    blocks: int = 0


def _timestep(args, kwargs) -> float:
    value = kwargs.get("timestep", args[1] if len(args) > 1 else None)
    if value is None:
        raise ValueError("The transformer was called without a `timestep`: the calibrator forecasts along timesteps.")
    return float(torch.as_tensor(value).flatten()[0])


def record_trajectory(pipe, call: dict, seed: int, output: str = "images",
                      target: ForecastTarget = ForecastTarget.output) -> Trajectory:
    """Run `pipe(**call)` uncached with seed `seed`, recording what `Trajectory` holds (the forecast `target`'s)."""
    plan = resolve_plan(pipe, ForecastCacheConfig(Fn=0, Bn=0))
    calls: list[tuple[float, list[torch.Tensor]]] = []  # per transformer call: timestep, recorded pieces
    record = _output_handles if target == ForecastTarget.output else _residual_handles
    handles = record(plan, calls)
    counter = BlockCounter(pipe.transformer)
    try:
        result = pipe(**call, generator=torch.Generator().manual_seed(seed))
    finally:
        counter.remove()
        for handle in handles:
            if handle is not None:
                handle.remove()
    trajectory = Trajectory(images=np.asarray(getattr(result, output), dtype=np.float32), blocks=counter.count)
    position = 0
    for timestep, pieces in calls:
        if not trajectory.timesteps or timestep != trajectory.timesteps[-1]:
            trajectory.timesteps.append(timestep)
            position = 0
        while len(trajectory.features) <= position:
            trajectory.features.append([])
        trajectory.features[position].append(torch.cat(pieces))
        position += 1
    steps = len(trajectory.timesteps)
    short = [b for b, r in enumerate(trajectory.features) if len(r) != steps]
    if short:
        raise ValueError(f"Branches {short} of the recorded call ran on fewer than its {steps} steps: the calibrator "
                         f"needs every branch at every step.")
    return trajectory


def _output_handles(plan, calls: list) -> list:
    """Hooks that keep each transformer call's timestep and output (`target=output`)."""
    def end_call(module, args, kwargs, out):
        calls.append((_timestep(args, kwargs), [t.detach().float().flatten().cpu() for t in output_tensors(out)]))

    transformers = {id(stack.transformer): stack.transformer for stack in plan.stacks}  # Wan 2.2 has two
    return [transformer.register_forward_hook(end_call, with_kwargs=True) for transformer in transformers.values()]


def _residual_handles(plan, calls: list) -> list:
    """Hooks that keep each transformer call's timestep and the residual of every middle segment."""
    handles = []
    inputs: dict[tuple[int, int], dict] = {}

    def start_call(module, args, kwargs):
        calls.append((_timestep(args, kwargs), []))

    for number, stack in enumerate(plan.stacks):
        handles.append(stack.transformer.register_forward_pre_hook(start_call, with_kwargs=True)
                       if number == 0 or stack.transformer is not plan.stacks[number - 1].transformer else None)
        for segment in stack.engine.segments:
            first, pattern_first = stack.blocks[segment.start]
            last, pattern_last = stack.blocks[segment[-1]]
            reader = StreamReader(first, pattern_first)
            key = (number, segment.start)

            def remember(module, args, kwargs, key=key, reader=reader):
                inputs[key] = {s: t.detach() for s, t in reader(args, kwargs).items()}

            def residual(module, args, kwargs, out, key=key, pattern=pattern_last):
                streams = pattern.unpack(out)
                pieces = calls[-1][1]
                for stream in sorted(streams):
                    if stream in inputs[key]:
                        pieces.append((streams[stream] - inputs[key][stream]).detach().float().flatten().cpu())

            handles.append(first.register_forward_pre_hook(remember, with_kwargs=True))
            handles.append(last.register_forward_hook(residual, with_kwargs=True))
    return handles
