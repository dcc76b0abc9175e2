"""Side-by-side timing of several cache settings on one loaded pipeline, in one process.

Each repeat runs the uncached baseline and every setting once, in turn, so slow drifts of the machine (other
processes, thermal state) hit all settings alike; the table reports medians and ratios to the baseline's median.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

import numpy as np
from tqdm.auto import tqdm

from ..caches import NoCacheConfig
from ..zoo.entries import get_entry
from ..stats import speedup_notes
from .runs import cached_run, generate, warm_up, preflight
from .metrics import fidelity
from .peers import PEERS, check_peers
from .pipelines import load_pipeline
from .run_config import RunConfig

__all__ = [
    "BASELINE", "BenchRow", "run_benchmark", "markdown"
]

BASELINE = "uncached"


@dataclass
class BenchRow:
    label: str
    seconds: list[float] = field(default_factory=list)
    images: np.ndarray | None = None
    cache: dict | None = None


def run_benchmark(settings: dict[str, RunConfig], repeats: int = 3, peers: dict[str, dict] | None = None) -> list[dict]:
    """Time the uncached baseline and each setting `repeats` times; return one result dict per row.

    `peers` adds rows of other caches on the same pipeline: label -> ``{"peer": name, **params}`` (`cachedit.harness.peers`).
    """
    peers = peers or {}
    check_peers(peers)
    runs = list(settings.values())
    first = runs[0]
    if any(repr(run.model) != repr(first.model) or run.seed != first.seed for run in runs):
        raise ValueError("Every benchmark setting must use the same model and seed (they share one pipeline).")
    for run in runs:
        preflight(run)
    model_entry = get_entry(first.model.name)
    pipe = load_pipeline(first.model)
    pipe.set_progress_bar_config(disable=True)
    inputs = model_entry.inputs(pipe, first.model)
    warm_up(pipe, inputs, model_entry.output)

    rows = {BASELINE: BenchRow(BASELINE)} | {label: BenchRow(label) for label in [*settings, *peers]}
    baseline_run = RunConfig(model=first.model, cache=NoCacheConfig(), seed=first.seed)
    with tqdm(total=repeats * len(rows), desc="benchmark") as progress:
        for _ in range(repeats):
            for label, row in rows.items():
                if label in peers:
                    result = _peer_run(pipe, peers[label], inputs, first.seed, model_entry.output)
                else:
                    run = baseline_run if label == BASELINE else settings[label]
                    result, row.cache = cached_run(pipe, run, inputs, model_entry.output)
                row.seconds += result.seconds
                row.images = result.images
                progress.update()
    return _table(rows, model_entry, inputs)


def _peer_run(pipe, spec: dict, inputs: dict, seed: int, output: str):
    params = {key: value for key, value in spec.items() if key != "peer"}
    undo = PEERS[spec["peer"]](pipe, **params)
    try:
        return generate(pipe, inputs, seed, repeats=1, output=output)
    finally:
        undo()


def _table(rows: dict[str, BenchRow], model_entry, inputs: dict) -> list[dict]:
    base = rows[BASELINE]
    base_time = statistics.median(base.seconds)
    table = []
    for row in rows.values():
        time = statistics.median(row.seconds)
        peer = row.cache is None and row is not base  # a peer cache: what it skipped is not known here
        skipped = row.cache["skipped_share"] if row.cache else 0.0
        entry = {
            "setting": row.label,
            "time_s": time,
            "speedup": base_time / time,
            "ideal_speedup": "-" if peer else 1 / max(1e-9, 1 - skipped),
            "cached_steps": f"{row.cache['cached_steps']}/{row.cache['steps']}" if row.cache else "-",
            "skipped_share": "-" if peer else skipped,
            **{k: v for k, v in fidelity(base.images, row.images).items() if k in ("psnr", "max_abs_diff")},
        }
        if model_entry.quality is not None:
            entry.update(model_entry.quality(row.images, inputs))
        table.append(entry)
    return table


def markdown(table: list[dict]) -> str:
    """The benchmark as a markdown table."""
    columns = list(table[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for entry in table:
        cells = [f"{v:.3g}" if isinstance(v, float) else str(v) for v in entry.values()]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines + speedup_notes(table))

