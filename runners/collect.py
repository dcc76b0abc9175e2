"""Summarise a sweep directory again, or one whose sweep was interrupted.

    python -m runners.collect outputs/multiruns/2026-01-01/12-00-00
    python -m runners.collect <sweep_dir> --psnr-floor 35

Writes summary.csv, summary.md, pareto.png and grid.png into the sweep directory (the same files the sweep's
callback writes), prints the markdown summary, and lists jobs that left no stats.json.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cachedit.harness.sweep import collect, summarize


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m runners.collect", description=__doc__.split("\n")[0])
    parser.add_argument("sweep_dir", type=Path, help="a Hydra sweep directory (hydra.sweep.dir)")
    parser.add_argument("--psnr-floor", type=float, default=30.0, help="PSNR (dB) a suggested setting must reach")
    args = parser.parse_args(argv)
    if not args.sweep_dir.is_dir():
        print(f"Error: `{args.sweep_dir}` is not a directory.", file=sys.stderr)
        return 2
    rows, missing, _ = collect(args.sweep_dir)
    if not rows and not missing:
        print(f"Error: no jobs under `{args.sweep_dir}` (no stats.json, no .hydra/ folders).", file=sys.stderr)
        return 2
    summary = summarize(args.sweep_dir, args.psnr_floor)
    print(summary.files["md"].read_text())
    for name in summary.missing:
        print(f"no stats.json: {args.sweep_dir / name}")
    print("wrote " + ", ".join(str(p) for p in summary.files.values()))
    for row in summary.rows:
        if row["status"] == "unreadable":
            print(f"bad stats.json: {args.sweep_dir / row['dir'] / 'stats.json'} ({row['error']})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
