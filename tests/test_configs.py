"""Every YAML composes into its typed schema; every bad input fails early with a message naming the key."""

import dataclasses
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf
from omegaconf.errors import ValidationError

from runners.conf_store import register_configs
from cachedit.caches import DBCacheConfig, FBCacheConfig, NoCacheConfig
from cachedit.zoo.model_config import ModelConfig, ModelSource
from cachedit.harness.run_config import RunConfig
from cachedit.harness.runs import preflight
from cachedit.harness.pipelines import ModelNotReachableError
from runners.overrides import unknown_key_message

CONF = Path(__file__).resolve().parents[1] / "conf"
GROUPS = ["model", "cache", "taylorseer", "cfg", "scm"]


@pytest.fixture(autouse=True)
def hydra_context():
    register_configs()
    GlobalHydra.instance().clear()
    with initialize_config_dir(version_base="1.3", config_dir=str(CONF)):
        yield
    GlobalHydra.instance().clear()


def typed(*overrides: str) -> RunConfig:
    return OmegaConf.to_object(compose("generate", overrides=list(overrides)))


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


@pytest.mark.parametrize("group,option", [(g, o) for g in GROUPS for o in options(g)])
def test_every_group_option_composes_into_its_schema(group, option):
    run = typed(f"{group}={option}")
    assert isinstance(run, RunConfig)
    assert type(getattr(run, group)).__name__.endswith("Config")


@pytest.mark.parametrize("experiment", options("experiment"))
def test_every_experiment_composes(experiment):
    assert isinstance(typed(f"experiment={experiment}"), RunConfig)


@pytest.mark.parametrize("preset", options("preset"))
def test_every_preset_is_picked_up_for_its_model_and_cache(preset):
    model, cache = next((m, preset[len(m) + 1 :]) for m in options("model") if preset.startswith(m + "_") and preset[len(m) + 1 :] in options("cache"))
    plain = OmegaConf.to_object(compose("generate", overrides=[f"model={model}", f"cache={cache}", "~preset"]))
    with_preset = typed(f"model={model}", f"cache={cache}")
    assert with_preset.cache != plain.cache  # the preset changed something, so it was applied


def test_the_default_run_is_the_embedded_model_with_dbcache():
    run = typed()
    assert run.model.name == "tiny_dit" and run.model.source == ModelSource.embedded
    assert isinstance(run.cache, DBCacheConfig)


def test_fbcache_is_dbcache_f1b0():
    run = typed("cache=fbcache")
    assert isinstance(run.cache, DBCacheConfig) and (run.cache.Fn, run.cache.Bn) == (1, 0)
    # the Python class is a DBCacheConfig too, and produces what `cache=fbcache` does: same knobs, name, run name
    fbcache = FBCacheConfig()
    assert isinstance(fbcache, DBCacheConfig) and dataclasses.asdict(fbcache) == dataclasses.asdict(run.cache)
    assert (fbcache.name, fbcache.strify()) == ("dbcache", "DBCache_F1B0_W8_M-1_MC-1_R0.08") == (run.cache.name, run.cache.strify())


def test_cache_none_is_no_cache():
    assert isinstance(typed("cache=none").cache, NoCacheConfig)


def test_command_line_values_reach_the_typed_config():
    run = typed("model=flux", "model.source=replica", "cache.Fn=8", "cache.residual_diff_threshold=0.12")
    assert (run.model.name, run.model.source, run.cache.Fn, run.cache.residual_diff_threshold) == (
        "flux", ModelSource.replica, 8, 0.12)


def test_a_misspelt_key_is_refused_by_the_schema():
    with pytest.raises(ConfigCompositionException) as error:
        typed("cache.residual_diff_treshold=0.1")
    assert "residual_diff_treshold" in str(error.value.__cause__) and "DBCacheConfig" in str(error.value.__cause__)


def test_a_misspelt_key_gets_the_allowed_keys_and_the_closest_one():
    message = unknown_key_message("cache.residual_diff_treshold=0.1")
    assert "Unknown config key `cache.residual_diff_treshold`" in message
    assert "Did you mean `cache.residual_diff_threshold`?" in message
    assert "Fn" in message and "max_warmup_steps" in message
    assert unknown_key_message("cache.residual_diff_threshold=0.1") is None
    assert unknown_key_message("model.replica.num_layers=4") is None


def test_a_wrong_type_names_the_key():
    with pytest.raises(ConfigCompositionException) as error:
        typed("cache.Fn=foo")
    assert "cache.Fn" in str(error.value.__cause__) and "Integer" in str(error.value.__cause__)


def test_an_unknown_option_lists_the_available_ones():
    with pytest.raises(Exception, match=r"(?s)Could not find 'cache/dbcach'.*dbcache.*fbcache.*none"):
        typed("cache=dbcach")


def test_an_unknown_enum_value_lists_the_allowed_ones():
    with pytest.raises(ConfigCompositionException) as error:
        typed("model.source=hubb")
    assert "expected one of [hub, replica, embedded]" in str(error.value.__cause__)


@pytest.mark.parametrize(
    "override,message",
    [
        ("cache.Fn=-1", "`Fn` must be >= 1"),
        ("cache.Bn=-2", "`Bn` must be >= 0"),
        ("cache.residual_diff_threshold=-0.1", "`residual_diff_threshold` must be >= 0"),
        ("cache.max_cached_steps=-3", r"`max_cached_steps` must be -1 \(no limit\) or >= 0, got -3"),
        ("cache.Bn_compute_blocks_ids=[0]", r"`Bn_compute_blocks_ids`=\[0\] needs trailing blocks: set `Bn` > 0"),
        ("cache.Bn_compute_blocks_ids=[0,5] cache.Bn=2", r"must lie in \[0, 1\]; got \[5\]"),
        ("model.num_inference_steps=0", "`model.num_inference_steps` must be >= 1"),
    ],
)
def test_out_of_range_values_raise_when_converted(override, message):
    with pytest.raises((ValueError, ValidationError), match=message):
        typed(*override.split())


def test_fn_plus_bn_beyond_the_model_fails_before_any_weights_load():
    run = typed("model=flux", "model.source=replica", "cache.Fn=16", "cache.Bn=2")
    with pytest.raises(ValueError, match=r"`Fn` \+ `Bn` = 16 \+ 2 = 18 must be smaller than the 18 blocks of `flux` transformer"):
        preflight(run)


def test_an_unreachable_hub_model_fails_fast_and_says_how_to_run_offline(monkeypatch):
    import huggingface_hub

    def offline(*args, **kwargs):
        raise ConnectionError("no network")

    monkeypatch.setattr(huggingface_hub, "model_info", offline)
    run = typed("model=flux")
    with pytest.raises(ModelNotReachableError, match=r"black-forest-labs/FLUX.1-dev.*model.source=replica.*model.path"):
        preflight(run)


def test_a_local_path_that_is_not_a_pipeline_is_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a saved pipeline"):
        preflight(typed("model=flux", f"model.path={tmp_path}"))


def test_plain_python_configs_validate_too():
    with pytest.raises(ValueError, match="`model.source` must be one of"):
        ModelConfig(name="flux", source="hubb")
    with pytest.raises(ValueError, match="`Fn` must be >= 1"):
        DBCacheConfig(Fn=0)
