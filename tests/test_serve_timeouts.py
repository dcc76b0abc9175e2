"""Per-request timeouts and client disconnects: the generation stops between denoising steps, the client gets a
504 naming the timeout and the step reached, the metrics count it, and the next request is exact.

A real `python -m runners.serve` process on 127.0.0.1 (`server.request_timeout_s=3`) and a real HTTP client, plus
the stop mechanism in process on both embedded pipelines (the tiny DiT and the real FluxPipeline of tiny_flux),
where the step it stops at is deterministic."""

import json
import re
import socket
import threading
import time

import pytest
import torch

from cachedit.config_formats import load_config
from cachedit.zoo.model_config import ModelConfig, ModelSource
from cachedit.harness.pipelines import load_pipeline
from cachedit.serving.config import ServerConfig
from cachedit.serving.errors import ApiError
from cachedit.serving.generator import BadRequest, CachedGenerator, ClientDisconnected, RequestTimeout
from tests.helpers.serve import counter, pngs, serve

SHORT = {"class_labels": [3, 7], "num_inference_steps": 16, "guidance_scale": 2.0}
# uncached, 4 images (8 with guidance) x 2000 steps: ~25 s on idle cores (200 steps took 2.4 s there, under the 3 s
# server timeout), so every timeout below fires first; no request with LONG runs to its end
LONG = {"class_labels": [1, 2], "n": 2, "num_inference_steps": 2000, "guidance_scale": 2.0, "seed": 9,
        "cache_config": {"name": "none"}}
SERVER_TIMEOUT_S = 3
ROUTE = "/v1/images/generations"


@pytest.fixture(scope="module")
def server():
    # the up-front work estimate is off here: these tests stop requests that did start (tests/test_serve_limits.py
    # covers the estimate)
    with serve("server.max_images=4", "server.max_inference_steps=2000", "server.deadline_estimate_share=0",
               f"server.request_timeout_s={SERVER_TIMEOUT_S}") as client:
        yield client


def post(client, **request):
    return client.post("/v1/images/generations", json=request)


def generate(client, **request) -> list[bytes]:
    response = post(client, **{**SHORT, **request})
    assert response.status_code == 200, response.text
    return pngs(response.json())


def test_a_request_past_its_timeout_gets_504_and_the_next_is_exact(server):
    alone = generate(server, seed=5)
    timeouts = counter(server, ROUTE, 504)
    started = time.monotonic()
    response = post(server, **LONG, timeout_s=0.5)
    assert time.monotonic() - started < 4  # stopped, not run to the end (~25 s unloaded)
    assert response.status_code == 504, response.text
    error = response.json()["error"]
    assert "timeout of 0.5 s" in error["message"] and error["timeout_s"] == 0.5
    assert error["steps"] == 2000 and 0 <= error["step"] < 2000
    where = "while queued, before its first step" if error["step"] == 0 else f"after step {error['step']} of 2000"
    assert where in error["message"]
    assert counter(server, ROUTE, 504) == timeouts + 1
    assert generate(server, seed=5) == alone  # the stopped request's cache state is gone


def test_the_server_timeout_applies_when_the_request_names_none(server):
    response = post(server, **LONG)
    assert response.status_code == 504, response.text
    assert f"timeout of {SERVER_TIMEOUT_S} s" in response.json()["error"]["message"]


def test_the_queue_moves_on_past_a_stopped_request(server):
    alone = generate(server, seed=3)
    results = {}

    def send(name, delay, **request):
        time.sleep(delay)
        results[name] = post(server, **request)

    threads = [  # the long one holds the pipeline until its timeout; one waits past its own, one is served after
        threading.Thread(target=send, args=("long", 0), kwargs={**LONG, "timeout_s": 2}),
        threading.Thread(target=send, args=("queued", 0.7), kwargs={**SHORT, "seed": 4, "timeout_s": 0.3}),
        threading.Thread(target=send, args=("next", 0.7), kwargs={**SHORT, "seed": 3}),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert results["long"].status_code == 504 and results["long"].json()["error"]["step"] > 0
    assert results["queued"].status_code == 504
    assert "while queued, before its first step" in results["queued"].json()["error"]["message"]
    assert results["next"].status_code == 200 and pngs(results["next"].json()) == alone


@pytest.mark.parametrize("value,status,message", [
    (0, 400, "greater than 0"),
    (-1, 400, "greater than 0"),
    ("5", 400, "valid number"),
    ("soon", 400, "valid number"),
    (True, 400, "valid number"),
    (SERVER_TIMEOUT_S + 1, 400, f"`timeout_s`: Input should be less than or equal to {SERVER_TIMEOUT_S}"),
])
def test_a_bad_timeout_is_refused_naming_the_key(server, value, status, message):
    response = post(server, **SHORT, timeout_s=value)
    assert response.status_code == status, response.text
    assert response.json()["error"]["param"] == "timeout_s" and message in response.json()["error"]["message"]


def test_a_client_that_goes_away_stops_its_work(server):
    alone = generate(server, seed=6)
    disconnects = counter(server, ROUTE, 499)
    body = json.dumps(LONG).encode()
    with socket.create_connection(("127.0.0.1", server.base_url.port), timeout=5) as sock:
        sock.sendall(b"POST /v1/images/generations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        time.sleep(1)  # the generation is running (it would take 5 s or more; the server stops it at 3 s)
    deadline = time.monotonic() + 3
    while counter(server, ROUTE, 499) == disconnects:
        assert time.monotonic() < deadline, "the work of a disconnected client was not stopped"
        time.sleep(0.1)
    assert generate(server, seed=6) == alone


# In process: the stop mechanism on both embedded pipelines, stopped at a known step.

class SetAfter:
    """A stand-in for the app's `disconnected` event that reads as set from its `n`-th look on."""

    def __init__(self, n: int) -> None:
        self.looks, self.n = 0, n

    def is_set(self) -> bool:
        self.looks += 1
        return self.looks > self.n


@pytest.fixture(scope="module", params=["tiny_dit", "tiny_flux"])
def generator(request):
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    model = ModelConfig(name=request.param, source=ModelSource.embedded, torch_dtype="float32",
                        num_inference_steps=12, guidance_scale=1.5, class_labels=[3, 7], num_images=1)
    cached = load_config({"Fn_compute_blocks": 1, "residual_diff_threshold": 0.2, "max_warmup_steps": 2})
    # estimate off: the timeout below must fire where a started request is stopped
    yield CachedGenerator(load_pipeline(model), model, cached, ServerConfig(request_timeout_s=60, deadline_estimate_share=0))
    torch.set_num_threads(previous)


def test_a_stopped_generation_stops_at_a_step_and_leaves_the_next_exact(generator):
    request = {"seed": 2}
    alone = generator.generate(request)
    assert alone.cache["cached_steps"] > 0  # the stop below lands in a state with cache to leak
    with pytest.raises(ClientDisconnected) as stopped:
        generator.generate({"seed": 8}, disconnected=SetAfter(6))  # looks before step 1, after steps 1..6
    assert (stopped.value.step, stopped.value.steps) == (6, 12)
    assert "stopped after step 6 of 12" in str(stopped.value)
    again = generator.generate(request)
    assert again.images == alone.images and again.cache["cached_steps"] == alone.cache["cached_steps"]
    with pytest.raises(RequestTimeout, match=r"timeout of 1e-09 s; stopped while queued, before its first step"):
        generator.generate({"seed": 8, "timeout_s": 1e-9})
    with pytest.raises(BadRequest, match=r"`timeout_s` must be at most `server.request_timeout_s`=60"):
        generator.generate({"seed": 8, "timeout_s": 61})
    assert generator.generate(request).images == alone.images


@pytest.mark.parametrize("value", [0, -1.5, float("inf"), "5", True])
def test_the_server_timeout_is_checked_like_the_other_settings(value):
    with pytest.raises(ValueError, match=r"`server.request_timeout_s` must be a number of seconds > 0, or null"):
        ServerConfig(request_timeout_s=value)
    assert ServerConfig(request_timeout_s=None).request_timeout_s is None
    assert ServerConfig(request_timeout_s=2.5).request_timeout_s == 2.5


def test_both_embedded_models_take_class_labels_or_a_prompt_naming_a_digit(generator):
    """Both draw a digit per image: labels reach the call, a prompt naming one digit is that class, any other
    prompt is refused listing what is understood."""
    assert generator.request_model({"class_labels": [4, 5], "n": 2}).class_labels == [4, 5]
    for prompt in ("7", "seven", "a handwritten 7", "Seven."):
        assert generator.request_model({"prompt": prompt}).class_labels == [7]
    for prompt, named in (("a cat", "no digit"), ("3 or 4", "several digits [3, 4]"), ("77", "no digit")):
        with pytest.raises(ApiError, match=rf"`prompt`: `{generator.model.name}` draws a digit and .* names {re.escape(named)}; "
                                           r"it understands a prompt naming one digit"):
            generator.request_model({"prompt": prompt})
    with pytest.raises(BadRequest, match=r"draws 16x16 images only, got '32x32'"):
        generator.request_model({"size": "32x32"})
    four, five = (generator.generate({"class_labels": [label], "seed": 1}).images for label in (4, 5))
    assert four != five
