"""Real clients and server faults, on servers built in this process and served by uvicorn on 127.0.0.1: the
official `openai` SDK unmodified on both embedded models (generate, edit, models, errors without retries), a
server fault as a 500 with a request id on a connection that stays usable, the header timeout, the up-front work
estimate, and `size` checked against `server.max_pixels` on a hub model."""

import base64
import io
import logging
import re
import socket

import openai
import pytest
import torch
from PIL import Image

from cachedit.config_formats import load_config
from cachedit.zoo.model_config import ModelConfig
from cachedit.harness.pipelines import load_pipeline
from cachedit.serving.app import build_app
from cachedit.serving.config import ServerConfig
from cachedit.serving.generator import BadRequest, CachedGenerator, RequestTimeout
from tests.helpers.serve import counter, pngs, read_response, serve_in_thread

KEY = "client-test-key"
ROUTE = "/v1/images/generations"


def make_generator(name: str, **server) -> CachedGenerator:
    model = ModelConfig(name=name, source="embedded", torch_dtype="float32", num_inference_steps=8,
                        guidance_scale=2.0)
    cached = load_config({"Fn_compute_blocks": 1, "residual_diff_threshold": 0.2, "max_warmup_steps": 2})
    return CachedGenerator(load_pipeline(model), model, cached, ServerConfig(**{"max_images": 4, **server}))


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module", params=["tiny_dit", "tiny_flux"])
def served(request):
    generator = make_generator(request.param, api_key=KEY)
    with serve_in_thread(build_app(generator), generator.server, headers={"Authorization": f"Bearer {KEY}"}) as client:
        sdk = openai.OpenAI(base_url=f"{client.base_url}/v1", api_key=KEY)
        yield request.param, client, sdk


def test_the_openai_sdk_generates_unmodified_from_a_prompt_naming_a_digit(served):
    name, client, sdk = served
    result = sdk.images.generate(prompt="a handwritten 7", n=2, size="16x16", response_format="b64_json",
                                 extra_body={"seed": 3})
    images = [base64.b64decode(image.b64_json) for image in result.data]
    assert len(images) == 2 and all(image.startswith(b"\x89PNG") for image in images)
    direct = client.post(ROUTE, json={"class_labels": [7], "n": 2, "seed": 3})
    assert pngs(direct.json()) == images  # "a handwritten 7" is class 7
    plain = sdk.images.generate(prompt="seven", response_format="b64_json", extra_body={"seed": 3})
    one = client.post(ROUTE, json={"class_labels": [7], "seed": 3})
    assert [base64.b64decode(plain.data[0].b64_json)] == pngs(one.json())
    assert [model.id for model in sdk.models.list()] == [name] and sdk.models.retrieve(name).id == name
    with pytest.raises(openai.NotFoundError):
        sdk.models.retrieve("dall-e-3")


def test_sdk_errors_are_not_retried(served):
    name, client, sdk = served
    bad, timeouts = counter(client, ROUTE, 400), counter(client, ROUTE, 504)
    with pytest.raises(openai.BadRequestError, match=r"understands a prompt naming one digit"):
        sdk.images.generate(prompt="a photo of a cat", response_format="b64_json")
    with pytest.raises(openai.APIStatusError) as stopped:
        sdk.images.generate(prompt="3", response_format="b64_json", extra_body={"timeout_s": 1e-6})
    assert stopped.value.status_code == 504
    # the SDK retries 5xx and 504 twice by default; `x-should-retry: false` makes each one request
    assert counter(client, ROUTE, 400) == bad + 1 and counter(client, ROUTE, 504) == timeouts + 1


def test_an_edit_through_the_sdk_redraws_the_given_share(served):
    name, client, sdk = served
    source = pngs(client.post(ROUTE, json={"class_labels": [4], "seed": 5}).json())[0]
    if name == "tiny_flux":  # a FluxPipeline over a pixel-shuffle VAE: no image-to-image variant
        with pytest.raises(openai.BadRequestError, match="has no image-to-image variant"):
            sdk.images.edit(image=("four.png", source, "image/png"), prompt="4", response_format="b64_json")
        return
    full = sdk.images.edit(image=("four.png", source, "image/png"), prompt="4", response_format="b64_json",
                           extra_body={"seed": 5, "strength": 1.0})
    assert base64.b64decode(full.data[0].b64_json) == source  # strength 1: pure noise, the same draw
    edits = [client.post("/v1/images/edits", files={"image": ("four.png", source, "image/png")},
                         data={"prompt": "9", "seed": "1", "strength": "0.5", "cache_config": '{"name": "none"}'})
             for _ in range(2)]
    assert all(edit.status_code == 200 for edit in edits), edits[0].text
    assert pngs(edits[0].json()) == pngs(edits[1].json()) != [source]
    assert edits[0].json()["usage"]["denoising_steps"] == 4  # half of 8
    wrong = client.post("/v1/images/edits", files={"image": ("big.png", png_of(32), "image/png")},
                        data={"prompt": "9"})
    assert wrong.status_code == 400 and "edits 16x16 images, got 32x32" in wrong.json()["error"]["message"]


def png_of(side: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (side, side)).save(buffer, format="PNG")
    return buffer.getvalue()


def http_exchange(sock: socket.socket, request: bytes) -> bytes:
    sock.sendall(request)
    return read_response(sock)


def test_a_server_fault_is_a_500_with_a_request_id_and_the_connection_stays_usable(caplog):
    generator = make_generator("tiny_dit")

    def broken(*args, **kwargs):
        raise RuntimeError("a bug inside the server")

    generator.generate = broken
    with serve_in_thread(build_app(generator), generator.server) as client, caplog.at_level(logging.ERROR):
        body = b'{"class_labels": [1]}'
        post = (b"POST /v1/images/generations HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        with socket.create_connection(("127.0.0.1", client.base_url.port), timeout=10) as sock:
            first = http_exchange(sock, post)
            second = http_exchange(sock, b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")  # same connection
        assert first.startswith(b"HTTP/1.1 500") and second.startswith(b"HTTP/1.1 200"), (first, second)
        assert b"RuntimeError" not in first and b'"type":"server_error"' in first
        request_id = first.split(b'"request_id":"')[1].split(b'"')[0].decode()
        assert f"x-request-id: {request_id}".encode() in first.lower()
        assert any(request_id in record.getMessage() and record.exc_info for record in caplog.records)
        assert counter(client, ROUTE, 500) == 1


def test_a_connection_that_sends_no_request_is_closed():
    generator = make_generator("tiny_dit", header_timeout_s=0.5)
    with serve_in_thread(build_app(generator), generator.server) as client:
        with socket.create_connection(("127.0.0.1", client.base_url.port), timeout=20) as sock:
            assert sock.recv(1024) == b""  # closed by the server (a socket timeout would raise)
        assert client.get("/health").status_code == 200


def test_work_that_cannot_fit_before_the_deadline_is_refused_before_it_starts():
    generator = make_generator("tiny_dit", request_timeout_s=60)
    generator.generate({"seed": 0, "num_inference_steps": 3})
    measured = generator.rate.fastest
    assert measured is not None and measured > 0  # timed between the steps of a real run
    # a request whose estimate (steps x images x pixels x rate) is 4 s, against a 1 s deadline: not started
    request = {"seed": 0, "class_labels": [1], "num_inference_steps": 8, "timeout_s": 1.0}
    generator.rate.fastest = 4.0 / (8 * 1 * 256)
    with pytest.raises(RequestTimeout, match=r"would exceed its timeout of 1 s: its work is estimated at 4 s"):
        generator.generate(request)
    generator.rate.fastest = 1.0 / (8 * 1 * 256)  # half of 1 s fits within the deadline: it runs
    assert len(generator.generate(request).images) == 1


class HubStandIn:
    """A stand-in for a hub pipeline: `request_model` checks sizes before any pipeline work."""

    device = torch.device("cpu")

    def set_progress_bar_config(self, **kwargs) -> None:
        pass

    def __call__(self, prompt=None, height=None, width=None, callback_on_step_end=None):
        raise AssertionError("never called by these checks")


@pytest.mark.parametrize("size,message", [
    ("100000x100000", "`size` 100000x100000 = 10000000000 pixels exceeds `server.max_pixels`=1048576"),
    ("1024x2048", "exceeds `server.max_pixels`=1048576"),
    ("1000x1000", "`size` sides must be positive multiples of 16"),
    ("0x512", "`size` sides must be positive multiples of 16"),
])
def test_a_hub_model_size_is_checked_against_max_pixels(size, message):
    model = ModelConfig(name="flux", source="replica")
    generator = CachedGenerator(HubStandIn(), model, load_config({}), ServerConfig())
    with pytest.raises(BadRequest, match=re.escape(message)) as refused:
        generator.request_model({"size": size, "prompt": "a fox"})
    assert refused.value.param == "size"
    assert generator.request_model({"size": "1024x1024", "prompt": "a fox"}).width == 1024


@pytest.mark.slow  # the FLUX replica: ~10 s per call on 2 cores
def test_an_edit_on_the_flux_replica_runs_flux_img2img_with_the_cache():
    model = ModelConfig(name="flux", source="replica", torch_dtype="float32", num_inference_steps=4)
    cached = load_config({"Fn_compute_blocks": 1, "residual_diff_threshold": 0.2, "max_warmup_steps": 1})
    generator = CachedGenerator(load_pipeline(model), model, cached, ServerConfig(max_images=2))
    with serve_in_thread(build_app(generator), generator.server) as client:
        source = client.post(ROUTE, json={"prompt": "a fox", "seed": 1, "size": "64x64"})
        assert source.status_code == 200, source.text
        edit = {"files": {"image": ("fox.png", pngs(source.json())[0], "image/png")},
                "data": {"prompt": "a fox", "seed": "2", "strength": "0.5"}}
        first, second = client.post("/v1/images/edits", **edit), client.post("/v1/images/edits", **edit)
    assert first.status_code == 200, first.text
    assert type(generator.img2img_pipeline()).__name__ == "FluxImg2ImgPipeline"
    assert first.json()["cache"]["steps"] == 2 and first.json()["cache"]["config"]["cache"].startswith("DBCache_F1B0")
    assert pngs(first.json()) == pngs(second.json())  # fresh cache state per request
