"""`bench=pareto` held out: calibrate on some inputs, evaluate every method on conditions never calibrated.

- `conditions`: each is the bench's call with a few overrides (another `seed`, `model.guidance_scale`,
  `model.num_inference_steps`), scored against its own uncached run; none may evaluate a calibration seed.
- methods with `calibrate: {budgets: [...]}` get their grid of Forecast schedules from `calibrate.calibrate`, fitted
  once per run on `calibration.seeds` at the bench's own call, before any condition (what a user can do: fit once,
  then generate with other seeds, guidance and step counts);
- `fewer_steps` counts are given for the bench's step count and scaled to each condition's;
- the margins: per condition and level, calibrated cachedit and uncalibrated cachedit against the best method that
  is not cachedit's (a peer, or fewer steps);
- grid edges: a peer whose best setting at a level lies on the end of its grid that buys speed may do better past
  it, so the margin would be inflated: `grid_edges` names each such case (and `pareto.md` lists them).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ..zoo.model_config import ModelConfig
from .calibrate import CalibrationCost, Fit, calibrate

__all__ = ["Condition", "EDGE_LEVELS", "calibrated_methods", "conditions", "grid_edges", "margins_markdown",
           "scaled_methods"]

EDGE_LEVELS = (35.0, 40.0, 45.0, 50.0)  # the levels the margins (and the targets) are read at
_MODEL_KEYS = ("guidance_scale", "num_inference_steps")


@dataclass
class Condition:
    name: str
    seed: int
    model: ModelConfig


def conditions(spec: dict | None, model: ModelConfig, seed: int, calibration_seeds: list[int]) -> list[Condition]:
    """The conditions to evaluate (`spec`: ``{name: {seed: 2} | {model.guidance_scale: 4.0} | ...}``); none given:
    the bench's own call only. Checked before any work."""
    if not spec:
        return [Condition(f"seed {seed}", seed, model)]
    allowed = ["seed", *(f"model.{k}" for k in _MODEL_KEYS)]
    found = []
    for name, overrides in spec.items():
        unknown = sorted(set(overrides or {}) - set(allowed))
        if unknown:
            raise ValueError(f"Condition `{name}` sets {unknown}; a condition may set {', '.join(allowed)}.")
        changes = {k.split(".", 1)[1]: v for k, v in (overrides or {}).items() if k.startswith("model.")}
        condition = Condition(str(name), int((overrides or {}).get("seed", seed)), dataclasses.replace(model, **changes))
        if condition.seed in calibration_seeds:
            raise ValueError(f"Condition `{name}` evaluates seed {condition.seed}, which `calibration.seeds` "
                             f"{calibration_seeds} fits on: a held-out condition needs another seed.")
        found.append(condition)
    return found


def calibrated_methods(pipe, call: dict, methods: dict, compose_cachedit, seeds: list[int], output: str,
                       powers: tuple[float, ...] = (0.25,)) -> tuple[dict, dict[str, tuple[dict[int, Fit], CalibrationCost]]]:
    """Methods with `calibrate: {budgets}` become a grid of the schedules fitted for them (on `call`, with `seeds`)."""
    result, fits = {}, {}
    steps = call["num_inference_steps"]
    for method, spec in methods.items():
        spec = dict(spec)
        plan = spec.pop("calibrate", None)
        if plan is not None:
            unknown = sorted(set(plan) - {"budgets"})
            if spec.get("kind") != "cachedit" or unknown or not plan.get("budgets"):
                raise ValueError(f"Method `{method}`: `calibrate` takes `budgets` (a list) on a `kind: cachedit` "
                                 f"Forecast method, got {plan} on kind {spec.get('kind')}.")
            overrides = [*spec.get("overrides", []), f"cache.reference_steps={steps}"]
            cache, _ = compose_cachedit([*overrides, "cache.compute_steps=null"])  # the preset's schedule is refitted
            found, cost = calibrate(pipe, call, seeds, list(plan["budgets"]), cache, output=output,
                                    powers=powers)
            fits[method] = (found, cost)
            spec["overrides"] = overrides
            spec["grid"] = {"cache.compute_steps": [fit.compute_steps for _, fit in sorted(found.items())]}
        result[method] = spec
    return result, fits


def scaled_methods(methods: dict, reference_steps: int, steps: int) -> dict:
    """`fewer_steps` counts, given for `reference_steps`, scaled to a call of `steps` (each below it, at least 1)."""
    scaled = {}
    for method, spec in methods.items():
        if spec.get("kind") == "fewer_steps" and steps != reference_steps:
            counts = sorted({max(1, round(n * steps / reference_steps)) for n in spec.get("steps", [])})
            spec = {**spec, "steps": [n for n in counts if n < steps]}
        scaled[method] = spec
    return scaled


def _best_at(rows: list[dict], level: float) -> dict | None:
    """The fastest measured setting reaching `level` dB on its method's front."""
    ok = [r for r in rows if not r["error"] and r["psnr"] >= level]
    return max(ok, key=lambda r: (r["ideal_speedup"], r["psnr"])) if ok else None


def grid_edges(table: list[dict], methods: dict, levels=EDGE_LEVELS) -> list[str]:
    """Methods whose fastest setting at a level sits at the end of their grid that buys speed: for a grid knob, the
    end whose settings ran faster on average (the highest interval or threshold, the lowest warmup), other than the
    knob's own limit (`bounds: {knob: [values]}` in the method's spec: values that cannot be passed); for a calibrated
    method, its smallest fitted budget. Past that end a setting might still reach the level, faster: a peer's front
    is unsure (our margin may be inflated), ours may be understated."""
    found = []
    for method, spec in methods.items():
        rows = [r for r in table if r["method"] == method and not r["error"]]
        if "calibrate" in spec:
            found += _budget_edges(method, rows, levels)
        bounds = spec.get("bounds") or {}
        for knob, values in (spec.get("grid") or {}).items():
            numbers = sorted(v for v in values if isinstance(v, (int, float)))
            if len(numbers) < 2:
                continue
            speed = {end: [r["ideal_speedup"] for r in rows if _knob_value(r["setting"], knob) == end]
                     for end in (numbers[0], numbers[-1])}
            if not all(speed.values()):
                continue
            mean = {end: sum(v) / len(v) for end, v in speed.items()}
            if mean[numbers[0]] == mean[numbers[-1]]:
                continue  # the knob does not change the work: neither end buys speed
            end, side = (numbers[-1], "highest") if mean[numbers[-1]] > mean[numbers[0]] else (numbers[0], "lowest")
            if end in (bounds.get(knob) or []):
                continue
            for level in levels:
                best = _best_at(rows, level)
                if best is not None and _knob_value(best["setting"], knob) == end:
                    found.append(f"{method}: at PSNR ≥ {level:g} its best setting ({best['setting']}) has the "
                                 f"{side} `{knob}` of its grid ({end}), the end that buys speed; widen the grid")
    return found


def _budget_edges(method: str, rows: list[dict], levels) -> list[str]:
    """A calibrated method whose smallest fitted budget (its fastest schedule) already reaches a level."""
    if not rows:
        return []
    fastest = max(r["ideal_speedup"] for r in rows)
    found = []
    for level in levels:
        best = _best_at(rows, level)
        if best is not None and best["ideal_speedup"] == fastest > 1.0:
            found.append(f"{method}: at PSNR ≥ {level:g} its best setting ({best['setting']}) is its smallest fitted "
                         f"budget; fit smaller `budgets`")
    return found


def _knob_value(label: str, knob: str) -> float | None:
    for part in label.split():
        name, _, value = part.partition("=")
        if name == knob.split(".")[-1]:
            try:
                return float(value)
            except ValueError:
                return None
    return None


def margins_markdown(by_condition: dict[str, list[dict]], calibrated: set[str], levels_of) -> list[str]:
    """Per condition and level: calibrated and uncalibrated cachedit against the best method that is not ours."""
    lines = []
    for title, ours in (("calibrated cachedit", lambda m, k: m in calibrated),
                        ("uncalibrated cachedit", lambda m, k: k == "cachedit" and m not in calibrated)):
        names = [f"PSNR ≥ {level:g}" for level in EDGE_LEVELS]
        lines += ["", f"Margin of the best {title} over the best peer or fewer steps (ideal speedups; < 1: we lose):",
                  "", "| condition | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
        for condition, table in by_condition.items():
            _, methods = levels_of(table)
            kinds = {r["method"]: r["kind"] for r in table}
            cells = []
            for name in names:
                mine = [(v[name], m) for m, v in methods.items() if v.get(name) is not None and ours(m, kinds[m])]
                other = [(v[name], m) for m, v in methods.items()
                         if v.get(name) is not None and kinds[m] != "cachedit"]
                if mine and other:
                    (a, am), (b, bm) = max(mine), max(other)
                    cells.append(f"**{a / b:.2f}** ({a:.2f}x {am} / {b:.2f}x {bm})")
                elif mine:
                    cells.append(f"only ours reach it ({max(mine)[0]:.2f}x)")
                elif other:
                    cells.append(f"**0** (none of ours; {max(other)[0]:.2f}x {max(other)[1]})")
                else:
                    cells.append("-")
            lines.append(f"| {condition} | " + " | ".join(cells) + " |")
    return lines

