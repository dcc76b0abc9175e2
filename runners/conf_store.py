"""Registers the typed schemas with Hydra's ConfigStore: Hydra is the runners' concern, never the core's.

Each schema comes from the layer that owns it: the cache, TaylorSeer, SCM, CFG and parallel groups from the core
(`cachedit.configs`), `model` from the zoo (`cachedit.zoo.model_config`), the run root and `tune` from the harness
(`cachedit.harness.run_config`), the serve root and `server` from serving (`cachedit.serving.config`).

Schemas live in the `cachedit/<group>` namespace, so ``cache=...`` lists only the YAML options a user can pick;
each YAML option extends its schema with ``defaults: [/cachedit/<group>/<schema>@_here_, _self_]``.
"""

from hydra.core.config_store import ConfigStore

from cachedit.caches import CACHE_CONFIGS
from cachedit.configs import CFGCacheConfig, ParallelConfig, StepMaskConfig, TaylorSeerConfig
from cachedit.harness.run_config import RunConfig, TuneConfig
from cachedit.harness.run_dirs import register_resolver
from cachedit.serving.config import ServeConfig, ServerConfig
from cachedit.zoo.model_config import ModelConfig

SCHEMAS = {
    ("model", "model"): ModelConfig,
    ("taylorseer", "taylorseer"): TaylorSeerConfig,
    ("scm", "scm"): StepMaskConfig,
    ("cfg", "cfg"): CFGCacheConfig,
    ("parallel", "parallel"): ParallelConfig,
    ("tune", "tune"): TuneConfig,
    ("server", "server"): ServerConfig,
}


def schemas() -> dict[tuple[str, str], type]:
    """(group, schema name) -> dataclass; the cache group holds every registered technique's config."""
    return {**SCHEMAS, **{("cache", name): config_cls for name, config_cls in CACHE_CONFIGS.items()}}


def register_configs() -> None:
    register_resolver()  # ${unique_dir:...} in the run directories (conf/hydra/default.yaml, conf/bench.yaml)
    store = ConfigStore.instance()
    store.store(name="run_schema", node=RunConfig)
    store.store(name="serve_schema", node=ServeConfig)
    for (group, name), node in schemas().items():
        store.store(group=f"cachedit/{group}", name=name, node=node)
