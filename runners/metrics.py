"""Compare two images, or two directories of images (paired by relative path), with the fidelity metrics.

    python -m runners.metrics outputs/.../baseline.png outputs/.../image.png
    python -m runners.metrics frames_uncached/ frames_cached/ --extra lpips fid --json metrics.json

Prints PSNR (dB; inf when identical), SSIM, MSE and max/mean absolute difference per pair and over all pairs.
FID, LPIPS and CLIP score (``--extra``) are computed only when their weights are on this machine; otherwise
the table says what is missing. Exit status 2 when the inputs cannot be compared.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from cachedit.harness.metrics import OPTIONAL_METRICS, compare_paths

COLUMNS = ("psnr", "ssim", "mse", "max_abs_diff", "mean_abs_diff")


def format_row(name: str, metrics: dict) -> str:
    return f"{name:<32} " + " ".join(f"{metrics[k]:>12.6g}" for k in COLUMNS)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m runners.metrics", description=__doc__.split("\n")[0])
    parser.add_argument("reference", type=Path, help="image file or directory (e.g. the uncached run)")
    parser.add_argument("test", type=Path, help="image file or directory to compare with it")
    parser.add_argument("--extra", nargs="*", default=[], choices=OPTIONAL_METRICS, help="optional metrics")
    parser.add_argument("--prompt", help="prompt for the CLIP score")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    try:
        result = compare_paths(args.reference, args.test, tuple(args.extra), args.prompt)
    except (ValueError, FileNotFoundError) as error:
        print(f"Error: {error}", file=sys.stderr)
        return 2

    print(f"{'pair':<32} " + " ".join(f"{k:>12}" for k in COLUMNS))
    for row in result["pairs"]:
        print(format_row(row["name"], row))
    if len(result["pairs"]) > 1:
        print(format_row(f"all {len(result['pairs'])} pairs", result["overall"]))
    for side, names in (("reference", result["only_in_a"]), ("test", result["only_in_b"])):
        if names:
            print(f"only in {side} ({len(names)}): {', '.join(names[:10])}{' ...' if len(names) > 10 else ''}")
    for name, value in result["optional"].items():
        print(f"{name}: {value:.6g}" if isinstance(value, float) else f"{name}: {value}")
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
