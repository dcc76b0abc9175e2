"""Output directories that no other run can share: ``${unique_dir:outputs/runs/<date>/<time>}`` in the configs.

Two runs started in the same second resolve the same ``${now:...}`` path; ``os.mkdir`` is atomic (also on shared
filesystems), so the first run gets the path and every later one the next free ``<path>_<n>``.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path

__all__ = [
    "unique_dir", "register_resolver"
]

_CLAIMED: dict[str, str] = {}  # base -> directory: Hydra resolves the run dir more than once per process


def unique_dir(base: str) -> str:
    """Create and return `base`, or `base_1`, `base_2`, ... if taken; the same answer for `base` in one process."""
    if base in _CLAIMED:
        return _CLAIMED[base]
    Path(base).parent.mkdir(parents=True, exist_ok=True)
    for n in itertools.count():
        candidate = base if n == 0 else f"{base}_{n}"
        try:
            os.mkdir(candidate)
        except FileExistsError:
            continue
        _CLAIMED[base] = candidate
        return candidate
    raise AssertionError("unreachable")


def register_resolver() -> None:
    from omegaconf import OmegaConf

    if not OmegaConf.has_resolver("unique_dir"):
        OmegaConf.register_new_resolver("unique_dir", unique_dir)
