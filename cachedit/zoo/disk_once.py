"""Values computed once per key and kept on disk, shared by processes: the harness's uncached baselines and fewer-steps
rows in a sweep directory (`cachedit.harness.runs`), and the digit classifier behind the task-quality metrics
(`digits.classifier`, ~10 s to fit on one BLAS thread, which every runner process needed).

`kept_on_disk` is the mechanism: under a file lock the first process computes and writes atomically while the
others wait, then load. `kept_fit` keeps a fit in the user's cache directory under a key that names all it depends
on (library versions, parameters, a hash of the training data), so a changed input fits anew; a file that cannot be
read is fitted over, and where the directory cannot be written the fit is simply not kept. That directory:
``$CACHEDIT_CACHE_DIR``, else ``$XDG_CACHE_HOME/cachedit``, else ``~/.cache/cachedit``. Its files are pickles: keep
it as private as the virtualenv that runs them.
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

__all__ = ["cache_dir", "kept_fit", "kept_on_disk"]

T = TypeVar("T")

_UNREADABLE_PICKLE = (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError, ValueError)


@contextlib.contextmanager
def _file_lock(path: Path):
    with open(path, "a+") as handle:
        try:
            import fcntl

            fcntl.flock(handle, fcntl.LOCK_EX)
        except (ImportError, OSError):  # no POSIX locks (Windows, some network filesystems): first writer wins
            pass
        yield


def kept_on_disk(path: Path, compute: Callable[[], T], load: Callable[[Path], T], save: Callable[[T, Path], None],
                 unreadable: tuple[type[BaseException], ...] = ()) -> tuple[T, str]:
    """The value kept at `path` and where it came from (``"disk"``), or ``compute()``'s, saved there (``"computed"``).
    Processes sharing `path` compute it once: a file lock makes the first compute while the others wait. A file whose
    `load` raises one of `unreadable` is computed over; any other error propagates."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with _file_lock(path.with_name(path.name + ".lock")):
        if path.exists():
            try:
                return load(path), "disk"
            except unreadable:
                pass
        value = compute()
        # a unique name ending in `path`'s own (np.savez appends `.npz` to a name without it)
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=".tmp.", suffix=f".{path.name}", delete=False) as handle:
            partial = Path(handle.name)
        try:
            save(value, partial)
            os.replace(partial, path)  # readers never see a half-written file
        finally:
            partial.unlink(missing_ok=True)
    return value, "computed"


def cache_dir() -> Path:
    explicit = os.environ.get("CACHEDIT_CACHE_DIR")
    if explicit:
        return Path(explicit)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "cachedit"


def _load_pickle(path: Path):
    with open(path, "rb") as f:
        return pickle.load(f)


def _save_pickle(value, path: Path) -> None:
    with open(path, "wb") as f:
        pickle.dump(value, f, protocol=pickle.HIGHEST_PROTOCOL)


def kept_fit(name: str, key_parts: tuple, fit: Callable[[], T]) -> T:
    """`fit()`'s result, from ``<cache_dir>/<name>-<hash of key_parts>.pkl`` when an earlier process kept it.

    `key_parts` must determine the fit exactly (reprs are hashed; give arrays as bytes)."""
    digest = hashlib.sha256()
    for part in key_parts:
        digest.update(part if isinstance(part, bytes) else repr(part).encode())
        digest.update(b"\0")
    path = cache_dir() / f"{name}-{digest.hexdigest()[:24]}.pkl"
    fitted = []

    def fit_once() -> T:
        fitted.append(fit())
        return fitted[0]
    try:
        return kept_on_disk(path, fit_once, _load_pickle, _save_pickle, unreadable=_UNREADABLE_PICKLE)[0]
    except OSError:  # a directory that cannot be written (a read-only home, a full disk): the fit, just not kept
        return fitted[0] if fitted else fit()
