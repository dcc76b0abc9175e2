"""Registers the typed schemas with Hydra's ConfigStore: the only module of `cachedit` that imports Hydra.

Schemas live in the `cachedit/<group>` namespace, so ``cache=...`` lists only the YAML options a user can pick;
each YAML option extends its schema with ``defaults: [/cachedit/<group>/<schema>@_here_, _self_]``.
"""

from hydra.core.config_store import ConfigStore

from cachedit.configs import (
    CFGCacheConfig,
    DBCacheConfig,
    DBPruneConfig,
    ForecastCacheConfig,
    ModelConfig,
    NoCacheConfig,
    ParallelConfig,
    RunConfig,
    StepMaskConfig,
    TaylorSeerConfig,
    TuneConfig,
)
from cachedit.harness.run_dirs import register_resolver
from cachedit.serving.config import ServeConfig, ServerConfig

SCHEMAS = {
    ("model", "model"): ModelConfig,
    ("cache", "none"): NoCacheConfig,
    ("cache", "dbcache"): DBCacheConfig,
    ("cache", "dbprune"): DBPruneConfig,
    ("cache", "forecast"): ForecastCacheConfig,
    ("taylorseer", "taylorseer"): TaylorSeerConfig,
    ("scm", "scm"): StepMaskConfig,
    ("cfg", "cfg"): CFGCacheConfig,
    ("parallel", "parallel"): ParallelConfig,
    ("tune", "tune"): TuneConfig,
    ("server", "server"): ServerConfig,
}


def register_configs() -> None:
    register_resolver()  # ${unique_dir:...} in the run directories (conf/hydra/default.yaml, conf/bench.yaml)
    store = ConfigStore.instance()
    store.store(name="run_schema", node=RunConfig)
    store.store(name="serve_schema", node=ServeConfig)
    for (group, name), node in SCHEMAS.items():
        store.store(group=f"cachedit/{group}", name=name, node=node)
