"""`cachedit.load_config`: a preset/experiment path, cache-dit/vLLM-Omni flat keys and our keys give the same typed
configs as the Hydra path; bad keys and values fail with the Hydra path's messages."""

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

import cachedit
from runners.conf_store import register_configs
from cachedit.caches import DBCacheConfig, NoCacheConfig
from cachedit.configs import StepMaskConfig, TaylorSeerConfig

CONF = Path(__file__).resolve().parents[1] / "conf"


def hydra_path(*overrides: str):
    register_configs()
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(version_base="1.3", config_dir=str(CONF)):
            run = OmegaConf.to_object(compose("generate", overrides=list(overrides)))
    finally:
        GlobalHydra.instance().clear()
    return cachedit.LoadedConfig(run.cache, run.taylorseer, run.scm, run.cfg)


@pytest.mark.parametrize("experiment", sorted(p.stem for p in (CONF / "experiment").glob("*.yaml")))
def test_experiment_path_loads_like_hydra(experiment):
    assert cachedit.load_config(CONF / "experiment" / f"{experiment}.yaml") == hydra_path(f"experiment={experiment}")


def test_preset_path_loads_like_hydra():
    assert cachedit.load_config(CONF / "preset" / "tiny_dit_dbcache.yaml") == hydra_path("model=tiny_dit", "cache=dbcache")


def test_cache_dit_flat_keys_load_like_hydra():
    flat = {
        "Fn_compute_blocks": 1, "Bn_compute_blocks": 0, "max_warmup_steps": 4, "max_cached_steps": 10,
        "max_continuous_cached_steps": 3, "residual_diff_threshold": 0.15, "enable_taylorseer": True,
        "taylorseer_order": 2, "scm_steps_mask_policy": "fast", "scm_steps_policy": "static",
    }
    expected = hydra_path(
        "cache=fbcache", "~preset", "cache.max_warmup_steps=4", "cache.max_cached_steps=10",
        "cache.max_continuous_cached_steps=3", "cache.residual_diff_threshold=0.15", "taylorseer=order2",
        "scm=fast", "scm.policy=static",
    )
    assert cachedit.load_config(flat) == expected
    ours = {"Fn": 1, "Bn": 0, "max_warmup_steps": 4, "max_cached_steps": 10, "max_continuous_cached_steps": 3,
            "residual_diff_threshold": 0.15}
    assert cachedit.load_config({"cache": ours, "taylorseer": {"order": 2}, "scm": {"mask": "fast", "policy": "static"}}) == expected


def test_flat_keys_change_only_what_they_name_on_a_base():
    base = cachedit.load_config(CONF / "experiment" / "tiny_dit_fast.yaml")
    loaded = cachedit.load_config({"residual_diff_threshold": 0.3}, base=base)
    assert loaded.cache == DBCacheConfig(Fn=1, Bn=0, residual_diff_threshold=0.3, max_warmup_steps=4)
    assert loaded.taylorseer == base.taylorseer == TaylorSeerConfig(order=1)
    assert cachedit.load_config({"enable_taylorseer": False}, base=base).taylorseer.order == 0
    assert cachedit.load_config({"name": "none"}).cache == NoCacheConfig()
    assert cachedit.load_config({"scm_steps_mask_policy": None}).scm == StepMaskConfig()


def test_unknown_key_names_the_allowed_ones():
    with pytest.raises(ValueError, match=r"Unknown cache config keys \['Fn_compute_block'\]; allowed: .*Fn_compute_blocks"):
        cachedit.load_config({"Fn_compute_block": 1})
    with pytest.raises(ValueError, match=r"Unknown `scm` keys \['masks'\]; allowed: mask, policy, compute_steps"):
        cachedit.load_config({"scm": {"masks": "fast"}})


def test_bad_values_fail_with_the_hydra_messages():
    with pytest.raises(ValueError, match=r"`Fn` must be >= 1"):
        cachedit.load_config({"Fn_compute_blocks": 0})
    with pytest.raises(ValueError, match=r"`scm.mask` must be one of"):
        cachedit.load_config({"scm_steps_mask_policy": "turbo"})
    with pytest.raises(ValueError, match=r"`taylorseer.order` must be in \[0, 4\]"):
        cachedit.load_config({"taylorseer_order": 9})
    with pytest.raises(ValueError, match=r"`name`='fast' is no cache; allowed: dbcache, dbprune, forecast, none"):
        cachedit.load_config({"name": "fast"})
    with pytest.raises(ValueError, match=r"`Fn_compute_blocks`=2 and `Fn`=3 set the same knob differently"):
        cachedit.load_config({"Fn_compute_blocks": 2, "Fn": 3})
