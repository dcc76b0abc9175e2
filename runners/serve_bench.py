"""Load benchmark of the server on loopback: requests/s and p50/p95 latency, cached vs uncached, at 1, 4 and 16
concurrent clients; every response is compared with the same request run alone (identical PNG bytes). Then the
same good traffic twice more, calm and under attack (`--attackers` clients sending bad values and bodies over
`server.max_body_bytes` without a length), with `/health` probed throughout: good requests' latency and
exactness, `/health` latency, and how the bad traffic was answered.

    python -m runners.serve_bench                      # embedded tiny DiT, its DBCache preset; prints the tables
    python -m runners.serve_bench --requests 32 --repeats 3 --steps 28
    python -m runners.serve_bench --clients 4 --repeats 1 --attackers 3 --oversize-mb 4

Bounded: `--requests` per cell, `--timeout` per request; attackers stop when the good traffic ends. Cells run
interleaved (`--repeats` rounds over all cells), and each cell's requests/s is the median over rounds, so machine
load drifts affect both modes alike.
"""

from __future__ import annotations

import argparse
import base64
import socket
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx

MODES = {"uncached": {"name": "none"}, "cached": None}  # None: the server's preset


def start_server() -> tuple[subprocess.Popen, str]:
    """`python -m runners.serve` (tiny DiT, its DBCache preset) in its own process, as users run it: the bench's
    client threads do not share the server's interpreter."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen([sys.executable, "-m", "runners.serve", f"server.port={port}", "server.max_images=16"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while True:
        assert process.poll() is None and time.monotonic() < deadline, "the server did not start"
        try:
            if httpx.get(f"{url}/health").status_code == 200:
                return process, url
        except httpx.TransportError:
            time.sleep(0.5)


def body(seed: int, mode: str, steps: int) -> dict:
    request = {"class_labels": [seed % 10], "seed": seed, "num_inference_steps": steps, "guidance_scale": 2.0}
    return request if MODES[mode] is None else {**request, "cache_config": MODES[mode]}


def post(client: httpx.Client, request: dict) -> tuple[float, list[bytes], dict]:
    start = time.perf_counter()
    response = client.post("/v1/images/generations", json=request)
    response.raise_for_status()
    data = response.json()
    return time.perf_counter() - start, [base64.b64decode(d["b64_json"]) for d in data["data"]], data["cache"]


# bad values of every kind the hostile-client probe of issue #23 sent; each must come back 4xx, never 5xx
BAD_BODIES = [
    b'{"class_labels": [1], "seed": 18446744073709551616}', b'{"class_labels": [1], "guidance_scale": NaN}',
    b'{"class_labels": [1], "guidance_scale": "inf"}', b'{"class_labels": [1], "timeout_s": 1e309}',
    b'{"class_labels": [1], "guidance_scale": true}', b'{"class_labels": [1], "sizes": "16x16"}',
    b'{"prompt": "a photo of a cat"}', b'{"class_labels": [1], "cache_config": {"Fn_compute_blocks": 99}}',
    b'{"class_labels": [1], "cache_config": {"scm": {"mask": "custom", "compute_steps": [1000]}}}',
    b'{"class_labels": [1], "size": "100000x100000"}', b'{"class_labels": [1] "seed": 1}', b'[1, 2, 3]',
]


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def attack(url: str, stop: threading.Event, oversize: int, answers: dict, lock: threading.Lock) -> None:
    """Bad values and oversized bodies (streamed without a Content-Length) until `stop`."""
    chunk = b"[" + b"1," * 32767 + b"1]"
    with httpx.Client(base_url=url, timeout=60) as client:
        for i in range(10**9):
            if stop.is_set():
                return
            if i % 2:
                content = iter([b'{"class_labels": '] + [chunk] * max(1, oversize // len(chunk)) + [b"}"])
            else:
                content = BAD_BODIES[(i // 2) % len(BAD_BODIES)]
            try:
                status = client.post("/v1/images/generations", content=content,
                                     headers={"content-type": "application/json"}).status_code
            except httpx.TransportError:  # the server may close a connection whose body it refused mid-way
                status = "closed"
            with lock:
                answers[status] = answers.get(status, 0) + 1


def probe_health(url: str, stop: threading.Event, latencies: list[float]) -> None:
    with httpx.Client(base_url=url, timeout=60) as client:
        while not stop.is_set():
            start = time.perf_counter()
            client.get("/health").raise_for_status()
            latencies.append(time.perf_counter() - start)
            time.sleep(0.02)


def traffic_cell(url, client, args, alone, attackers: int) -> dict:
    """The cached good traffic at `max(args.clients)` clients, with `/health` probed and `attackers` attacking."""
    stop, lock = threading.Event(), threading.Lock()
    health, answers = [], {}
    threads = [threading.Thread(target=probe_health, args=(url, stop, health))]
    threads += [threading.Thread(target=attack, args=(url, stop, args.oversize_mb << 20, answers, lock))
                for _ in range(attackers)]
    for thread in threads:
        thread.start()
    latencies, exact = [], 0
    for _ in range(args.repeats):
        with ThreadPoolExecutor(max(args.clients)) as pool:
            results = list(pool.map(lambda seed: (seed, post(client, body(seed, "cached", args.steps))),
                                    range(args.requests)))
        latencies += [latency for _, (latency, _, _) in results]
        exact += sum(images == alone["cached", seed] for seed, (_, images, _) in results)
    stop.set()
    for thread in threads:
        thread.join(timeout=120)
    return {"latency": latencies, "exact": exact, "health": health, "answers": answers}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=16, help="requests per cell and round")
    parser.add_argument("--repeats", type=int, default=2, help="interleaved rounds over all cells")
    parser.add_argument("--steps", type=int, default=28)
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per request")
    parser.add_argument("--attackers", type=int, default=3, help="clients sending bad and oversized requests")
    parser.add_argument("--oversize-mb", type=int, default=4, help="size of each oversized body (limit: 1 MB)")
    args = parser.parse_args()

    server, url = start_server()
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
    calm = traffic_cell(url, client, args, alone, 0)
    attacked = traffic_cell(url, client, args, alone, args.attackers)
    client.close()
    server.terminate()
    server.wait(timeout=30)

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
    print(f"\n\ncached traffic at {max(args.clients)} clients, {total} requests, `/health` probed every 20 ms; "
          f"attack: {args.attackers} clients alternating bad values and {args.oversize_mb} MB bodies without a length\n")
    print("| traffic | good p50 s | good p95 s | identical to alone | /health p50 ms | /health p95 ms | /health max ms "
          "| bad traffic answered |")
    print("|---|---|---|---|---|---|---|---|")
    for name, cell in (("calm", calm), ("under attack", attacked)):
        health = [1000 * h for h in cell["health"]]
        answers = ", ".join(f"{status}: {n}" for status, n in sorted(cell["answers"].items(), key=str)) or "-"
        print(f"| {name} | {statistics.median(cell['latency']):.3f} | {percentile(cell['latency'], 0.95):.3f} | "
              f"{cell['exact']}/{total} | {statistics.median(health):.1f} | {percentile(health, 0.95):.1f} | "
              f"{max(health):.1f} | {answers} |")


if __name__ == "__main__":
    main()
