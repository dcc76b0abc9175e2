"""Serve cached generation over HTTP: the pipeline is loaded once, each request gets fresh cache state.

    python -m runners.serve                                        # embedded tiny DiT, its DBCache preset
    python -m runners.serve experiment=tiny_dit_fast server.port=8000
    python -m runners.serve model=flux model.source=replica cache=fbcache
    CACHEDIT_API_KEY=secret python -m runners.serve server.host=0.0.0.0 server.allowed_hosts=[gpu1.lan]

    curl -s localhost:8000/v1/images/generations -d '{"prompt": "a handwritten 3", "seed": 0,
         "cache_config": {"Fn_compute_blocks": 1, "residual_diff_threshold": 0.12}}'

Endpoints: POST /v1/images/generations, POST /v1/images/edits, GET /health, GET /v1/models[/{id}], GET /metrics,
GET /openapi.json. Needs the `serve` extra (``pip install -e .[serve]``).
"""

import sys

import hydra
from omegaconf import DictConfig, OmegaConf

from runners.conf_store import register_configs
from runners.overrides import check_overrides

register_configs()

WARM_UP_STEPS = 3  # a bad preset fails here, before serving; >= 2 steps time a step for the work estimate


@hydra.main(version_base="1.3", config_path="../conf", config_name="serve")
def main(config: DictConfig) -> None:
    import uvicorn

    from cachedit.config_formats import LoadedConfig
    from cachedit.harness.pipelines import load_pipeline
    from cachedit.serving.app import build_app
    from cachedit.serving.generator import CachedGenerator
    from cachedit.serving.protocol import uvicorn_config

    run = OmegaConf.to_object(config)  # typed dataclasses; __post_init__ validates ranges
    base = LoadedConfig(run.cache, run.taylorseer, run.scm, run.cfg)
    generator = CachedGenerator(load_pipeline(run.model), run.model, base, run.server)
    generator.generate({"seed": 0, "num_inference_steps": WARM_UP_STEPS})
    if run.server.host not in ("127.0.0.1", "localhost", "::1") and run.server.api_key is None:
        print(f"warning: serving on {run.server.host} without an API key: anyone who reaches this port can "
              f"generate (set server.api_key or CACHEDIT_API_KEY)", file=sys.stderr, flush=True)
    print(f"cachedit serving {run.model.name} on http://{run.server.host}:{run.server.port}", flush=True)
    uvicorn.Server(uvicorn_config(build_app(generator), run.server)).run()


if __name__ == "__main__":
    check_overrides(sys.argv[1:])
    main()
