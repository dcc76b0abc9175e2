"""Load benchmark of the server on loopback: requests/s and p50/p95 latency, cached vs uncached, at 1, 4 and 16
concurrent clients; every response is compared with the same request run alone (identical PNG bytes).

    python -m runners.serve_bench                      # embedded tiny DiT, its DBCache preset; prints a table
    python -m runners.serve_bench --requests 32 --repeats 3 --steps 28

Bounded: `--requests` per cell, `--timeout` per request. Cells run interleaved (`--repeats` rounds over all
cells), and each cell's requests/s is the median over rounds, so machine load drifts affect both modes alike.
"""

from __future__ import annotations

import argparse
import base64
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import uvicorn

from cachedit.config_formats import load_config
from cachedit.configs import ModelConfig
from cachedit.harness.pipelines import load_pipeline
from cachedit.serving.app import build_app
from cachedit.serving.config import ServerConfig
from cachedit.serving.generator import CachedGenerator

ROOT_CONF = "conf/preset/tiny_dit_dbcache.yaml"
MODES = {"uncached": {"name": "none"}, "cached": None}  # None: the server's preset


def start_server(steps: int) -> tuple[uvicorn.Server, str]:
    model = ModelConfig(name="tiny_dit", source="embedded", torch_dtype="float32", num_inference_steps=steps)
    server_config = ServerConfig(port=0, max_images=16)
    generator = CachedGenerator(load_pipeline(model), model, load_config(ROOT_CONF), server_config)
    server = uvicorn.Server(uvicorn.Config(build_app(generator), host="127.0.0.1", port=0, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}"


def body(seed: int, mode: str, steps: int) -> dict:
    request = {"class_labels": [seed % 10], "seed": seed, "num_inference_steps": steps, "guidance_scale": 2.0}
    return request if MODES[mode] is None else {**request, "cache_config": MODES[mode]}


def post(client: httpx.Client, request: dict) -> tuple[float, list[bytes], dict]:
    start = time.perf_counter()
    response = client.post("/v1/images/generations", json=request)
    response.raise_for_status()
    data = response.json()
    return time.perf_counter() - start, [base64.b64decode(d["b64_json"]) for d in data["data"]], data["cache"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=16, help="requests per cell and round")
    parser.add_argument("--repeats", type=int, default=2, help="interleaved rounds over all cells")
    parser.add_argument("--steps", type=int, default=28)
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per request")
    args = parser.parse_args()

    server, url = start_server(args.steps)
    client = httpx.Client(base_url=url, timeout=args.timeout,
                          limits=httpx.Limits(max_connections=max(args.clients)))
    seeds = range(args.requests)
    alone, skipped = {}, {}
    for mode in MODES:  # the reference: every request run alone
        for seed in seeds:
            _, images, cache = post(client, body(seed, mode, args.steps))
            alone[mode, seed] = images
            skipped.setdefault(mode, []).append(cache["skipped_share"])
    cells = {(mode, n): {"rps": [], "latency": [], "exact": 0} for n in args.clients for mode in MODES}
    for _ in range(args.repeats):
        for (mode, n), cell in cells.items():
            with ThreadPoolExecutor(n) as pool:
                start = time.perf_counter()
                results = list(pool.map(lambda seed: (seed, post(client, body(seed, mode, args.steps))), seeds))
                cell["rps"].append(len(results) / (time.perf_counter() - start))
            cell["latency"] += [latency for _, (latency, _, _) in results]
            cell["exact"] += sum(images == alone[mode, seed] for seed, (_, images, _) in results)
    client.close()
    server.should_exit = True

    total = args.requests * args.repeats
    print(f"tiny_dit (embedded), {args.steps} steps, guidance 2.0, {args.requests} requests per cell x "
          f"{args.repeats} interleaved rounds; cached = conf/preset/tiny_dit_dbcache.yaml\n")
    print("| mode | clients | req/s (median) | p50 latency s | p95 latency s | skipped blocks | identical to alone |")
    print("|---|---|---|---|---|---|---|")
    for (mode, n), cell in cells.items():
        latencies = sorted(cell["latency"])
        p95 = latencies[min(len(latencies) - 1, round(0.95 * (len(latencies) - 1)))]
        print(f"| {mode} | {n} | {statistics.median(cell['rps']):.2f} | {statistics.median(latencies):.3f} | "
              f"{p95:.3f} | {statistics.mean(skipped[mode]):.1%} | {cell['exact']}/{total} |")
    for n in args.clients:
        ratio = statistics.median(cells["cached", n]["rps"]) / statistics.median(cells["uncached", n]["rps"])
        print(f"\ncached/uncached req/s at {n} clients: {ratio:.2f}x", end="")
    print()


if __name__ == "__main__":
    main()
