"""The check of command-line overrides every runner makes before Hydra composes anything: a misspelt key or group,
in any override form (``key=v``, ``+key=v``, ``++key=v``, ``~key``, ``+group=option``), gets the allowed names and
the closest match, and the runner exits with status 2. Hydra's strict schemas remain the backstop; keys Hydra owns
(``hydra.*``, ``hydra/launcher=...``) are Hydra's to check."""

from __future__ import annotations

import dataclasses
import difflib
import importlib.util
import sys
from functools import cache
from pathlib import Path

from omegaconf import OmegaConf

from runners.conf_store import schemas
from cachedit.harness.run_config import RunConfig

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"


_NOT_AN_OPTION = "()[]${}"  # in a group's value: a sweep function or an interpolation, not an option's name


def _field_names(*nodes: type) -> list[str]:
    return sorted({f.name for node in nodes for f in dataclasses.fields(node)}, key=str.lower)


def allowed_keys(group: str) -> list[str]:
    """Fields accepted under `group` by any of its schemas (so no valid key is ever refused here)."""
    return _field_names(*(node for (g, _), node in schemas().items() if g == group))


def option_keys(group: str, option: str, extra_dirs: tuple[Path, ...] = ()) -> list[str] | None:
    """Fields of the schema that `group=option` selects (``cache=forecast``: ForecastCacheConfig's), following its
    defaults (``fbcache`` extends ``dbcache``); None where no schema is found."""
    for root in (CONF_DIR, *extra_dirs):
        path = root / group / f"{option}.yaml"
        if not path.exists():
            continue
        for entry in OmegaConf.load(path).get("defaults", []):
            base = entry.split("@", 1)[0] if isinstance(entry, str) else "_self_"
            schema = schemas().get((group, base.rsplit("/", 1)[-1])) if base.startswith(f"/cachedit/{group}/") else None
            if schema is not None:
                return _field_names(schema)
            if "/" not in base and base != "_self_":  # another option of the same group
                return option_keys(group, base, extra_dirs)
    return None


def config_groups() -> list[str]:
    """Every group a user may select (``cache=fbcache``) or add (``+sweep=threshold``): the folders of conf/."""
    return sorted(p.name for p in CONF_DIR.iterdir() if p.is_dir() and p.name != "hydra")


@cache
def top_level_keys(config_name: str) -> list[str]:
    """Keys at the root of `config_name`'s composed config: its own keys, its schema's fields and its groups."""
    primary = OmegaConf.load(CONF_DIR / f"{config_name}.yaml")
    defaults = [entry if isinstance(entry, str) else next(iter(entry)) for entry in primary.get("defaults", [])]
    keys = {key for key in primary if key not in ("defaults", "hydra")}
    if "run_schema" in defaults:
        keys |= {f.name for f in dataclasses.fields(RunConfig)}
    return sorted(keys | set(config_groups()), key=str.lower)


def _did_you_mean(kind: str, name: str, allowed: list[str], where: str, prefix: str = "") -> str:
    close = difflib.get_close_matches(name, allowed, n=1)
    hint = f" Did you mean `{prefix}{close[0]}`?" if close else ""
    return f"Unknown {kind} `{prefix}{name}`.{hint} Allowed {where}: {', '.join(allowed)}."


def _option_message(group: str, value: str, extra_dirs: tuple[Path, ...] = ()) -> str | None:
    """A group selection names an existing conf/<group>/<option>.yaml (each of a sweep's comma-separated ones), or
    one in a directory added with ``--config-dir``."""
    if any(c in value for c in _NOT_AN_OPTION) or value in ("", "null"):  # sweep functions, interpolations, removal
        return None
    options = sorted({p.stem for root in (CONF_DIR, *extra_dirs) for p in (root / group).glob("*.yaml")})
    for option in value.split(","):
        if option not in options:
            return _did_you_mean("option", option, options, f"options of `{group}`", f"{group}=")
    return None


def unknown_key_message(override: str, config_name: str = "generate", extra_dirs: tuple[Path, ...] = (),
                        selected: dict[str, str] | None = None) -> str | None:
    """The error for an override whose key, group or group option exists nowhere, else None. `selected`: the option
    the command line picks per group (``{"cache": "forecast"}``), whose own keys the message lists; whether a key is
    refused here still goes by every schema of the group (a preset may select another option)."""
    if override.startswith("-"):  # Hydra's own flags: --multirun, --cfg, ...
        return None
    body = override.lstrip("+~")
    key, has_value, value = body.partition("=")
    if not has_value and not override.startswith("~"):
        return None
    key = key.split("@", 1)[0]  # `group@package=option` selects `group`
    if key == "hydra" or key.startswith(("hydra.", "hydra/")):
        return None
    if "/" in key:  # a nested group (`hydra/launcher`) of a group checked below
        key = key.split("/", 1)[0]
    parts = key.split(".")
    roots = top_level_keys(config_name)
    if parts[0] not in roots:
        return _did_you_mean("config key", parts[0], roots, "top-level keys and groups")
    if len(parts) == 1:
        return _option_message(parts[0], value, extra_dirs) if parts[0] in config_groups() and has_value else None
    group, field = parts[0], parts[1]
    allowed = allowed_keys(group)
    if not allowed or field in allowed:  # a group without a schema (bench, sweep) is Hydra's to check
        return None
    option = (selected or {}).get(group)
    own = option_keys(group, option, extra_dirs) if option else None
    if own:
        return _did_you_mean("config key", field, own, f"keys of `{group}={option}`", f"{group}.")
    return _did_you_mean("config key", field, allowed, f"keys under `{group}`", f"{group}.")


def selected_options(argv: list[str]) -> dict[str, str]:
    """The one option each group override of `argv` selects (``cache=forecast``); a sweep (``a,b``) selects none."""
    selected = {}
    for override in argv:
        key, has_value, value = override.lstrip("+").partition("=")
        if has_value and key in config_groups() and value and not any(c in value for c in "," + _NOT_AN_OPTION):
            selected[key] = value
    return selected


# The Hydra launcher plugin each `conf/hydra/launcher/` preset extends (its `defaults` entry): module, pip requirement.
LAUNCHER_PLUGINS = {
    "joblib": ("hydra_plugins.hydra_joblib_launcher", "hydra-joblib-launcher==1.2.0"),
    "submitit_local": ("hydra_plugins.hydra_submitit_launcher", "hydra-submitit-launcher==1.2.0"),
    "submitit_slurm": ("hydra_plugins.hydra_submitit_launcher", "hydra-submitit-launcher==1.2.0"),
    "ray": ("hydra_plugins.hydra_ray_launcher", "hydra-ray-launcher==1.2.2"),
}


def launcher_plugin(preset: str) -> tuple[str, str] | None:
    """(module, requirement) of the plugin a `hydra/launcher=<preset>` of ours extends; None for Hydra's own."""
    path = CONF_DIR / "hydra" / "launcher" / f"{preset}.yaml"
    if not path.exists():
        return None
    defaults = OmegaConf.load(path).get("defaults", [])
    return next((LAUNCHER_PLUGINS[d] for d in defaults if isinstance(d, str) and d in LAUNCHER_PLUGINS), None)


def missing_launcher_message(override: str) -> str | None:
    """`hydra/launcher=<preset>` whose plugin is not installed: Hydra would say only "Could not load"."""
    key, _, preset = override.lstrip("+").partition("=")
    plugin = launcher_plugin(preset) if key == "hydra/launcher" else None
    if plugin is None or importlib.util.find_spec(plugin[0]) is not None:
        return None
    return (f"`hydra/launcher={preset}` needs the launcher plugin {plugin[1]}, which is not installed: "
            f"`pip install {plugin[1]}` (README: launchers).")


def _config_dirs(argv: list[str]) -> tuple[Path, ...]:
    """Directories added with Hydra's ``--config-dir DIR`` / ``-cd DIR`` / ``--config-dir=DIR``: their options count."""
    dirs = [argv[i + 1] for i, a in enumerate(argv[:-1]) if a in ("--config-dir", "-cd")]
    dirs += [a.split("=", 1)[1] for a in argv if a.startswith("--config-dir=")]
    return tuple(Path(d) for d in dirs)


def check_overrides(argv: list[str], config_name: str = "generate") -> None:
    """Exit with status 2 and a clear message on the first unknown key, group or option."""
    extra_dirs = _config_dirs(argv)
    selected = selected_options(argv)
    for i, override in enumerate(argv):
        if i > 0 and argv[i - 1] in ("--config-dir", "-cd"):
            continue  # the directory itself, not an override
        message = (unknown_key_message(override, config_name, extra_dirs, selected)
                   or missing_launcher_message(override))
        if message is not None:
            print(f"Error: {message}", file=sys.stderr)
            raise SystemExit(2)
