"""A real server on 127.0.0.1 and an HTTP client to it: `serve` starts a `python -m runners.serve` process,
`serve_in_thread` runs an app built in this process under uvicorn (the server's own settings) in a thread."""

import base64
import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
STARTUP_S = 240  # importing torch/diffusers on a loaded 2-core machine; polled, so usually far less


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def serve(*overrides: str, headers: dict | None = None, env: dict | None = None):
    """Start the server with these Hydra overrides; yield a client once `/health` answers; stop it after."""
    port = free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    process = subprocess.Popen(
        [sys.executable, "-m", "runners.serve", f"server.port={port}", *overrides],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60, headers=headers)
    try:
        deadline = time.monotonic() + STARTUP_S
        while True:
            assert process.poll() is None, process.stdout.read()
            try:
                if client.get("/health").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.5)
        yield client
    finally:
        client.close()
        process.terminate()
        process.wait(timeout=30)


@contextlib.contextmanager
def serve_in_thread(app, server_config, headers: dict | None = None):
    """`app` under uvicorn with `server_config`'s settings on 127.0.0.1 (a free port), in a daemon thread."""
    import uvicorn

    from cachedit.serving.protocol import uvicorn_config

    server = uvicorn.Server(uvicorn_config(app, server_config, port=free_port()))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        assert thread.is_alive(), "server did not start"
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60, headers=headers)
    try:
        yield client
    finally:
        client.close()
        server.should_exit = True
        thread.join(timeout=30)


def read_response(sock: socket.socket) -> bytes:
    """One whole HTTP/1.1 response (head and `Content-Length` body) from `sock`, however it is segmented."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed mid-response: {data[:200]!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lengths = [line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")]
    while len(body) < int(lengths[0]) if lengths else False:
        chunk = sock.recv(65536)
        assert chunk, "connection closed mid-body"
        body += chunk
    return head + b"\r\n\r\n" + body


def pngs(body: dict) -> list[bytes]:
    return [base64.b64decode(item["b64_json"]) for item in body["data"]]


def counter(client, route: str, status: int) -> int:
    """`cachedit_responses_total` for one route and status, read from `/metrics`."""
    prefix = f'cachedit_responses_total{{route="{route}",status="{status}"}} '
    lines = [line for line in client.get("/metrics").text.splitlines() if line.startswith(prefix)]
    return int(lines[0].rsplit(" ", 1)[1]) if lines else 0
