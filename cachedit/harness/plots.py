"""The two pictures of a sweep: speedup against PSNR with the Pareto front, and every job's image in one grid.

Matplotlib's object API on the Agg canvas (``Figure().savefig``), never ``pyplot``: nothing global changes, so a
caller's interactive backend is left alone and no display is needed.
"""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import numpy as np

from .fronts import pareto_mask

MARKERS = "osD^vPX*<>"
MAX_GRID_CELLS = 60


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100)


def _panel(ax, rows: list[dict], x: str, xlabel: str, fewer_steps: dict[tuple, list[dict]]) -> None:
    ok = [r for r in rows if r["status"] == "ok" and r.get(x) is not None and r.get("psnr") is not None]
    if not ok:
        ax.text(0.5, 0.5, "no successful job with a speedup and a PSNR", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return
    finite = [r["psnr"] for r in [*ok, *(r for ref in fewer_steps.values() for r in ref)] if math.isfinite(r["psnr"])]
    ceiling = (max(finite) + 5) if finite else 60.0  # where identical outputs (PSNR = inf) are drawn

    def y(row: dict) -> float:
        return row["psnr"] if math.isfinite(row["psnr"]) else ceiling

    series: dict[str, list[dict]] = {}
    for row in ok:
        series.setdefault(row["series"], []).append(row)
    for i, (label, members) in enumerate(series.items()):
        members = sorted(members, key=lambda r: r[x])
        ax.plot([r[x] for r in members], [y(r) for r in members], marker=MARKERS[i % len(MARKERS)], alpha=0.8,
                label=label, linewidth=1)
        for r in members:
            if r.get("threshold") is not None:
                ax.annotate(f"{r['threshold']:g}", (r[x], y(r)), textcoords="offset points", xytext=(4, 4), fontsize=7)
    for (model, _, steps), reference in fewer_steps.items():  # the reference a cache must beat
        points = [(r[x], r["psnr"], r["steps"]) for r in sorted(reference, key=lambda r: -r["steps"]) if r.get(x) is not None]
        ax.plot([p[0] for p in points], [p[1] for p in points], color="grey", linestyle="-.", marker="|",
                label=f"fewer steps, no cache ({model}, of {steps})")
        for px, py, count in points:
            ax.annotate(str(count), (px, py), textcoords="offset points", xytext=(-4, -10), fontsize=7, color="grey")
    front = [r for r, keep in zip(ok, pareto_mask([(r[x], r["psnr"]) for r in ok])) if keep]
    front.sort(key=lambda r: r[x])
    ax.plot([r[x] for r in front], [y(r) for r in front], "k--", linewidth=1.2, label="Pareto front")
    ax.scatter([r[x] for r in front], [y(r) for r in front], s=170, facecolors="none", edgecolors="k", linewidths=1.5)
    if any(not math.isfinite(r["psnr"]) for r in ok):
        ax.axhline(ceiling, color="grey", linestyle=":", linewidth=1)
        ax.text(0.01, ceiling, " identical to uncached (PSNR = inf)", fontsize=7, color="grey", va="bottom",
                transform=ax.get_yaxis_transform())
    ax.axvline(1.0, color="grey", linewidth=0.8)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("PSNR vs uncached (dB)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower left")


def plot_pareto(rows: list[dict], path: Path, fewer_steps: dict[tuple, list[dict]] | None = None) -> Path:
    """Left: measured speedup vs PSNR; right: ideal speedup (share of blocks skipped) vs PSNR. One series per
    algorithm/Fn/Bn, points labelled with their threshold, Pareto front circled and dashed; `fewer_steps`
    ((model, seed, steps) -> uncached rows at fewer steps) is drawn as the reference, labelled with step counts."""
    fig = _figure(13, 5)
    left, right = fig.subplots(1, 2)
    _panel(left, rows, "speedup", "speedup vs uncached (measured wall time)", fewer_steps or {})
    _panel(right, rows, "ideal_speedup", "ideal speedup = 1 / (1 - share of block computations skipped)",
           fewer_steps or {})
    failed = sum(r["status"] != "ok" for r in rows)
    fig.suptitle(f"{len(rows)} jobs ({failed} failed): speed against fidelity; upper right is better")
    fig.savefig(path, bbox_inches="tight")
    return Path(path)


def _load(path: Path) -> np.ndarray | None:
    from PIL import Image

    if not path.is_file():
        return None
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def plot_grid(rows: list[dict], sweep_dir: Path, path: Path, max_cols: int = 5) -> Path:
    """The uncached baseline (one per model/seed/steps) then each job's ``image.png``, titled with its setting,
    speedup and PSNR; failed jobs show their error."""
    cells, seen = [], set()
    for row in rows:
        group = (row.get("model"), row.get("seed"), row.get("steps"))
        baseline = _load(Path(sweep_dir) / row["dir"] / "baseline.png")
        if baseline is not None and group not in seen:
            seen.add(group)
            cells.insert(len(seen) - 1, (baseline, f"uncached baseline\n{row.get('model')} seed {row.get('seed')}, "
                                                   f"{row.get('steps')} steps", "black"))
    for row in rows:
        title = f"#{row['job']} {row['label']}"
        if row["status"] != "ok":
            error = textwrap.fill(str(row.get("error")), 34, max_lines=8, placeholder=" ...")
            cells.append((error, f"{title}\nFAILED", "red"))
            continue
        speed, psnr = row.get("speedup"), row.get("psnr")
        numbers = f"{speed:.2f}x, PSNR {psnr:.1f} dB" if speed is not None and psnr is not None else "no baseline"
        cells.append((_load(Path(sweep_dir) / row["dir"] / "image.png"), f"{title}\n{numbers}", "black"))
    cells = cells[:MAX_GRID_CELLS]
    ncols = max(1, min(max_cols, len(cells)))
    nrows = max(1, math.ceil(len(cells) / ncols))
    first = next((c[0] for c in cells if isinstance(c[0], np.ndarray)), None)
    aspect = first.shape[1] / first.shape[0] if first is not None else 1.0  # width / height of one job's image
    fig = _figure(3.2 * ncols, (min(6.0, max(2.4, 3.2 / aspect)) + 0.5) * nrows)  # tall grids get taller cells
    for i, (image, title, color) in enumerate(cells):
        ax = fig.add_subplot(nrows, ncols, i + 1)
        if isinstance(image, np.ndarray):
            ax.imshow(image, interpolation="nearest")
        else:  # a failed job's error, or a job that saved no image
            ax.text(0.5, 0.5, image or "no image", ha="center", va="center", color=color, fontsize=7,
                    transform=ax.transAxes)
        ax.set_title(title, fontsize=8, color=color)
        ax.set_axis_off()
    fig.savefig(path, bbox_inches="tight")
    return Path(path)
