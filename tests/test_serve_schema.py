"""A bounded `schemathesis` run against the server's own `/openapi.json` on 127.0.0.1: generated requests, valid
and invalid by the schema, on every route; no 500, every status and body as the schema documents them.

The server runs in this process (uvicorn in a thread, the server's settings), with small caps so that every
generated generation is cheap; the run stops by itself (`--max-examples`; the subprocess has a timeout too)."""

import os
import shutil
import subprocess
import sys

import pytest
import torch

from cachedit.config_formats import load_config
from cachedit.zoo.model_config import ModelConfig
from cachedit.harness.pipelines import load_pipeline
from cachedit.serving.app import build_app
from cachedit.serving.config import ServerConfig
from cachedit.serving.generator import CachedGenerator
from tests.helpers.serve import serve_in_thread

KEY = "schema-key"
CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"
MAX_EXAMPLES = 70  # per operation, fuzzing phase only: a few hundred requests in all (no --max-time: it repeats until spent)
# a 504 is the documented answer to a `timeout_s` too short for the work, not a server fault
CONFIG = """
[[operations]]
include-name = "POST /v1/images/generations"
checks.not_a_server_error.expected-statuses = ["2xx", "4xx", "504"]

[[operations]]
include-name = "POST /v1/images/edits"
checks.not_a_server_error.expected-statuses = ["2xx", "4xx", "504"]
"""


@pytest.fixture(scope="module")
def server():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    model = ModelConfig(name="tiny_dit", source="embedded", torch_dtype="float32", num_inference_steps=4)
    config = ServerConfig(max_images=2, max_inference_steps=4, max_body_bytes=65536, request_timeout_s=20,
                          api_key=KEY)
    generator = CachedGenerator(load_pipeline(model), model, load_config("conf/preset/tiny_dit_dbcache.yaml"), config)
    generator.generate({"seed": 0, "num_inference_steps": 3})
    with serve_in_thread(build_app(generator), config, headers={"Authorization": f"Bearer {KEY}"}) as client:
        yield client
    torch.set_num_threads(previous)


def test_schemathesis_finds_no_500_and_no_schema_violation(server, tmp_path):
    scripts = os.path.dirname(sys.executable)  # the environment running the tests, activated or not
    cli = shutil.which("schemathesis", path=scripts) or shutil.which("schemathesis")
    assert cli, "schemathesis is a dev dependency"
    url = f"{server.base_url}/openapi.json"
    (tmp_path / "schemathesis.toml").write_text(CONFIG)
    result = subprocess.run(
        [cli, "--config-file", str(tmp_path / "schemathesis.toml"), "run", url, "--checks", CHECKS,
         "--phases", "fuzzing", "--max-examples", str(MAX_EXAMPLES),
         "--seed", "0", "--generation-deterministic", "-H", f"Authorization: Bearer {KEY}",
         "--request-timeout", "30", "--workers", "1", "--suppress-health-check", "all", "--warnings", "off"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "passed" in result.stdout.lower()
    metrics = server.get("/metrics").text
    assert 'route="/v1/images/generations",status="200"' in metrics  # generations did run, not only refusals
    assert 'status="500"' not in metrics
