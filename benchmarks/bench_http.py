"""Benchmark: the scoring service over HTTP on loopback, under concurrent clients.

    python benchmarks/bench_http.py --repo demo/feature_repo --concurrency 50 --seconds 15

Starts ``usage-features serve`` on a free loopback port and sends single-customer
``POST /score`` requests. Closed loop (default): ``--concurrency`` clients each send the next
request as soon as the last is answered, which measures saturation throughput and the latency
at it. The load comes from ``wrk`` where it is installed (``apt-get install wrk``): a Python
client on the same two cores saturates first (httpx: about 220 requests/s, while the server
answers 3,000), so it would measure itself. Without wrk, or with ``--rate R`` (open loop:
requests start at R per second whatever the answers, at most ``--concurrency`` in flight,
latency at that load), an asyncio httpx client sends ``--requests`` requests. The repo needs a
trained model and a materialized online store (``make demo`` leaves one in
``demo/feature_repo``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import pyarrow.parquet as pq


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def load(url: str, customers: list[str], requests: int, concurrency: int,
               deadline: float) -> list[float]:
    latencies: list[float] = []
    queue = iter(range(requests))

    async def client(http: httpx.AsyncClient) -> None:
        for i in queue:
            if time.monotonic() > deadline:
                return
            body = {"customer_ids": [customers[i % len(customers)]]}
            started = time.perf_counter()
            response = await http.post(f"{url}/score", json=body)
            latencies.append(time.perf_counter() - started)
            response.raise_for_status()

    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=30) as http:
        await asyncio.gather(*(client(http) for _ in range(concurrency)))
    return latencies


async def open_loop(url: str, customers: list[str], requests: int, rate: float,
                    concurrency: int, deadline: float) -> list[float]:
    latencies: list[float] = []
    gate = asyncio.Semaphore(concurrency)

    async def one(http: httpx.AsyncClient, i: int) -> None:
        async with gate:
            started = time.perf_counter()
            response = await http.post(f"{url}/score",
                                       json={"customer_ids": [customers[i % len(customers)]]})
            latencies.append(time.perf_counter() - started)
            response.raise_for_status()

    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=30) as http:
        tasks, start = [], time.perf_counter()
        for i in range(requests):
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(max(0.0, start + i / rate - time.perf_counter()))
            tasks.append(asyncio.create_task(one(http, i)))
        await asyncio.gather(*tasks)
    return latencies


WRK_SCRIPT = """
local ids = {}
for line in io.lines("%s") do ids[#ids + 1] = line end
local i = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  i = i + 1
  return wrk.format(nil, "/score", nil, '{"customer_ids":["' .. ids[i %% #ids + 1] .. '"]}')
end
"""
UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def run_wrk(url: str, customers: list[str], concurrency: int, seconds: float) -> dict:
    """Closed loop with wrk: p50 and p99 (its latency distribution), requests per second."""
    with tempfile.TemporaryDirectory() as tmp:
        ids = Path(tmp) / "ids.txt"
        ids.write_text("\n".join(customers))
        script = Path(tmp) / "score.lua"
        script.write_text(WRK_SCRIPT % ids)
        out = subprocess.run(["wrk", "-t1", f"-c{concurrency}", f"-d{seconds:g}s", "--latency",
                              "-s", str(script), url], capture_output=True, text=True,
                             check=True).stdout

    def latency(percent: str) -> float:
        value, unit = re.search(rf"^\s*{percent}%\s+([\d.]+)(us|ms|s)$", out, re.M).groups()
        return round(float(value) * UNITS[unit], 2)

    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"client": "wrk", "requests": int(re.search(r"(\d+) requests in", out).group(1)),
            "errors": int(errors.group(1)) if errors else 0,
            "p50_ms": latency("50"), "p99_ms": latency("99"),
            "throughput_rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repo", type=Path, default=Path("demo/feature_repo"))
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--max-seconds", type=float, default=120)
    parser.add_argument("--rate", type=float, help="open loop: requests per second")
    parser.add_argument("--seconds", type=float, default=15, help="wrk's duration")
    parser.add_argument("--client", choices=["wrk", "httpx"],
                        default="wrk" if shutil.which("wrk") else "httpx")
    args = parser.parse_args()
    customers = pq.read_table(args.repo / "data" / "customers.parquet",
                              columns=["customer_id"]).column(0).to_pylist()
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "usage_features", "serve", "--repo",
                               str(args.repo), "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(f"{url}/health").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        asyncio.run(load(url, customers, 100, 5, time.monotonic() + 30))  # warm up
        mode = f"open loop {args.rate:g}/s" if args.rate else "closed loop"
        if args.client == "wrk" and not args.rate:
            result = run_wrk(url, customers, args.concurrency, args.seconds)
        else:
            started = time.perf_counter()
            deadline = time.monotonic() + args.max_seconds
            latencies = asyncio.run(
                open_loop(url, customers, args.requests, args.rate, args.concurrency, deadline)
                if args.rate else load(url, customers, args.requests, args.concurrency, deadline))
            elapsed = time.perf_counter() - started
            ms = np.array(latencies) * 1000
            result = {"client": "httpx", "requests": len(ms), "errors": 0,
                      "p50_ms": round(float(np.percentile(ms, 50)), 2),
                      "p99_ms": round(float(np.percentile(ms, 99)), 2),
                      "throughput_rps": round(len(ms) / elapsed, 1)}
    finally:
        server.terminate()
        server.wait(timeout=10)
    print(json.dumps({"phase": "http_score", "mode": mode, "concurrency": args.concurrency,
                      **result}))


if __name__ == "__main__":
    main()
