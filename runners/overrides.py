"""A friendlier first check of command-line overrides: a misspelt config key gets the allowed keys and the
closest match, before Hydra composes anything. Hydra's own strict schemas remain the backstop."""

from __future__ import annotations

import dataclasses
import difflib
import sys

from cachedit.conf_store import SCHEMAS


def allowed_keys(group: str) -> list[str]:
    """Fields accepted under `group` by any of its schemas (so no valid key is ever refused here)."""
    fields = {f.name for (g, _), node in SCHEMAS.items() if g == group for f in dataclasses.fields(node)}
    return sorted(fields, key=str.lower)


def unknown_key_message(override: str) -> str | None:
    """The error for ``group.key=value`` when `key` is in no schema of `group`, else None."""
    if "=" not in override or override.startswith(("+", "~", "-", "hydra")):
        return None
    parts = override.split("=", 1)[0].split(".")
    if len(parts) < 2 or not allowed_keys(parts[0]):
        return None
    group, key = parts[0], parts[1]
    allowed = allowed_keys(group)
    if key in allowed:
        return None
    close = difflib.get_close_matches(key, allowed, n=1)
    hint = f" Did you mean `{group}.{close[0]}`?" if close else ""
    return f"Unknown config key `{group}.{key}`.{hint} Allowed keys under `{group}`: {', '.join(allowed)}."


def check_overrides(argv: list[str]) -> None:
    """Exit with status 2 and a clear message on the first unknown key."""
    for override in argv:
        message = unknown_key_message(override)
        if message is not None:
            print(f"Error: {message}", file=sys.stderr)
            raise SystemExit(2)
