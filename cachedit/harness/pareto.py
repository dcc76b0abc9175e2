"""`bench=pareto`: every method's front of speed against fidelity on one pipeline, read at fixed fidelity levels.

A method is a family of settings (DESIGN §5: "fronts, not points"): cachedit configs, diffusers' own caches,
cache-dit, and the honest reference, the same pipeline *uncached with fewer steps*. Every setting is scored against
the uncached full-step run with the same inputs and seed:

- work: block executions counted on the transformer's blocks (a probe on each block's first child module, which
  runs only when the block computes, whoever wraps the block), so the *ideal* speedup is exact and the same
  measure for every method, peers and fewer steps included;
- wall time: medians of `repeats` interleaved runs (every setting once per round), reported with achieved/ideal;
- fidelity: PSNR, SSIM, max diff; on the embedded models accuracy and Fréchet distance (the family's quality).

`front` keeps each method's non-dominated points; `speedup_at` interpolates along it the highest speedup that still
reaches a level (PSNR ≥ L, or Fréchet ≤ (1 + p) × uncached).
"""

from __future__ import annotations

import contextlib
import io
import itertools
import re
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm.auto import tqdm

from ..cache import disable_cache, enable_cache
from ..stats import speedup_notes
from .fronts import front, speedup_at  # noqa: F401 - re-exported: pareto.front is the documented name
from .metrics import fidelity
from .peers import cache_dit_on, diffusers_cache_on, hook_names
from .runs import warm_up

PSNR_LEVELS = (30.0, 35.0, 40.0, 45.0, 50.0)
FRECHET_LEVELS = (0.05, 0.10, 0.20)  # Fréchet <= uncached * (1 + level)
KINDS = ("cachedit", "diffusers", "cache_dit", "fewer_steps")


class MethodError(RuntimeError):
    """A setting that cannot run as asked (e.g. a peer cache that hooked nothing): an error row, never a result."""


@dataclass
class Setting:
    method: str  # e.g. "cachedit forecast" — one front per method
    kind: str
    label: str  # the knob values, e.g. "interval=4"
    params: dict = field(default_factory=dict)


def expand(methods: dict[str, dict]) -> list[Setting]:
    """Method specs (``{kind, grid: {knob: [values]}, fixed: {...}, overrides: [...]}``) -> one Setting per grid point.

    Checks every spec before any work: an unknown kind or key is an error naming what is allowed."""
    settings = []
    for method, spec in methods.items():
        spec = dict(spec)
        kind = spec.pop("kind", None)
        if kind not in KINDS:
            raise ValueError(f"Method `{method}`: `kind: {kind}` is not one of {', '.join(KINDS)}.")
        allowed = {"grid", "fixed", "overrides", "config", "steps", "bounds"}
        unknown = sorted(set(spec) - allowed)
        if unknown:
            raise ValueError(f"Method `{method}` has unknown keys {unknown}; allowed: {', '.join(sorted(allowed))}.")
        if kind == "fewer_steps":
            settings += [Setting(method, kind, f"steps={n}", {"num_inference_steps": int(n)}) for n in spec.get("steps", [])]
            continue
        grid = spec.get("grid") or {}
        keys = list(grid)
        for values in itertools.product(*(grid[k] for k in keys)) if keys else [()]:
            point = dict(zip(keys, values))
            label = " ".join(f"{k.split('.')[-1]}={v}" for k, v in point.items()) or "default"
            params = {"fixed": dict(spec.get("fixed") or {}), "point": point, "overrides": list(spec.get("overrides") or []),
                      "config": spec.get("config")}
            settings.append(Setting(method, kind, label, params))
    return settings


################################################################################
#                                 Counting work                                #
################################################################################


def block_lists(transformer: torch.nn.Module) -> list[torch.nn.ModuleList]:
    """The transformer's repeated blocks: every ModuleList of two or more modules of one class, outermost only."""
    found = []
    for name, module in transformer.named_modules():
        if isinstance(module, torch.nn.ModuleList) and len(module) >= 2 and len({type(m) for m in module}) == 1:
            if not any(name.startswith(f"{outer}.") for outer, _ in found):
                found.append((name, module))
    if not found:
        raise MethodError(f"{type(transformer).__name__} has no list of repeated blocks to count work on.")
    return [module for _, module in found]


class BlockCounter:
    """Counts block executions: a pre-hook on each block's first child with parameters runs only if the block does."""

    def __init__(self, transformer: torch.nn.Module) -> None:
        self.count = 0
        self.handles = []
        for blocks in block_lists(transformer):
            for block in blocks:
                probe = next((c for c in block.children() if any(True for _ in c.parameters())), block)
                self.handles.append(probe.register_forward_pre_hook(self._tick))

    def _tick(self, module, args):
        self.count += 1

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()


################################################################################
#                              Enabling each kind                              #
################################################################################


def _diffusers_config(name: str, params: dict):
    import diffusers

    config_cls = getattr(diffusers, name, None)
    if config_cls is None or not name.endswith("Config"):
        raise MethodError(f"`config: {name}` is not a diffusers cache config class.")
    if "taylor_factors_dtype" in params and isinstance(params["taylor_factors_dtype"], str):
        params["taylor_factors_dtype"] = getattr(torch, params["taylor_factors_dtype"])
    return config_cls(**params)


def enable_diffusers(pipe, name: str, params: dict) -> Callable[[], None]:
    """A diffusers cache through its public API; raises MethodError when it hooks nothing on this transformer."""
    transformer = pipe.transformer
    before = hook_names(transformer)
    undo = diffusers_cache_on(transformer, _diffusers_config(name, params))
    if not hook_names(transformer) - before:
        undo()
        raise MethodError(f"diffusers {name}({params}) hooked nothing on {type(transformer).__name__}.")
    return undo


CALIBRATE = "calibrate"  # `mag_ratios: calibrate` in a MagCacheConfig method: measured before its first setting runs
_MAG_RATIOS: dict[tuple, list[float]] = {}


def mag_ratios(pipe, call: dict, seed: int, output: str) -> list[float]:
    """MagCache's per-step magnitude ratios for this pipeline and call, by diffusers' documented route: one run with
    ``MagCacheConfig(calibrate=True)``, which prints the ratios (read back here from its output). Memoised per
    pipeline and step count. Calibrate on another seed than the one evaluated."""
    steps = call.get("num_inference_steps", 28)
    key = (id(pipe), steps, seed)
    if key not in _MAG_RATIOS:
        undo = enable_diffusers(pipe, "MagCacheConfig", {"calibrate": True, "num_inference_steps": steps})
        printed = io.StringIO()
        try:
            with contextlib.redirect_stdout(printed):
                getattr(pipe(**call, generator=torch.Generator().manual_seed(seed)), output)
        finally:
            undo()
        found = re.findall(r"MagCacheConfig\(mag_ratios=\.\.\.\):\s*\[([^\]]*)\]", printed.getvalue())
        if not found:
            raise MethodError(f"MagCache calibration printed no ratios (a run of {steps} steps per branch expected).")
        _MAG_RATIOS[key] = [float(v) for v in found[-1].split(",")]
    return _MAG_RATIOS[key]


def enable_cache_dit(pipe, params: dict) -> Callable[[], None]:
    try:
        import cache_dit
    except ImportError as error:
        raise MethodError("cache-dit is not installed (`pip install --no-deps cache-dit==1.5.3`, benchmarks only).") from error
    params = dict(params)
    taylorseer = params.pop("taylorseer_order", 0)
    calibrator = cache_dit.TaylorSeerCalibratorConfig(taylorseer_order=taylorseer) if taylorseer else None
    return cache_dit_on(cache_dit, pipe, cache_dit.DBCacheConfig(**params), calibrator)


################################################################################
#                                   Running                                    #
################################################################################


@dataclass
class Outcome:
    setting: Setting
    seconds: list[float] = field(default_factory=list)
    blocks: int | None = None
    images: np.ndarray | None = None
    error: str | None = None
    hooked: str = ""  # a peer's hooks on the transformer, e.g. "taylorseer_cache on 6: transformer_blocks.0 … .5"


def run_pareto(pipe, inputs: dict, settings: list[Setting], compose_cachedit: Callable, seed: int, output: str,
               repeats: int = 1) -> tuple[Outcome, list[Outcome]]:
    """Run the uncached reference and every setting `repeats` times, interleaved. `compose_cachedit(overrides)`
    turns a cachedit setting's Hydra overrides into `(cache, companions)` for `enable_cache`."""
    counter = BlockCounter(pipe.transformer)
    reference = Outcome(Setting("uncached", "reference", f"steps={inputs.get('num_inference_steps')}"))
    outcomes = [Outcome(s) for s in settings]
    enablers = {}
    for outcome in outcomes:  # every cachedit setting composed (and so checked) before any work
        if outcome.setting.kind == "cachedit":
            p = outcome.setting.params
            try:
                enablers[id(outcome)] = compose_cachedit([*p["overrides"], *(f"{k}={_hydra(v)}" for k, v in p["point"].items())])
            except Exception as error:  # noqa: BLE001 - the row shows why
                outcome.error = f"{type(error).__name__}: {error}"
    # the first call pays one-time costs that would otherwise inflate the uncached reference's time, and so every
    # measured speedup
    warm_up(pipe, inputs, output)
    try:
        with tqdm(total=repeats * (len(outcomes) + 1), desc="pareto") as progress:
            for _ in range(repeats):
                for outcome in [reference, *outcomes]:
                    if outcome.error is None:
                        _run_one(pipe, inputs, outcome, enablers.get(id(outcome)), counter, seed, output)
                    progress.update()
    finally:
        counter.remove()
    return reference, outcomes


def describe_hooks(transformer: torch.nn.Module, added: set[tuple[int, str]]) -> str:
    """Which modules a peer hooked, per hook: ``taylorseer_cache on 6: transformer_blocks.0 … transformer_blocks.5``.
    Issue 10 asks the table to say it: a peer configured to hook whole blocks must be seen to have done so."""
    names = {id(module): name or "<root>" for name, module in transformer.named_modules()}
    by_hook: dict[str, list[str]] = {}
    for module_id, hook in added:
        by_hook.setdefault(hook, []).append(names.get(module_id, "?"))
    parts = []
    for hook, modules in sorted(by_hook.items()):
        modules.sort(key=lambda n: [int(p) if p.isdigit() else p for p in n.split(".")])
        span = modules[0] if len(modules) == 1 else f"{modules[0]} … {modules[-1]}"
        parts.append(f"{hook} on {len(modules)}: {span}")
    return "; ".join(parts)


def _hydra(value) -> str:
    return str(value).replace(" ", "") if isinstance(value, list) else str(value)


def _run_one(pipe, inputs, outcome: Outcome, cachedit_args, counter: BlockCounter, seed: int, output: str) -> None:
    s = outcome.setting
    call = dict(inputs)
    undo = None
    try:
        if s.kind == "fewer_steps":
            call.update(s.params)
        elif s.kind == "cachedit":
            cache, companions = cachedit_args
            enable_cache(pipe, cache, **companions)
            undo = lambda: disable_cache(pipe)  # noqa: E731
        elif s.kind == "diffusers":
            before = hook_names(pipe.transformer)
            params = {**s.params["fixed"], **s.params["point"]}
            if params.get("mag_ratios") == CALIBRATE:
                params["num_inference_steps"] = call.get("num_inference_steps", 28)
                params["mag_ratios"] = mag_ratios(pipe, call, seed + 1, output)
            undo = enable_diffusers(pipe, s.params["config"], params)
            outcome.hooked = describe_hooks(pipe.transformer, hook_names(pipe.transformer) - before)
        elif s.kind == "cache_dit":
            undo = enable_cache_dit(pipe, {**s.params["fixed"], **s.params["point"]})
        counter.count = 0
        start = time.perf_counter()
        result = pipe(**call, generator=torch.Generator().manual_seed(seed))
        outcome.seconds.append(time.perf_counter() - start)
        outcome.blocks = counter.count
        outcome.images = np.asarray(getattr(result, output), dtype=np.float32)
    except Exception as error:  # noqa: BLE001 - one failing setting is a row, the others still run
        outcome.error = f"{type(error).__name__}: {error}"
    finally:
        if undo is not None:
            undo()


################################################################################
#                             Fronts and the table                             #
################################################################################


def rows(reference: Outcome, outcomes: list[Outcome], quality: Callable | None) -> list[dict]:
    """One flat row per setting (errors included), with work, time and fidelity against the reference."""
    base_time = statistics.median(reference.seconds)
    base_quality = quality(reference.images) if quality else {}
    table = []
    for o in outcomes:
        row = {"method": o.setting.method, "kind": o.setting.kind, "setting": o.setting.label, "error": o.error or "",
               "hooked": o.hooked}
        if o.error is None:
            ideal = reference.blocks / max(o.blocks, 1)
            measured = base_time / statistics.median(o.seconds)
            row.update(ideal_speedup=ideal, speedup=measured, achieved_over_ideal=measured / ideal,
                       blocks=o.blocks, **{k: v for k, v in fidelity(reference.images, o.images).items() if k in ("psnr", "ssim", "max_abs_diff")})
            if quality:
                row.update(quality(o.images))
        table.append(row)
    _refuse_peers_that_skipped_nothing(table, reference.blocks)
    for key, value in base_quality.items():
        for row in table:
            row[f"uncached_{key}"] = value
    return table


def _refuse_peers_that_skipped_nothing(table: list[dict], reference_blocks: int) -> None:
    """A peer method that ran every setting without skipping a block did not work on this model (a cache that
    hooked modules it never reaches, or fails open): its rows become errors rather than points at infinite dB."""
    for method in dict.fromkeys(r["method"] for r in table if r["kind"] in ("diffusers", "cache_dit")):
        ok = [r for r in table if r["method"] == method and not r["error"]]
        if ok and all(r["blocks"] == reference_blocks for r in ok):
            for r in ok:
                r["error"] = f"skipped no block at any setting of `{method}` (it does not apply to this model)"


def levels_table(table: list[dict]) -> tuple[list[str], dict[str, dict[str, float | None]]]:
    """Per method, the highest ideal speedup at each fidelity level."""
    names = [f"PSNR ≥ {level:g}" for level in PSNR_LEVELS]
    has_frechet = any("frechet" in r for r in table)
    if has_frechet:
        names += [f"Fréchet ≤ +{level:.0%}" for level in FRECHET_LEVELS]
    methods: dict[str, dict[str, float | None]] = {}
    for method in dict.fromkeys(r["method"] for r in table):
        ok = [r for r in table if r["method"] == method and not r["error"]]
        psnr_points = [(r["ideal_speedup"], min(r["psnr"], 1e9)) for r in ok]
        values = {n: speedup_at(psnr_points, lvl) for n, lvl in zip(names, PSNR_LEVELS)}
        if has_frechet and ok:
            frechet_points = [(r["ideal_speedup"], r["frechet"]) for r in ok]
            limit = ok[0]["uncached_frechet"]
            for level, name in zip(FRECHET_LEVELS, names[len(PSNR_LEVELS):]):
                values[name] = speedup_at(frechet_points, limit * (1 + level), higher_is_better=False)
        methods[method] = values
    return names, methods


def markdown(table: list[dict], title: str) -> str:
    names, methods = levels_table(table)
    kinds = {r["method"]: r["kind"] for r in table}
    lines = [f"# {title}", "", "Highest ideal speedup (block executions) on each method's front at each fidelity level",
             "(against the uncached full-step run; `-`: never reached).", "",
             "| method | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for method, values in methods.items():
        cells = [f"{v:.2f}x" if v is not None else "-" for v in values.values()]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    lines += ["", "| level | winner | speedup | best other than cachedit | margin |", "|---|---|---|---|---|"]
    for name in names:
        scored = [(v[name], m) for m, v in methods.items() if v.get(name) is not None]
        if not scored:
            continue
        top, winner = max(scored)
        others = [(s, m) for s, m in scored if kinds[m] != "cachedit"]
        ours = [(s, m) for s, m in scored if kinds[m] == "cachedit"]
        if others and ours:
            (o, om), (c, _) = max(others), max(ours)
            lines.append(f"| {name} | {winner} | {top:.2f}x | {om} {o:.2f}x | cachedit / best other = {c / o:.2f} |")
        else:
            lines.append(f"| {name} | {winner} | {top:.2f}x | - | - |")
    hooked: dict[str, str] = {}
    for r in table:
        if r.get("hooked"):
            hooked.setdefault(r["method"], r["hooked"])
    if hooked:
        lines += ["", "What each peer hooked (first setting):", ""] + [f"- {m}: {h}" for m, h in hooked.items()]
    lines += speedup_notes([{**r, "setting": f"{r['method']} {r['setting']}"} for r in table if not r["error"]], most=3)
    errors = [r for r in table if r["error"]]
    if errors:
        lines += ["", "Errors (these settings gave no result):", ""]
        lines += [f"- {r['method']} {r['setting']}: {r['error']}" for r in errors]
    return "\n".join(lines) + "\n"


def plot(table: list[dict], path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 6))
    for method in dict.fromkeys(r["method"] for r in table):
        ok = [r for r in table if r["method"] == method and not r["error"]]
        pts = front([(r["ideal_speedup"], min(r["psnr"], 80.0)) for r in ok])
        if pts:
            style = "k--" if ok[0]["kind"] == "fewer_steps" else "-"
            ax.plot(*zip(*pts), style, marker="o", ms=3, label=method)
    for level in PSNR_LEVELS:
        ax.axhline(level, color="0.85", lw=0.8, zorder=0)
    ax.set_xlabel("ideal speedup (block executions, uncached / method)")
    ax.set_ylabel("PSNR vs uncached full-step run (dB)")
    ax.set_title(title)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
