"""Serve cached generation over HTTP: the pipeline is loaded once, each request gets fresh cache state.

    python -m runners.serve                                        # embedded tiny DiT, its DBCache preset
    python -m runners.serve experiment=tiny_dit_fast server.port=8000
    python -m runners.serve model=flux model.source=replica cache=fbcache

    curl -s localhost:8000/v1/images/generations -d '{"class_labels": [3], "seed": 0,
         "cache_config": {"Fn_compute_blocks": 1, "residual_diff_threshold": 0.12}}'

Endpoints: POST /v1/images/generations, GET /health, GET /v1/models, GET /metrics. Needs the `serve` extra
(``pip install -e .[serve]``).
"""

import sys

import hydra
from omegaconf import DictConfig, OmegaConf

from runners.conf_store import register_configs
from runners.overrides import check_overrides

register_configs()


@hydra.main(version_base="1.3", config_path="../conf", config_name="serve")
def main(config: DictConfig) -> None:
    import uvicorn

    from cachedit.config_formats import LoadedConfig
    from cachedit.harness.pipelines import load_pipeline
    from cachedit.serving.app import build_app
    from cachedit.serving.generator import CachedGenerator

    run = OmegaConf.to_object(config)  # typed dataclasses; __post_init__ validates ranges
    base = LoadedConfig(run.cache, run.taylorseer, run.scm, run.cfg)
    generator = CachedGenerator(load_pipeline(run.model), run.model, base, run.server)
    generator.generate({"seed": 0, "num_inference_steps": 1})  # a bad preset fails here, before serving
    print(f"cachedit serving {run.model.name} on http://{run.server.host}:{run.server.port}", flush=True)
    uvicorn.run(build_app(generator), host=run.server.host, port=run.server.port, log_level=run.server.log_level)


if __name__ == "__main__":
    check_overrides(sys.argv[1:])
    main()
