"""Schema defaults live once: a YAML option that extends a schema (``defaults: [/cachedit/<group>/<schema>@_here_,
_self_]``, runners/conf_store.py) sets only the keys that differ from its dataclass's defaults (or, for an option
extending a sibling option such as conf/cache/fbcache.yaml, from that option's values). Presets and experiments
(``@package _global_``) set only what differs from the group options they are applied on. Read with OmegaConf alone,
not Hydra, except where a preset or experiment is composed the way the runners compose it."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf, open_dict

from runners.conf_store import register_configs, schemas

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


# ---------------------------------------------------------------- presets and experiments

GLOBAL_FILES = sorted([*CONF.glob("preset/*.yaml"), *CONF.glob("experiment/*.yaml")])
PRIMARY = OmegaConf.to_container(OmegaConf.load(CONF / "generate.yaml"))


def applied_on(path: Path) -> dict[str, str]:
    """The group options `path` is applied on: generate.yaml's, with an experiment's ``override /<group>: option``
    entries, or a preset's ``<model>_<cache>`` (how generate.yaml picks it)."""
    options = {group: option for entry in PRIMARY["defaults"] if isinstance(entry, dict)
               for group, option in entry.items() if (CONF / group / f"{option}.yaml").is_file()}
    if path.parent.name == "preset":
        splits = [(stem[:i], stem[i + 1:]) for stem in [path.stem] for i, char in enumerate(stem) if char == "_"]
        pairs = [(m, c) for m, c in splits if (CONF / "model" / f"{m}.yaml").is_file() and (CONF / "cache" / f"{c}.yaml").is_file()]
        assert len(pairs) == 1, f"{path.relative_to(CONF)}: the name must be <model>_<cache> of one model and cache"
        options["model"], options["cache"] = pairs[0]
    for entry in OmegaConf.to_container(OmegaConf.load(path)).get("defaults", []):
        if isinstance(entry, dict):
            (key, option), = entry.items()
            options[key.removeprefix("override ").strip().lstrip("/")] = option
    return options


def body(path: Path) -> dict:
    loaded = OmegaConf.to_container(OmegaConf.load(path)) or {}
    loaded.pop("defaults", None)
    return loaded


@pytest.mark.parametrize("path", GLOBAL_FILES, ids=lambda p: str(p.relative_to(CONF)))
def test_a_preset_or_experiment_sets_only_what_differs_from_the_options_it_is_applied_on(path):
    options, restated = applied_on(path), []
    for key, value in body(path).items():
        if key not in options:  # a top-level run key (seed, repeats, ...): generate.yaml holds its default
            restated += [key] if key in PRIMARY and PRIMARY[key] == value else []
            continue
        schema, inherited, own = option(CONF / key / f"{options[key]}.yaml")
        defaults = OmegaConf.merge(OmegaConf.structured(schema), inherited, own)
        restated += [f"{key}.{k}" for k, v in value.items()
                     if k in defaults and OmegaConf.merge(defaults, {k: v})[k] == defaults[k]]
    assert restated == [], f"{path.relative_to(CONF)} restates the defaults of {restated}: drop them"


def compose_run(*overrides: str):
    register_configs()
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(version_base="1.3", config_dir=str(CONF)):
            return compose("generate", overrides=list(overrides), return_hydra_config=True)
    finally:
        GlobalHydra.instance().clear()


@pytest.mark.parametrize("path", GLOBAL_FILES, ids=lambda p: str(p.relative_to(CONF)))
def test_a_preset_or_experiment_composes_with_the_keys_it_sets(path):
    options = applied_on(path)
    if path.parent.name == "preset":  # picked automatically for its model and cache
        run = compose_run(f"model={options['model']}", f"cache={options['cache']}")
    else:
        run = compose_run(f"experiment={path.stem}")
    # the options the test above compares against are the ones Hydra applies it on
    assert {group: run.hydra.runtime.choices[group] for group in options} == options
    assert run.hydra.runtime.choices[path.parent.name] == path.stem
    for key, value in body(path).items():
        composed = OmegaConf.to_container(run[key]) if OmegaConf.is_config(run[key]) else run[key]
        if isinstance(value, dict):
            assert {k: composed[k] for k in value} == value, f"{path.relative_to(CONF)}: `{key}` did not apply"
        else:
            assert composed == value
    with open_dict(run):
        del run["hydra"]
    OmegaConf.to_object(run)  # every group's dataclass checks the composed values


def test_cfg_none_is_an_alias_of_cfg_separate():
    none, separate = compose_run("cfg=none"), compose_run("cfg=separate")
    assert OmegaConf.to_yaml(none.cfg) == OmegaConf.to_yaml(separate.cfg)
    assert none.hydra.runtime.choices.cfg == "none"  # the name a user typed still selects it
