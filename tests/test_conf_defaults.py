"""Schema defaults live once: a YAML option that extends a schema (``defaults: [/cachedit/<group>/<schema>@_here_,
_self_]``, runners/conf_store.py) sets only the keys that differ from its dataclass's defaults (or, for an option
extending a sibling option such as conf/cache/fbcache.yaml, from that option's values). Read with OmegaConf alone,
not Hydra."""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from runners.conf_store import schemas

CONF = Path(__file__).resolve().parents[1] / "conf"


def option(path: Path) -> tuple[type | None, dict, dict]:
    """``(schema, inherited, own)``: the schema `path` extends (None if none), the values it inherits from sibling
    options it extends (conf/cache/fbcache.yaml extends dbcache), and the values it sets itself."""
    group, loaded = path.parent.name, OmegaConf.to_container(OmegaConf.load(path))
    schema, inherited = None, {}
    for entry in loaded.pop("defaults", []):
        if not isinstance(entry, str) or entry == "_self_":
            continue
        if entry.startswith("/cachedit/"):  # /cachedit/<group>/<schema>@_here_
            schema = schemas()[(group, entry.removeprefix(f"/cachedit/{group}/").partition("@")[0])]
        else:
            schema, parent_inherited, parent_own = option(path.parent / f"{entry}.yaml")
            inherited = {**inherited, **parent_inherited, **parent_own}
    return schema, inherited, loaded


OPTIONS = sorted(p for p in CONF.glob("*/*.yaml") if option(p)[0] is not None)


def test_every_schema_group_has_options():
    assert {p.parent.name for p in OPTIONS} >= {"model", "cache", "cfg", "taylorseer", "scm", "parallel", "server"}


@pytest.mark.parametrize("path", OPTIONS, ids=lambda p: str(p.relative_to(CONF)))
def test_an_option_sets_only_what_differs_from_the_defaults_it_extends(path):
    schema, inherited, own = option(path)
    defaults = OmegaConf.merge(OmegaConf.structured(schema), inherited)
    restated = [key for key, value in own.items()
                if key in defaults and OmegaConf.merge(defaults, {key: value})[key] == defaults[key]]
    assert restated == [], f"{path.relative_to(CONF)} restates the defaults of {restated}: drop them"


@pytest.mark.parametrize("path", OPTIONS, ids=lambda p: str(p.relative_to(CONF)))
def test_an_option_composes_to_its_dataclass_with_the_keys_it_sets(path):
    schema, inherited, own = option(path)
    values = {**inherited, **own}
    composed = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(schema), values))
    assert composed == OmegaConf.to_object(OmegaConf.structured(schema(**values)))
