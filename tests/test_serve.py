"""A real `python -m runners.serve` process on 127.0.0.1 and a real HTTP client: generation, per-request overrides,
bad requests (4xx naming the key, the server still serves), concurrency and aborted requests (results exact)."""

import socket
import threading

import pytest

from tests.helpers.serve import pngs, serve

BASE = {"class_labels": [3, 7], "num_inference_steps": 16, "guidance_scale": 2.0}


@pytest.fixture(scope="module")
def server():
    with serve("server.max_images=4") as client:
        yield client


def generate(client, **request) -> dict:
    response = client.post("/v1/images/generations", json={**BASE, **request})
    assert response.status_code == 200, response.text
    return response.json()


def test_generate_returns_pngs_and_the_request_cache_summary(server):
    body = generate(server, seed=0, n=2)
    images = pngs(body)
    assert len(images) == 4 and all(image.startswith(b"\x89PNG") for image in images)
    # conf/preset/tiny_dit_dbcache.yaml: F1B0, threshold 0.1, warmup 4
    assert body["cache"]["config"]["cache"] == "DBCache_F1B0_W4_M-1_MC-1_R0.1"
    assert body["cache"]["steps"] == 16 and 0 < body["cache"]["cached_steps"] < 16
    assert server.get("/v1/models").json()["data"][0]["id"] == "tiny_dit"  # no api key set: no header needed
    assert server.get("/v1/models/tiny_dit").json()["id"] == "tiny_dit"
    missing = server.get("/v1/models/flux")
    assert missing.status_code == 404 and missing.json()["error"]["param"] == "model"
    assert body["usage"] == {"images": 4, "denoising_steps": 16, "cached_steps": body["cache"]["cached_steps"],
                             "seconds": body["cache"]["seconds"]}


def test_per_request_override_applies_to_that_request_only(server):
    default = generate(server, seed=1)
    uncached = generate(server, seed=1, cache_config={"name": "none"})
    assert uncached["cache"]["config"]["cache"] == "none" and uncached["cache"]["cached_steps"] == 0
    eager = generate(server, seed=1, cache_config={"Fn_compute_blocks": 1, "residual_diff_threshold": 0.5,
                                                   "max_warmup_steps": 2})
    assert eager["cache"]["config"]["cache"] == "DBCache_F1B0_W2_M-1_MC-1_R0.5"
    assert eager["cache"]["cached_steps"] > default["cache"]["cached_steps"]
    assert pngs(eager) != pngs(uncached)
    again = generate(server, seed=1)
    assert pngs(again) == pngs(default) and again["cache"]["cached_steps"] == default["cache"]["cached_steps"]


@pytest.mark.parametrize("request_body,status,message", [
    ({"cache_config": {"Fn_compute_block": 1}}, 400, "Unknown cache config keys ['Fn_compute_block']; allowed:"),
    ({"cache_config": {"Fn_compute_blocks": 0}}, 400, "`Fn` must be >= 1"),
    ({"cache_config": {"Fn_compute_blocks": 6}}, 400, "`Fn` + `Bn` = 6 + 0 = 6 must be smaller than the 6 blocks"),
    ({"size": "64x64"}, 400, "`size`: `tiny_dit` draws 16x16 images only"),
    ({"size": "big"}, 400, "`size`: String should match pattern"),
    ({"num_inference_steps": 0}, 400, "`num_inference_steps`: Input should be greater than or equal to 1, got 0."),
    ({"class_labels": [12]}, 400, "`class_labels[0]`: Input should be less than or equal to 9, got 12."),
    ({"n": 3}, 400, "`n` x labels = 6 images exceeds `server.max_images`=4"),
    ({"sizes": "16x16"}, 400, "`sizes`: unknown field; allowed: prompt, class_labels, model, n, size"),
])
def test_bad_requests_name_the_key_and_the_server_still_serves(server, request_body, status, message):
    response = server.post("/v1/images/generations", json={**BASE, **request_body})
    assert response.status_code == status
    error = response.json()["error"]
    assert message in error["message"] and error["type"] == "invalid_request_error"
    assert response.headers["x-should-retry"] == "false"
    assert len(generate(server, seed=0, num_inference_steps=2)["data"]) == 2


def test_concurrent_requests_equal_their_sequential_results(server):
    seeds = list(range(8))
    alone = {seed: pngs(generate(server, seed=seed, cache_config={"residual_diff_threshold": 0.05 * (seed % 4)}))
             for seed in seeds}
    results, errors = {}, []

    def client_thread(seed):
        try:
            results[seed] = pngs(generate(server, seed=seed, cache_config={"residual_diff_threshold": 0.05 * (seed % 4)}))
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=client_thread, args=(seed,)) for seed in seeds]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors and results == alone


def test_an_aborted_request_leaves_the_next_exact(server):
    expected = pngs(generate(server, seed=5))
    port = server.base_url.port
    for _ in range(3):  # the client goes away (before or during the work): the work stops, the next is fresh
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            body = b'{"class_labels": [1, 2], "num_inference_steps": 30, "seed": 9}'
            sock.sendall(b"POST /v1/images/generations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    assert pngs(generate(server, seed=5)) == expected
    metrics = server.get("/metrics").text
    assert 'cachedit_responses_total{route="/v1/images/generations",status="400"}' in metrics
    assert "cachedit_cached_step_share_count " in metrics
