"""Every config is strictly typed however it arrives: a Python object, a `load_config` dict (cache-dit / vLLM-Omni
flat keys or ours), a YAML file, a server's per-request override. Each field of every config class is walked with
values of the wrong type; each must stop with a ValueError naming the key, the value and what is allowed."""

from __future__ import annotations

import dataclasses
import math
import typing
from enum import Enum
from typing import Any

import pytest
from omegaconf import OmegaConf

import cachedit
import cachedit.config_formats
import cachedit.configs
import cachedit.harness.run_config
import cachedit.serving.config
import cachedit.zoo.model_config
from cachedit.caches import CACHE_CONFIGS, DBCacheConfig, dbcache, dbprune, forecast, none
from cachedit.config_types import ALLOW_NONFINITE, ConfigTypeError, check_types, field_types
from cachedit.configs import StepMaskName, TaylorSeerConfig
from cachedit.harness.run_config import RunConfig
from cachedit.zoo.model_config import ModelConfig, ModelSource, TorchDtype
from runners.conf_store import SCHEMAS
from tests.helpers.toy import TOY_ADAPTERS, ToyPipeline

CONF = cachedit.configs.__file__.rsplit("/cachedit/", 1)[0] + "/conf"


techniques = (none, dbcache, dbprune, forecast)


def config_classes() -> list[type]:
    """Every dataclass defined in the config modules of every layer and in every technique module, plus every
    registered cache config (wherever defined)."""
    modules = (cachedit.configs, cachedit.zoo.model_config, cachedit.harness.run_config, cachedit.serving.config,
               cachedit.config_formats, *techniques)
    found = {
        obj for module in modules for obj in vars(module).values()
        if isinstance(obj, type) and dataclasses.is_dataclass(obj) and obj.__module__ == module.__name__
    }
    return sorted(found | set(CACHE_CONFIGS.values()), key=lambda cls: cls.__name__)


# A group's fields are written `<group>.<field>` (`taylorseer.order`): the Hydra group names. Cache keys and the
# roots' own keys have no prefix, as users write them.
PREFIX = {cls: group for (group, _), cls in SCHEMAS.items()}


def _arm(annotation) -> tuple[Any, bool]:
    """(the type without None, whether None is allowed)."""
    args = typing.get_args(annotation)
    if type(None) in args:
        (arm,) = [a for a in args if a is not type(None)]
        return arm, True
    return annotation, False


def wrong_values(annotation) -> list:
    """Values of the wrong type for `annotation`, the ones users actually send (YAML strings, JSON numbers)."""
    arm, optional = _arm(annotation)
    values = [] if optional or arm is Any else [None]
    origin, args = typing.get_origin(arm), typing.get_args(arm)
    if arm is bool:
        values += ["false", "False", "0", 1, 0]
    elif arm is int:
        values += [2.5, 2.0, True, "2"]
    elif arm is float:
        values += ["0.1", True, math.nan, math.inf]
    elif arm is str:
        values += [1, True]
    elif isinstance(arm, type) and issubclass(arm, Enum):
        values += ["bogus", 1]
    elif origin is list:
        values += ["x", {"a": 1}, [wrong_values(args[0])[-1]]]
    elif origin is dict:
        values += ["x", [("a", 1)], {1: {}}]
        if typing.get_origin(args[1]) is dict:
            values += [{"transformer_2": "x"}]
    elif dataclasses.is_dataclass(arm):
        values += [{}, "x"]
    return values


def allowed_words(annotation) -> list[str]:
    """What the message must say is allowed."""
    arm, _ = _arm(annotation)
    origin = typing.get_origin(arm)
    if isinstance(arm, type) and issubclass(arm, Enum):
        return [repr(member.value) for member in arm]
    if origin is list:
        return ["list"]
    if origin is dict:
        return ["dict"]
    return [arm.__name__]


CASES = [
    pytest.param(cls, f.name, id=f"{cls.__name__}.{f.name}")
    for cls in config_classes() for f in dataclasses.fields(cls) if field_types(cls)[f.name] is not Any
]


def test_the_walk_covers_every_config_class():
    names = {cls.__name__ for cls in config_classes()}
    expected = {"RunConfig", "ModelConfig", "TaylorSeerConfig", "StepMaskConfig", "CFGCacheConfig", "TuneConfig",
                "ParallelConfig", "ServerConfig", "ServeConfig", "LoadedConfig", "NoCacheConfig", "DBCacheConfig",
                "DBPruneConfig", "ForecastCacheConfig"}
    assert expected <= names
    assert len(CASES) >= 60  # every typed field of those classes


@pytest.mark.parametrize("cls,name", CASES)
def test_every_field_refuses_values_of_the_wrong_type(cls, name):
    annotation = field_types(cls)[name]
    key = f"{PREFIX[cls]}.{name}" if cls in PREFIX else name
    values = wrong_values(annotation)
    assert len(values) >= 2
    for value in values:
        with pytest.raises(ValueError) as error:
            cls(**{name: value})
        message = str(error.value)
        assert f"`{key}`" in message, message
        assert repr(value)[:40] in message, message
        words = allowed_words(annotation)
        if words == ["float"]:
            words = ["float" if "float" in message else "number"]  # the server's timeout says "a number of seconds"
        assert all(word in message for word in words), (words, message)


@pytest.mark.parametrize("cls", config_classes(), ids=lambda cls: cls.__name__)
def test_valid_values_still_construct_and_defaults_round_trip(cls):
    default = cls()
    values = {f.name: getattr(default, f.name) for f in dataclasses.fields(cls)}
    assert cls(**values) == default
    for name, value in values.items():  # the same value in the other forms users send
        if isinstance(value, Enum):
            assert getattr(cls(**{name: value.value}), name) is value
        elif isinstance(value, list) and value:
            converted = getattr(cls(**{name: tuple(value)}), name)
            assert converted == value and type(converted) is list
        elif type(value) is float and value.is_integer():
            converted = getattr(cls(**{name: int(value)}), name)
            assert converted == value and type(converted) is float


def test_a_run_config_takes_a_cache_config_object_only():
    with pytest.raises(ValueError, match=r"`cache` must be a cache config \(.*DBCacheConfig.*\), got \{'Fn': 1\}"):
        RunConfig(model=ModelConfig(name="tiny_dit"), cache={"Fn": 1})
    assert RunConfig(model=ModelConfig(name="tiny_dit"), cache=DBCacheConfig()).cache == DBCacheConfig()


def test_conversions_store_the_declared_type():
    model = ModelConfig(name="tiny_dit", source="replica", torch_dtype="bfloat16", class_labels=OmegaConf.create([1, 2]),
                        guidance_scale=4)
    assert model.source is ModelSource.replica
    assert model.torch_dtype is TorchDtype.bfloat16
    assert model.class_labels == [1, 2] and type(model.class_labels) is list
    assert model.guidance_scale == 4.0 and type(model.guidance_scale) is float
    config = DBCacheConfig(Bn=2, Bn_compute_blocks_ids=(1,), per_transformer=OmegaConf.create({"transformer_2": {"Fn": 2}}))
    assert config.Bn_compute_blocks_ids == [1] and config.per_transformer == {"transformer_2": {"Fn": 2}}
    assert type(config.per_transformer) is dict


def test_an_enum_takes_its_exact_value_only():
    with pytest.raises(ValueError, match=r"`scm.mask` must be one of \['none', .*'custom'\], got 'FAST'"):
        cachedit.configs.StepMaskConfig(mask="FAST")
    with pytest.raises(ValueError, match=r"`scm.policy` must be one of \['dynamic', 'static'\], got <StepMaskName.fast"):
        cachedit.configs.StepMaskConfig(policy=StepMaskName.fast)


def test_per_transformer_overrides_are_typed_like_their_field():
    with pytest.raises(ValueError, match=r"`per_transformer.transformer_2.max_warmup_steps` must be an int, got 1.5"):
        DBCacheConfig(per_transformer={"transformer_2": {"max_warmup_steps": 1.5}})
    with pytest.raises(ValueError, match=r"`per_transformer.transformer_2.cache_encoder` must be a bool, got 'no'"):
        DBCacheConfig(per_transformer={"transformer_2": {"cache_encoder": "no"}})
    assert DBCacheConfig(per_transformer={"t": {"residual_diff_threshold": 1}}).per_transformer["t"] == {
        "residual_diff_threshold": 1.0}


def test_a_long_value_is_shortened_and_a_nested_item_is_named():
    with pytest.raises(ValueError) as error:
        DBCacheConfig(Bn=2, Bn_compute_blocks_ids=[0] * 40 + [1.5])
    message = str(error.value)
    assert "`Bn_compute_blocks_ids` must be a list of int or None, got [0, 0," in message
    assert "..." in message and len(message) < 300
    assert "(at [40]: 1.5 is not an int)" in message


def test_nonfinite_floats_only_where_a_field_allows_them():
    @dataclasses.dataclass
    class Limits:
        cap: float = 1.0
        open_cap: float = dataclasses.field(default=1.0, metadata={ALLOW_NONFINITE: True})

        def __post_init__(self) -> None:
            check_types(self, "limits")

    assert Limits(open_cap=math.inf).open_cap == math.inf
    with pytest.raises(ConfigTypeError, match=r"`limits.cap` must be a float, got inf; .*NaN and inf are refused"):
        Limits(cap=math.inf)


def test_an_annotation_without_a_rule_is_a_programming_error():
    @dataclasses.dataclass
    class Odd:
        pair: tuple[int, int] = (1, 2)

        def __post_init__(self) -> None:
            check_types(self)

    with pytest.raises(TypeError, match="no rule for the annotation"):
        Odd()


################################################################################
#    The cases users hit through `load_config` (issue 21): each passed or      #
#    failed late, inside the engine, before                                    #
################################################################################


@pytest.mark.parametrize(
    "source,key,value,allowed",
    [
        ({"enable_taylorseer": "false"}, "`enable_taylorseer`", "'false'", "bool"),
        ({"enable_taylorseer": "False"}, "`enable_taylorseer`", "'False'", "bool"),
        ({"enable_taylorseer": "0"}, "`enable_taylorseer`", "'0'", "bool"),
        ({"enable_taylorseer": 1}, "`enable_taylorseer`", "got 1", "bool"),
        ({"Fn_compute_blocks": 1.5}, "`Fn_compute_blocks`", "1.5", "int"),
        ({"Fn_compute_blocks": "2"}, "`Fn_compute_blocks`", "'2'", "int"),
        ({"Fn_compute_blocks": True}, "`Fn_compute_blocks`", "True", "int"),
        ({"Bn_compute_blocks": 1.0}, "`Bn_compute_blocks`", "1.0", "int"),
        ({"max_warmup_steps": 1.5}, "`max_warmup_steps`", "1.5", "int"),
        ({"residual_diff_threshold": "0.1"}, "`residual_diff_threshold`", "'0.1'", "float"),
        ({"residual_diff_threshold": math.nan}, "`residual_diff_threshold`", "nan", "float"),
        ({"cache_encoder": "no"}, "`cache_encoder`", "'no'", "bool"),
        ({"per_transformer": "x"}, "`per_transformer`", "'x'", "dict"),
        ({"taylorseer_order": 2.5}, "`taylorseer_order`", "2.5", "int"),
        ({"scm_steps_policy": 1}, "`scm_steps_policy`", "got 1", "'dynamic', 'static'"),
        ({"name": "dbprune", "enable_dynamic_prune_threshold": "true"}, "`enable_dynamic_prune_threshold`", "'true'", "bool"),
        ({"name": "forecast", "compute_steps": [0, 2.5]}, "`compute_steps`", "[0, 2.5]", "list of int"),
        ({"cache": {"Fn": 2.5}}, "`Fn`", "2.5", "int"),
        ({"cache": "fbcache"}, "`cache`", "'fbcache'", "mapping"),
        ({"taylorseer": {"encoder": "false"}}, "`taylorseer.encoder`", "'false'", "bool"),
        ({"taylorseer": 1}, "`taylorseer`", "got 1", "mapping"),
        ({"scm": {"mask": "custom", "compute_steps": "0,4,8"}}, "`scm.compute_steps`", "'0,4,8'", "list of int"),
        ({"cfg": {"enable_separate_cfg": "yes"}}, "`cfg.enable_separate_cfg`", "'yes'", "bool"),
        ({"per_transformer": {"transformer_2": {"Fn": 2.0}}}, "`per_transformer.transformer_2.Fn`", "2.0", "int"),
    ],
)
def test_load_config_refuses_wrong_types_naming_the_key_as_written(source, key, value, allowed):
    with pytest.raises(ValueError) as error:
        cachedit.load_config(source)
    message = str(error.value)
    assert key in message and value in message and allowed in message, message


def test_a_python_config_fails_at_construction_not_in_the_engine():
    with pytest.raises(ValueError, match=r"`Fn` must be an int, got 2.5; an int is a whole number"):
        DBCacheConfig(Fn=2.5)
    with pytest.raises(ValueError, match=r"`taylorseer.order` must be an int, got 2.5"):
        TaylorSeerConfig(order=2.5)


def test_range_errors_of_cache_dit_keys_name_the_key_as_written():
    with pytest.raises(ValueError, match=r"^`Fn_compute_blocks`: `Fn` must be >= 1"):
        cachedit.load_config({"Fn_compute_blocks": 0})
    with pytest.raises(ValueError, match=r"^`taylorseer_order`: `taylorseer.order` must be in \[0, 4\]"):
        cachedit.load_config({"taylorseer_order": 9})


def test_valid_flat_values_keep_working():
    loaded = cachedit.load_config({"Fn_compute_blocks": 2, "residual_diff_threshold": 1, "enable_taylorseer": False,
                                   "taylorseer_order": 2, "scm_steps_mask_policy": "fast", "scm_steps_policy": "static"})
    assert loaded.cache == DBCacheConfig(Fn=2, residual_diff_threshold=1.0)
    assert type(loaded.cache.residual_diff_threshold) is float
    assert loaded.taylorseer.order == 0  # disabled: the order is checked, then unused
    assert loaded.scm.mask is StepMaskName.fast and loaded.scm.policy.value == "static"
    assert cachedit.load_config({"enable_taylorseer": True}).taylorseer.order == 1


def test_a_yaml_file_is_checked_the_same_way(tmp_path):
    (tmp_path / "experiment").mkdir()
    path = tmp_path / "experiment" / "bad.yaml"
    path.write_text("cache:\n  Fn: 1\n  cache_encoder: 'no'\n")
    with pytest.raises(ValueError, match=r"`cache_encoder` must be a bool, got 'no'"):
        cachedit.load_config(path)
    path.write_text("taylorseer:\n  order: 1.5\n")
    with pytest.raises(ValueError, match=r"`taylorseer.order` must be an int, got 1.5"):
        cachedit.load_config(path)
    path.write_text("taylorseer: order1\n")
    with pytest.raises(ValueError, match=r"`taylorseer` must be a mapping of its keys, got 'order1'"):
        cachedit.load_config(path)


def test_a_request_override_on_a_preset_is_checked_the_same_way():
    """The server's per-request `cache_config` is `load_config(override, base=<its preset>)`."""
    base = cachedit.load_config(f"{CONF}/experiment/tiny_dit_fast.yaml")
    with pytest.raises(ValueError, match=r"`enable_taylorseer` must be a bool, got 'false'"):
        cachedit.load_config({"enable_taylorseer": "false"}, base=base)
    assert cachedit.load_config({"enable_taylorseer": False}, base=base).taylorseer.order == 0


def test_enable_cache_refuses_a_wrongly_typed_dict_before_attaching_anything():
    pipe = ToyPipeline()
    with pytest.raises(ValueError, match=r"`enable_taylorseer` must be a bool, got 'false'"):
        cachedit.enable_cache(pipe, {"enable_taylorseer": "false", "Fn_compute_blocks": 1}, adapters=TOY_ADAPTERS)
    assert not cachedit.is_cache_enabled(pipe)
