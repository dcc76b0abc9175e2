"""Deterministic fits kept on disk between processes, so each runner or test process does not refit them.

The digit classifier behind the task-quality metrics (`digits.classifier`) takes ~10 s to fit on one BLAS thread;
every runner process (a generation, a bench, a sweep job) needed it. A fit is kept under a key that names all it
depends on (library versions, parameters, a hash of the training data), so a changed input fits anew; a file that
cannot be read is fitted over. Where the directory cannot be written, the fit is simply not kept.

The directory: ``$CACHEDIT_CACHE_DIR``, else ``$XDG_CACHE_HOME/cachedit``, else ``~/.cache/cachedit``. Files are
pickles: keep the directory as private as the virtualenv that runs them.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pickle
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

__all__ = ["cache_dir", "kept_fit"]

T = TypeVar("T")


def cache_dir() -> Path:
    explicit = os.environ.get("CACHEDIT_CACHE_DIR")
    if explicit:
        return Path(explicit)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "cachedit"


def kept_fit(name: str, key_parts: tuple, fit: Callable[[], T]) -> T:
    """`fit()`'s result, from ``<cache_dir>/<name>-<hash of key_parts>.pkl`` when an earlier process kept it.

    `key_parts` must determine the fit exactly (reprs are hashed; give arrays as bytes)."""
    digest = hashlib.sha256()
    for part in key_parts:
        digest.update(part if isinstance(part, bytes) else repr(part).encode())
        digest.update(b"\0")
    path = cache_dir() / f"{name}-{digest.hexdigest()[:24]}.pkl"
    try:
        with open(path, "rb") as f:
            return pickle.load(f)
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError, ValueError):
        pass  # not kept yet, or unreadable: fit it (again)
    result = fit()
    partial = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=path.name, suffix=".tmp", delete=False) as f:
            partial = f.name
            pickle.dump(result, f, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(partial, path)  # atomic: a process reading at the same time sees the whole file or none
    except OSError:  # a read-only or full disk: the fit is correct, just not kept
        if partial is not None:
            with contextlib.suppress(OSError):
                os.unlink(partial)
    return result
