"""BlockAdapter: where a pipeline's cacheable blocks live, and how each block list is called.

A BlockAdapter names one transformer of a pipeline (``transformer``, ``transformer_2``, ...) and its block lists in
forward order, each with its forward pattern. The lists become one stack (one cache engine, one Fn/Bn decision per
step); a list with its own cache knobs (``("single_transformer_blocks", pattern, {"Fn": 1})``) becomes a stack of
its own, with its own engine and hooks. ``BlockAdapter(block_lists="auto")`` discovers the lists and patterns.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from typing import Union

import torch

from .patterns import PATTERNS, STREAM_ALIASES, ForwardPattern

AUTO = "auto"
# Block lists that auto-discovery leaves alone: they refine or encode the conditioning, not the latent stream.
_NOT_DENOISING = ("refiner", "text", "context", "cap_", "siglip", "audio", "vace", "embed", "prompt")

BlockListSpec = Union[tuple[str, ForwardPattern], tuple[str, ForwardPattern, dict]]


@dataclass(frozen=True)
class StackLayout:
    """Blocks cached together by one engine: `blocks` is ``[(module, pattern), ...]`` in forward order; `knobs` are
    the block list's own cache knobs (the third element of its entry), applied by `cachedit.plan`.

    `forward_patch`, for a layout that fits no list of the transformer's own: while the cache is on, the transformer's
    forward runs as ``forward_patch(transformer, forward, args, kwargs)``, `forward` being its forward. Laying out
    attaches nothing: `cachedit.enable_cache` attaches the patch with the engine's hooks and removes it with them.
    """

    name: str
    blocks: list
    list_starts: tuple[int, ...]
    knobs: dict | None = None
    forward_patch: Callable | None = None


@dataclass(frozen=True)
class BlockAdapter:
    """One transformer of a pipeline and its block lists, treated as one stack in the order given.

    Args:
        block_lists (`tuple` or `"auto"`):
            ``(attribute, pattern)`` per block list, in forward order, e.g. FLUX:
            ``(("transformer_blocks", ENCODER_HIDDEN_OUT), ("single_transformer_blocks", ENCODER_HIDDEN_OUT))``.
            A dotted attribute reaches nested lists (``"mode_blocks.image"``). A third element, a dict of cache
            knobs (``{"Fn": 1, "residual_diff_threshold": 0.2}``), makes that list a separate stack whose config is
            the pipeline's config with those knobs replaced (the last override layer, see `cachedit.plan`). `"auto"` discovers the transformer's top-level block
            lists and infers each pattern from the block's ``forward`` source (see `discover_block_lists`).
        transformer (`str`, defaults to `"transformer"`): the pipeline attribute holding the transformer.
        optional (`bool`, defaults to `False`): skip this adapter when the pipeline has no such transformer (e.g.
            Wan 2.1 checkpoints leave ``transformer_2`` empty, Wan 2.2 A14B fills it).
    """

    block_lists: tuple[BlockListSpec, ...] | str
    transformer: str = "transformer"
    optional: bool = False

    def present(self, pipe) -> bool:
        """Whether `pipe` holds this adapter's transformer (a missing optional one is skipped, not an error)."""
        return isinstance(getattr(pipe, self.transformer, None), torch.nn.Module) or not self.optional

    def find_transformer(self, pipe) -> torch.nn.Module:
        module = getattr(pipe, self.transformer, None)
        if not isinstance(module, torch.nn.Module):
            raise ValueError(f"{type(pipe).__name__} has no transformer module at `{self.transformer}`.")
        return module

    def resolve(self, transformer: torch.nn.Module) -> tuple[tuple[str, ForwardPattern, dict | None], ...]:
        """``(attribute, pattern, overrides or None)`` per block list; discovers them for `"auto"`."""
        specs = discover_block_lists(transformer) if self.block_lists == AUTO else self.block_lists
        return tuple((spec[0], spec[1], spec[2] if len(spec) > 2 else None) for spec in specs)

    def _list(self, transformer: torch.nn.Module, attr: str) -> torch.nn.ModuleList:
        block_list = transformer
        for part in attr.split("."):
            block_list = getattr(block_list, part, None)
        if not isinstance(block_list, torch.nn.ModuleList):
            raise ValueError(f"{type(transformer).__name__} has no block list `{attr}` (a torch.nn.ModuleList).")
        return block_list

    def _checked(self, transformer, attr: str, pattern: ForwardPattern) -> list:
        stack = []
        for block in self._list(transformer, attr):
            pattern.check(block)
            if not stack or type(block) is not type(stack[-1][0]):  # the return check reads source: once per class
                check_returns(block, pattern, attr)
            stack.append((block, pattern))
        return stack

    def blocks(self, transformer: torch.nn.Module) -> list[tuple[torch.nn.Module, ForwardPattern]]:
        """The flattened block stack, each block with its pattern (checked against its signature)."""
        return [item for attr, pattern, _ in self.resolve(transformer) for item in self._checked(transformer, attr, pattern)]

    def layout(self, transformer: torch.nn.Module) -> list[StackLayout]:
        """The engines' stacks: consecutive lists without knobs share one; a list with knobs is alone."""
        groups: list[tuple[list, dict | None]] = []
        for attr, pattern, knobs in self.resolve(transformer):
            if knobs is None and groups and groups[-1][1] is None:
                groups[-1][0].append((attr, pattern))
            else:
                groups.append(([(attr, pattern)], knobs))
        stacks = []
        for lists, knobs in groups:
            blocks, starts = [], []
            for attr, pattern in lists:
                starts.append(len(blocks))
                blocks.extend(self._checked(transformer, attr, pattern))
            name = self.transformer if len(groups) == 1 else f"{self.transformer}.{lists[0][0]}"
            stacks.append(StackLayout(name, blocks, tuple(starts), knobs))
        return stacks


def _returns(block: torch.nn.Module) -> list[ast.expr]:
    """The return values of ``type(block).forward``, final one last; raises ValueError when the source is unreadable."""
    cls = type(block)
    try:
        source = textwrap.dedent(inspect.getsource(cls.forward))
    except (OSError, TypeError) as error:
        raise ValueError(f"Cannot read {cls.__name__}.forward to infer its pattern; name it explicitly.") from error
    function = ast.parse(source).body[0]
    returns = [node.value for node in ast.walk(function) if isinstance(node, ast.Return) and node.value is not None]
    if not returns:
        raise ValueError(f"{cls.__name__}.forward returns nothing readable; name its pattern explicitly.")
    return sorted(returns, key=lambda node: node.lineno)  # ast.walk is breadth-first


def _stream_names(value: ast.expr, params) -> list[str] | None:
    """The parameter names a return value gives back (``return encoder_hidden_states, hidden_states``), or None
    when it is anything else (a call, an attribute, a name that is no parameter)."""
    elements = value.elts if isinstance(value, ast.Tuple) else [value]
    names = [e.id if isinstance(e, ast.Name) else None for e in elements]
    if None in names or not set(names) <= set(params) or len(set(names)) != len(names):
        return None
    return names


def _fitting(names: list[str], params) -> ForwardPattern | None:
    """The pattern whose streams sit in exactly these parameters, in this order (aliases and named parameters count)."""
    return next((p for p in PATTERNS.values() if _returned_by(p, params) == tuple(names)), None)


def _returned_by(pattern: ForwardPattern, params) -> tuple:
    return tuple(pattern.param(s, params) for s in pattern.outputs)


def infer_pattern(block: torch.nn.Module) -> ForwardPattern:
    """The forward pattern of `block`, read from the names its ``forward`` returns.

    ``return hidden_states`` gives a single-stream pattern; ``return encoder_hidden_states, hidden_states`` (or
    ``img, txt``, ...) a dual-stream one. Raises when the returned values are not parameters of ``forward``.
    """
    cls = type(block)
    params = list(inspect.signature(block.forward).parameters)
    value = _returns(block)[-1]
    names = _stream_names(value, params)
    if names is None:
        raise ValueError(
            f"{cls.__name__}.forward returns `{ast.unparse(value)}`, which is not a tuple of its stream arguments "
            f"{params}; name its pattern explicitly (cachedit.patterns)."
        )
    pattern = _fitting(names, params)
    if pattern is None:
        raise ValueError(
            f"{cls.__name__}.forward returns {names}, which fits none of the forward patterns {list(PATTERNS)} "
            f"(stream aliases: {STREAM_ALIASES}); name its pattern explicitly."
        )
    return pattern


def check_returns(block: torch.nn.Module, pattern: ForwardPattern, attr: str) -> None:
    """Raise when `block.forward` visibly returns other streams than `pattern` says, at `enable_cache`.

    A wrong pattern (``HIDDEN_OUT`` for FLUX.1's single blocks, which return ``(encoder, hidden)``) otherwise reads
    the text stream as the image stream and fails mid-call with a shape error, or swaps two same-shaped streams
    silently. Forwards whose returns cannot be read as parameter names are left to the first call's check
    (`ForwardPattern.unpack`); a pattern that fits any of the readable returns passes.
    """
    try:
        returns = _returns(block)
    except ValueError:
        return
    params = list(inspect.signature(block.forward).parameters)
    readable = [names for names in (_stream_names(value, params) for value in returns) if names is not None]
    if not readable or any(_returned_by(pattern, params) == tuple(names) for names in readable):
        return
    names = readable[-1]
    fits = _fitting(names, params)
    hint = (f"use `cachedit.patterns.{fits.name.upper()}`" if fits is not None
            else f"no forward pattern fits ({list(PATTERNS)}); define a `cachedit.patterns.ForwardPattern`")
    raise ValueError(
        f"Block list `{attr}`: {type(block).__name__}.forward returns ({', '.join(names)}), which does not fit forward "
        f"pattern `{pattern.name}` (returns {list(pattern.outputs)}); {hint}."
    )


def discover_block_lists(transformer: torch.nn.Module) -> tuple[tuple[str, ForwardPattern], ...]:
    """The transformer's top-level block lists that carry the latent stream, in registration order.

    A candidate is a non-empty ``torch.nn.ModuleList`` attribute whose blocks share one class and whose pattern can be
    inferred; lists that refine or encode the conditioning (names with refiner, text, context, ...) are left out.
    """
    found, reasons = [], []
    for attr, module in transformer.named_children():
        if not isinstance(module, torch.nn.ModuleList) or len(module) == 0:
            continue
        if any(word in attr for word in _NOT_DENOISING):
            reasons.append(f"`{attr}` (conditioning)")
            continue
        if len({type(block) for block in module}) != 1:
            reasons.append(f"`{attr}` (mixed block classes)")
            continue
        try:
            found.append((attr, infer_pattern(module[0])))
        except ValueError as error:
            reasons.append(f"`{attr}` ({error})")
    if not found:
        raise ValueError(
            f"Found no cacheable block list on {type(transformer).__name__}"
            + (f"; left out: {', '.join(reasons)}" if reasons else "")
            + ". Name the lists: BlockAdapter(block_lists=(('blocks', cachedit.patterns.HIDDEN_OUT),))."
        )
    return tuple(found)
