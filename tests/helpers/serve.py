"""A real `python -m runners.serve` process on 127.0.0.1 (a free port) and an HTTP client to it."""

import base64
import contextlib
import os
import socket
import subprocess
import sys
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
def serve(*overrides: str):
    """Start the server with these Hydra overrides; yield a client once `/health` answers; stop it after."""
    port = free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "runners.serve", f"server.port={port}", *overrides],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60)
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


def pngs(body: dict) -> list[bytes]:
    return [base64.b64decode(item["b64_json"]) for item in body["data"]]
