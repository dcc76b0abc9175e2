"""A cache plan: configs and a pipeline (or its transformers) resolved once into validated stacks and their engines.

`enable_cache` attaches a plan; the harness's `preflight` resolves one on meta-device transformers, so every check
below runs before any weight is loaded. Override layers, applied in this order (a later layer wins):

1. the cache config as given: a Python object, or what ``cachedit.load_config`` made of a preset, an experiment,
   a cache-dit dict (the runner's Hydra composition ends here too);
2. its ``per_transformer[<attribute>]`` knobs, for the transformer at that pipeline attribute;
3. a block list's own knobs (the third element of its `BlockAdapter` entry), for the stack that list forms.

Each layer goes through ``dataclasses.replace``, so its values are validated like the config's own. Every check runs
here, once: the combination of configs, the compile state of each transformer, the block count of each stack.
"""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import torch

from .adapters import BlockAdapter, CallFacts, adapters_for, call_facts_for
from .compiling import check_cacheable
from .caches import NoCacheConfig, build_engine, check_combination
from .configs import CFGCacheConfig, StepMaskConfig, TaylorSeerConfig
from .hooks import detach_copied_hooks
from .stats import CacheStats

__all__ = ["CachePlan", "PlannedStack", "resolve_plan"]


@dataclass(frozen=True)
class PlannedStack:
    """One engine's share of the plan.

    Args:
        attribute (`str`): the pipeline attribute holding the transformer (``transformer``, ``transformer_2``).
        transformer (`torch.nn.Module`): that transformer.
        name (`str`): the stack's name in stats (``transformer``, or ``transformer.<list>`` for a list of its own).
        hook_suffix (`str`, *optional*): tells the hooks of several stacks on one transformer apart.
        config: the stack's cache config, every override layer applied.
        blocks (`list`): ``[(block, pattern), ...]`` in forward order.
        engine: the stack's cache engine (`cachedit.hooks.protocol.CacheEngine`).
        call_facts (`CallFacts`): what the transformer's calls mean (`cachedit.adapters.call_facts`).
        forward_patch (*optional*): runs the transformer's forward while cached (`StackLayout.forward_patch`).
    """

    attribute: str
    transformer: torch.nn.Module
    name: str
    hook_suffix: str | None
    config: object
    blocks: list
    engine: object
    call_facts: CallFacts
    forward_patch: Callable | None = None


@dataclass
class CachePlan:
    """The cache config with what the pipeline decides filled in (`CacheConfig.resolved_for`) and as `given` (a copy
    and each call decide again), the other configs as given, the stats the engines record into, and the stacks."""

    config: object
    options: dict  # taylorseer, scm, cfg, adapters: as given
    stats: CacheStats = field(default_factory=CacheStats)
    stacks: list[PlannedStack] = field(default_factory=list)
    given: object = None  # the cache config before `resolved_for`: what each call and each copy decides again

    def check_still_decided(self, target) -> None:
        """Raise before a call where `target` no longer decides the settings the plan filled in for it: a scheduler
        swapped after `enable_cache` (``pipe.scheduler = ...from_config(...)``) would run engines built for the old
        one, silently wrong."""
        if self.given is self.config:
            return
        now = self.given.resolved_for(target)
        changed = {f.name: (getattr(self.config, f.name), getattr(now, f.name)) for f in dataclasses.fields(now)
                   if getattr(self.config, f.name) != getattr(now, f.name)}
        if changed:
            what = ", ".join(f"`{key}` {old!r} -> {new!r}" for key, (old, new) in changed.items())
            scheduler = type(getattr(target, "scheduler", None)).__name__
            raise ValueError(
                f"This pipeline changed since `cachedit.enable_cache` (its scheduler is now `{scheduler}`), and what "
                f"the cache decided from it no longer holds: {what}. Call `cachedit.enable_cache` again after changing "
                f"the scheduler, or set {', '.join(f'`{key}`' for key in changed)} explicitly.")

    def block_counts(self) -> dict[str, int]:
        """Blocks per transformer attribute."""
        counts: dict[str, int] = {}
        for stack in self.stacks:
            counts[stack.attribute] = counts.get(stack.attribute, 0) + len(stack.blocks)
        return counts


def resolve_plan(
    target,
    config,
    *,
    taylorseer: TaylorSeerConfig | None = None,
    scm: StepMaskConfig | None = None,
    cfg: CFGCacheConfig | None = None,
    adapters: list[BlockAdapter] | None = None,
    label: str | None = None,
) -> CachePlan:
    """The validated plan for caching `target` with these configs; nothing is attached.

    Args:
        target: a pipeline, or a mapping ``{attribute: transformer}`` (with `adapters`), e.g. meta-device
            transformers built from configs only.
        config: the cache config (`NoCacheConfig` plans no stack).
        adapters: where the blocks are; default: the registry's entry for `target`'s class.
        label (`str`, *optional*): names the model in errors (``the 18 blocks of `flux` transformer``).
    """
    options = {"taylorseer": taylorseer, "scm": scm, "cfg": cfg, "adapters": adapters}
    plan = CachePlan(config, options, given=config)
    check_combination(config, taylorseer)
    if isinstance(config, NoCacheConfig):
        return plan
    if isinstance(target, Mapping):
        if adapters is None:
            raise ValueError("A mapping of transformers needs `adapters` to say where their blocks are.")
        target = types.SimpleNamespace(**target)
    config = plan.config = config.resolved_for(target)  # what the pipeline decides (its scheduler): `settings` show it
    adapters = adapters_for(target) if adapters is None else adapters
    present = [adapter for adapter in adapters if adapter.present(target)]  # Wan 2.1 has no transformer_2
    attributes = [adapter.transformer for adapter in present]
    for adapter in present:
        transformer = adapter.find_transformer(target)
        check_cacheable(transformer)  # hooks inside a whole-model compile break and recompile per block
        detach_copied_hooks(transformer)  # a copy of a cached transformer gets its own hooks, not the original's
        transformer_config = _per_transformer(config, adapter.transformer, attributes)
        layout = adapter.layout(transformer)
        transformer_config.check_stack_count(len(layout), f"`{label}` {adapter.transformer}" if label else f"`{adapter.transformer}`")
        for stack in layout:
            stack_config = transformer_config  # override layer 3: the block list's own knobs
            if stack.knobs:
                stack_config = dataclasses.replace(transformer_config, **stack.knobs)
            where = f"`{label}` {stack.name}" if label else f"`{stack.name}`"
            stack_config.check_block_count(len(stack.blocks), where)
            engine = build_engine(stack_config, stack.blocks, plan.stats, stack.name, stack.list_starts,
                                  taylorseer=taylorseer, scm=scm, cfg=cfg)
            suffix = stack.name if len(layout) > 1 else None
            plan.stacks.append(PlannedStack(adapter.transformer, transformer, stack.name, suffix, stack_config,
                                            stack.blocks, engine, call_facts_for(transformer), stack.forward_patch))
    if not plan.stacks:
        raise ValueError(f"None of the adapters' transformers is present on this {type(target).__name__}.")
    return plan


def _per_transformer(config, attribute: str, known: list[str]):
    """`config` with its `per_transformer` knobs for `attribute` applied (override layer 2)."""
    unknown = sorted(set(getattr(config, "per_transformer", {})) - set(known))
    if unknown:
        raise ValueError(f"`per_transformer` names {unknown}, but this pipeline's transformers are {known}.")
    if not getattr(config, "per_transformer", None):
        return config
    return dataclasses.replace(config, **config.per_transformer.get(attribute, {}), per_transformer={})  # resolved
