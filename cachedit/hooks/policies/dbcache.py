"""DBCache (Fn/Bn) and FBCache (its F1B0 case): skip the middle blocks while the first blocks' residual barely
changed since the last step that computed them. Definitions: DESIGN.md §3."""

from __future__ import annotations

from ...configs import DBCacheConfig, TaylorSeerConfig
from ..protocol import Policy, StepContext
from ..span import SpanEngine
from . import register


class ThresholdPolicy(Policy):
    """Skip while the change stays below `residual_diff_threshold`, within the warm-up and the caps."""

    def __init__(self, config: DBCacheConfig) -> None:
        self.config = config

    def decide(self, step: StepContext, change: float | None) -> bool:
        c, state = self.config, step.state
        return (
            step.index >= c.max_warmup_steps
            and (c.max_cached_steps < 0 or state.cached_steps < c.max_cached_steps)
            and (c.max_continuous_cached_steps < 0 or state.continuous_cached_steps < c.max_continuous_cached_steps)
            and change < c.residual_diff_threshold
        )


def _check(config: DBCacheConfig, taylorseer: TaylorSeerConfig | None) -> None:
    if taylorseer is not None and taylorseer.order and not config.cache_encoder and taylorseer.encoder:
        raise ValueError(
            "`cache.cache_encoder=false` leaves the text stream as it entered a skipped span, so there is nothing "
            "to forecast on it: set `taylorseer.encoder=false` too (TaylorSeer on the image stream only)."
        )


def _build(config: DBCacheConfig, blocks, stats, name, list_starts, *, taylorseer=None, **kwargs) -> SpanEngine:
    return SpanEngine(config, blocks, stats, name, list_starts, policy=ThresholdPolicy(config), calibrator=taylorseer,
                      **kwargs)


register(DBCacheConfig, _build, takes_taylorseer=True, check=_check)
