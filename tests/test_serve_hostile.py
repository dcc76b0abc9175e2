"""A hostile client against a real `python -m runners.serve` process on 127.0.0.1 (issue #23): every crafted value
is a 400 naming the field (never a 500), bodies over the limit are 413 before they are read, a full queue is 429,
the API key and the Host check hold, `/metrics` counts every response by its final status, and after each of them
a normal request is byte-identical to the same request alone."""

import json
import socket
import threading
import time

import pytest

from cachedit.config_formats import load_config
from tests.helpers.serve import counter, pngs, read_response, serve

KEY = "hostile-test-key"
ROUTE = "/v1/images/generations"
NORMAL = {"class_labels": [3, 8], "num_inference_steps": 8, "guidance_scale": 2.0, "seed": 11}
# uncached, 8 images x 2000 steps: tens of seconds; only ever stopped by its timeout or its client
LONG = {"class_labels": [1, 2], "n": 2, "num_inference_steps": 2000, "guidance_scale": 2.0, "seed": 9,
        "cache_config": {"name": "none"}}
BODY_LIMIT = 65536


@pytest.fixture(scope="module")
def server():
    # the key comes through the environment variable; the up-front work estimate is off (LONG must start)
    with serve("server.max_images=4", "server.max_inference_steps=2000", f"server.max_body_bytes={BODY_LIMIT}",
               "server.max_queue=2", "server.allowed_hosts=[127.0.0.1,localhost]", "server.request_timeout_s=30",
               "server.deadline_estimate_share=0", headers={"Authorization": f"Bearer {KEY}"},
               env={"CACHEDIT_API_KEY": KEY}) as client:
        yield client


@pytest.fixture(scope="module")
def alone(server) -> list[bytes]:
    return normal(server)


def normal(client) -> list[bytes]:
    response = client.post(ROUTE, json=NORMAL)
    assert response.status_code == 200, response.text
    return pngs(response.json())


def strict_conversion_merged() -> bool:
    """Whether the library's config conversion refuses a string for a bool (the strict-config issue)."""
    try:
        load_config({"enable_taylorseer": "false"})
    except (ValueError, TypeError):
        return True
    return False


PENDING_STRICT = pytest.mark.xfail(not strict_conversion_merged(), strict=True,
                                   reason="needs the library's strict config conversion (strict-config issue)")

# (raw JSON of the extra fields, the field named, a fragment of the message)
HOSTILE = [
    ('"seed": 18446744073709551616', "seed", "less than or equal to 18446744073709551615, got 18446744073709551616"),
    ('"seed": 1180591620717411303424', "seed", "less than or equal to 18446744073709551615"),
    ('"seed": -9223372036854775809', "seed", "greater than or equal to 0"),
    ('"guidance_scale": 1e308', "guidance_scale", "less than or equal to 100"),
    ('"guidance_scale": "inf"', "guidance_scale", "valid number, got 'inf'"),
    ('"guidance_scale": "Infinity"', "guidance_scale", "valid number"),
    ('"guidance_scale": NaN', "guidance_scale", "finite number"),
    ('"guidance_scale": true', "guidance_scale", "valid number, got True"),
    ('"timeout_s": Infinity', "timeout_s", "finite number"),
    ('"timeout_s": 1e309', "timeout_s", "finite number"),
    ('"num_inference_steps": "8"', "num_inference_steps", "valid integer"),
    ('"num_inference_steps": 8.5', "num_inference_steps", "valid integer"),
    ('"n": 1e3', "n", "valid integer"),
    ('"size": "100000x100000"', "size", "draws 16x16 images only"),
    ('"class_labels": [3, "8"]', "class_labels[1]", "valid integer"),
    ('"prompt": "a photo of a cat", "class_labels": null', "prompt", "names no digit; it understands"),
    ('"cache_config": {"residual_diff_threshold": NaN}', "cache_config.residual_diff_threshold", "finite number"),
    ('"cache_config": {"scm": {"mask": "custom", "compute_steps": [0, 1000]}}', "cache_config",
     "`scm.compute_steps` [1000] lie beyond this request's 8 steps"),
    ('"cache_config": {"Fn_compute_blocks": 6}', "cache_config", "must be smaller than the 6 blocks"),
    ('"response_format": "url"', "response_format", "Input should be 'b64_json'"),
    ('"user": "x"', "user", "unknown field; allowed: prompt, class_labels"),
    ('"seed": 1' + "0" * 5000, None, "not valid JSON"),
]
STRICT = [  # refused by the library's strict conversion, which the server routes `cache_config` through
    ('"cache_config": {"Fn_compute_blocks": 1.5}', "cache_config", "Fn_compute_blocks"),
    ('"cache_config": {"taylorseer_order": 2.5}', "cache_config", "taylorseer_order"),
    ('"cache_config": {"per_transformer": "x"}', "cache_config", "per_transformer"),
    ('"cache_config": {"enable_taylorseer": "false"}', "cache_config", "enable_taylorseer"),
    ('"cache_config": {"Fn_compute_blocks": true}', "cache_config", "Fn_compute_blocks"),
    ('"cache_config": {"max_warmup_steps": 2.5}', "cache_config", "max_warmup_steps"),
    ('"cache_config": {"cache_encoder": "no"}', "cache_config", "cache_encoder"),
    ('"cache_config": {"name": ["x"]}', "cache_config", "`name`"),  # was raw Python text: unhashable type: 'list'
]


def raw_request(extra: str) -> bytes:
    base = json.dumps(NORMAL)[1:-1]
    return ("{" + base + ", " + extra + "}").encode()


def check_refused(server, alone, extra: str, param, fragment: str) -> None:
    before = counter(server, ROUTE, 400)
    response = server.post(ROUTE, content=raw_request(extra), headers={"content-type": "application/json"})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == param and fragment in error["message"], error
    assert error["type"] == "invalid_request_error" and len(response.content) < 1200
    assert response.headers["x-should-retry"] == "false"
    assert counter(server, ROUTE, 400) == before + 1
    assert normal(server) == alone


@pytest.mark.parametrize("extra,param,fragment", HOSTILE, ids=[case[0][:40] for case in HOSTILE])
def test_a_hostile_value_is_a_400_naming_the_field_and_the_next_request_is_exact(server, alone, extra, param,
                                                                                  fragment):
    check_refused(server, alone, extra, param, fragment)


@PENDING_STRICT
@pytest.mark.parametrize("extra,param,fragment", STRICT, ids=[case[0][:40] for case in STRICT])
def test_a_cache_config_of_the_wrong_type_is_a_400_naming_the_key(server, alone, extra, param, fragment):
    check_refused(server, alone, extra, param, fragment)


def test_a_huge_value_is_echoed_only_by_a_short_prefix(server, alone):
    response = server.post(ROUTE, json={**NORMAL, "prompt": "x" * 60000, "class_labels": None})
    assert response.status_code == 400 and len(response.content) < 1200, response.text[:300]
    assert response.json()["error"]["param"] == "prompt" and "... (60002 chars)" in response.json()["error"]["message"]
    assert normal(server) == alone


def send_raw(port: int, head: bytes, body: bytes = b"") -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head + body)
        return read_response(sock)


def test_a_body_over_the_limit_is_413_before_it_is_read(server, alone):
    before = counter(server, ROUTE, 413)
    # announced as 50 MB and never sent: answered from the header alone
    head = (f"POST {ROUTE} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {KEY}\r\n"
            f"Content-Type: application/json\r\nContent-Length: 50000000\r\n\r\n").encode()
    answer = send_raw(server.base_url.port, head)
    assert answer.startswith(b"HTTP/1.1 413") and b'"code":"body_too_large"' in answer, answer[:300]
    # chunked (no length announced): stopped once the limit is passed
    labels = json.dumps({"class_labels": [1] * 100000}).encode()
    response = server.post(ROUTE, content=iter([labels[i:i + 8192] for i in range(0, len(labels), 8192)]),
                           headers={"content-type": "application/json"})
    assert response.status_code == 413, response.text
    assert f"at most {BODY_LIMIT} bytes (`server.max_body_bytes`)" in response.json()["error"]["message"]
    assert counter(server, ROUTE, 413) == before + 2
    assert normal(server) == alone


def post_in_thread(server, results: dict, name: str, request: dict) -> threading.Thread:
    thread = threading.Thread(target=lambda: results.__setitem__(name, server.post(ROUTE, json=request)))
    thread.start()
    return thread


def gauge(server, name: str) -> int:
    line = next(line for line in server.get("/metrics").text.splitlines() if line.startswith(name + " "))
    return int(line.split()[1])


def test_a_full_queue_answers_429_with_retry_after(server, alone):
    results = {}
    threads = [post_in_thread(server, results, f"long{i}", {**LONG, "timeout_s": 4}) for i in range(2)]
    deadline = time.monotonic() + 30
    while gauge(server, "cachedit_queue_admitted") < 2:  # one runs, one waits for the pipeline
        assert time.monotonic() < deadline, "the long requests were not admitted"
        time.sleep(0.05)
    refused = server.post(ROUTE, json=NORMAL)
    for thread in threads:
        thread.join(timeout=60)
    assert refused.status_code == 429, refused.text
    assert int(refused.headers["retry-after"]) >= 1 and refused.headers["x-should-retry"] == "true"
    assert "`server.max_queue`" in refused.json()["error"]["message"]
    assert sorted(result.status_code for result in results.values()) == [504, 504]
    assert normal(server) == alone


def test_the_api_key_is_required_everywhere_but_health(server, alone):
    import httpx

    with httpx.Client(base_url=server.base_url, timeout=30) as anonymous:
        assert anonymous.get("/health").status_code == 200
        for method, path in (("POST", ROUTE), ("GET", "/v1/models"), ("GET", "/metrics"), ("GET", "/openapi.json"),
                             ("POST", "/v1/images/edits")):
            for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": KEY}):
                response = anonymous.request(method, path, json=NORMAL, headers=headers)
                assert response.status_code == 401, (path, headers, response.text)
                assert response.json()["error"]["param"] == "Authorization"
                assert response.headers["www-authenticate"] == "Bearer"
    assert normal(server) == alone


def test_a_host_not_allowed_is_refused(server, alone):
    refused = server.post(ROUTE, json=NORMAL, headers={"Host": "attacker.example"})
    assert refused.status_code == 400 and refused.json()["error"]["param"] == "Host"
    assert server.get("/v1/models", headers={"Host": "localhost:1234"}).status_code == 200
    assert normal(server) == alone


def test_metrics_count_every_response_by_its_final_status(server, alone):
    statuses = (200, 400, 401, 404, 413, 499, 504)
    before = {status: counter(server, ROUTE, status) for status in statuses}
    normal(server)
    server.post(ROUTE, json={**NORMAL, "seed": -1})
    server.post(ROUTE, json={**NORMAL, "sizes": "16x16"})
    server.post(ROUTE, json=NORMAL, headers={"Authorization": "Bearer wrong"})
    server.post(ROUTE, json={**NORMAL, "model": "flux"})
    server.post(ROUTE, json={**NORMAL, "class_labels": [1] * 50000})
    assert server.post(ROUTE, json={**NORMAL, "timeout_s": 1e-6}).status_code == 504
    body = json.dumps(LONG).encode()
    head = (f"POST {ROUTE} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {KEY}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode()
    with socket.create_connection(("127.0.0.1", server.base_url.port), timeout=5) as sock:
        sock.sendall(head + body)
        time.sleep(0.5)  # it runs; then the client goes away
    deadline = time.monotonic() + 20
    while counter(server, ROUTE, 499) == before[499]:
        assert time.monotonic() < deadline, "the disconnected request was not counted"
        time.sleep(0.1)
    after = {status: counter(server, ROUTE, status) - before[status] for status in statuses}
    assert after == {200: 1, 400: 2, 401: 1, 404: 1, 413: 1, 499: 1, 504: 1}
    metrics = server.get("/metrics").text
    assert f'cachedit_response_seconds_count{{route="{ROUTE}"}} ' in metrics
    assert "cachedit_cached_step_share_bucket{le=\"1\"} " in metrics
    assert normal(server) == alone
