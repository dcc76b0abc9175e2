"""Cache techniques: one module per technique, each holding its config, its policy (or its own engine) and ONE
`register` call. Adding a technique is that module plus its YAML (``conf/cache/<name>.yaml``).

This package holds what they share: the `CacheConfig` base, the registry (`CACHE_CONFIGS`: ``name`` -> config class,
`TECHNIQUES`: config class -> how its engine is built) and `build_engine` / `check_combination`, which read it.
Importing the package imports every module in it, so a new module here needs no other edit.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass

from ..config_types import convert, field_types
from ..configs import TaylorSeerConfig, require
from ..hooks.span import SpanEngine

__all__ = [
    "CACHE_CONFIGS", "TECHNIQUES", "CacheConfig", "Technique", "register", "build_engine", "check_combination",
    "check_cap", "NoCacheConfig", "DBCacheConfig", "FBCacheConfig", "DBPruneConfig", "ForecastCacheConfig",
]

CACHE_CONFIGS: dict[str, type] = {}  # `name` -> config class: the YAML option `cache=<name>`, `load_config`'s `name`


def check_cap(name: str, value: int) -> None:
    require(value == -1 or value >= 0, f"`{name}` must be -1 (no limit) or >= 0, got {value}.")


class CacheConfig:
    """Base of the cache configs: what a technique's config says about itself, so runs, sweeps, stats and benchmarks
    need no list of techniques. Span techniques (`Fn` leading and `Bn` trailing blocks always run) inherit the
    block-count and `per_transformer` checks below; a config without `Fn` overrides `check_block_count`."""

    name: str

    @classmethod
    def from_dict(cls, values: dict) -> "CacheConfig":
        """The config a `stats.json` or container dict describes (its `name` picks the class)."""
        config_cls = CACHE_CONFIGS[values["name"]]
        return config_cls(**{k: v for k, v in values.items() if k in config_cls.__dataclass_fields__})

    def check_block_count(self, num_blocks: int, where: str = "the transformer") -> None:
        """Raise if `Fn + Bn` leaves no block to cache in a stack of `num_blocks` blocks."""
        require(
            self.Fn + self.Bn < num_blocks,
            f"`Fn` + `Bn` = {self.Fn} + {self.Bn} = {self.Fn + self.Bn} must be smaller than the {num_blocks} "
            f"blocks of {where}, so that at least one block in between can be cached. Allowed: "
            f"Fn + Bn <= {num_blocks - 1}.",
        )

    def check_stack_count(self, num_stacks: int, where: str = "the transformer") -> None:
        """Raise if the technique cannot cache a transformer whose blocks form `num_stacks` stacks (each its own engine)."""

    def check_per_transformer(self) -> None:
        """Every per-transformer override must name a field of the same config and have its type (ranges are
        checked when applied, on the config it makes)."""
        types = field_types(type(self))
        allowed = {f for f in self.__dataclass_fields__ if f not in ("name", "per_transformer")}
        for transformer, overrides in self.per_transformer.items():
            bad = sorted(set(overrides) - allowed)
            require(
                not bad,
                f"`per_transformer.{transformer}` sets unknown keys {bad}; allowed: {', '.join(sorted(allowed))}.",
            )
            for key, value in overrides.items():
                overrides[key] = convert(value, types[key], f"per_transformer.{transformer}.{key}")

    def resolved_for(self, target) -> "CacheConfig":
        """This config with every setting left to the pipeline decided for `target` (a pipeline, a transformer
        holder or a namespace of transformers); most techniques have none."""
        return self

    def strify(self) -> str:
        """Short run name, e.g. ``DBCache_F8B0_W8_M-1_MC-1_R0.08``."""
        raise NotImplementedError

    def series(self) -> str:
        """The knobs that make one line of a sweep's plot (settings on it differ only in `setting()`)."""
        return f"F{self.Fn}B{self.Bn}"

    def setting(self) -> str:
        """The setting within its series, e.g. ``R0.08`` (a threshold) or the run name (a schedule)."""
        return self.strify()


@dataclass(frozen=True)
class Technique:
    """How the registry builds one technique's engine.

    Args:
        policy (`type`, *optional*): a span technique's `Policy` class, built from the config; the `SpanEngine`
            runs it.
        engine (`type`, *optional*): the engine class of a technique that decides per block (no policy); built as
            ``engine(config, blocks, stats, name, list_starts, scm=, cfg=)``. Neither: the technique attaches nothing.
        takes_taylorseer (`bool`): the user's `taylorseer` forecasts what the policy skips.
        check (`Callable`, *optional*): ``(config, taylorseer) -> None``, raising on a combination it does not define.
    """

    policy: type | None = None
    engine: type | None = None
    takes_taylorseer: bool = False
    check: Callable | None = None


TECHNIQUES: dict[type, Technique] = {}


def register(config_cls: type, *, policy: type | None = None, engine: type | None = None,
             takes_taylorseer: bool = False, check: Callable | None = None) -> None:
    """Make `config_cls` a technique: ``cache=<its name>`` picks it, and `build_engine` builds its engine."""
    if policy is not None and engine is not None:
        raise TypeError(f"register({config_cls.__name__}): give a `policy` (a span technique) or an `engine`, not both.")
    CACHE_CONFIGS[config_cls.name] = config_cls
    TECHNIQUES[config_cls] = Technique(policy, engine, takes_taylorseer, check)


def _technique(config_cls: type) -> Technique | None:
    """The registration of `config_cls` or of the nearest registered base (FBCacheConfig is a DBCacheConfig)."""
    return next((TECHNIQUES[c] for c in config_cls.__mro__ if c in TECHNIQUES), None)


def check_combination(config, taylorseer: TaylorSeerConfig | None = None) -> None:
    """Refuse combinations DESIGN §3 does not define, rather than ignoring part of them."""
    technique = _technique(type(config))
    if technique is not None and technique.check is not None:
        technique.check(config, taylorseer)
    order = taylorseer.order if taylorseer is not None else 0
    if order and (technique is None or not technique.takes_taylorseer):
        raise ValueError(f"`taylorseer.order={order}` forecasts DBCache's skipped span; it needs `cache=dbcache` or `cache=fbcache`.")


def build_engine(config, blocks, stats, name: str, list_starts: tuple[int, ...] = (0,), *, taylorseer=None, scm=None, cfg=None):
    """The engine for `config` over `blocks` (``[(module, pattern), ...]``) of the stack called `name`."""
    technique = _technique(type(config))
    if technique is None or (technique.policy is None and technique.engine is None):
        allowed = ", ".join(cls.__name__ for cls, t in TECHNIQUES.items() if t.policy or t.engine)
        raise TypeError(f"Unsupported cache config {type(config).__name__}; expected one of: {allowed}.")
    if technique.engine is not None:
        return technique.engine(config, blocks, stats, name, list_starts, scm=scm, cfg=cfg)
    policy = technique.policy(config)
    # a policy with a forecast of its own (Forecast Cache) uses it; a technique that takes TaylorSeer, the user's
    forecast = policy.forecast if policy.forecast is not None else taylorseer if technique.takes_taylorseer else None
    return SpanEngine(config, blocks, stats, name, list_starts, policy=policy, forecast=forecast, scm=scm, cfg=cfg)


# The built-in techniques in the order users meet them (error messages and `cache=` listings follow it), then any
# other module of this package.
from .none import NoCacheConfig  # noqa: E402 - after the registry they register into
from .dbcache import DBCacheConfig, FBCacheConfig  # noqa: E402
from .dbprune import DBPruneConfig  # noqa: E402
from .forecast import ForecastCacheConfig  # noqa: E402

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
