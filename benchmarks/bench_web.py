"""Benchmark: the web pages of ``usage-features serve`` on a large snapshot.

    usage-features demo --customers 14000 --workdir /tmp/demo-web   # ~10,000 active customers
    python benchmarks/bench_web.py --repo /tmp/demo-web/feature_repo

Starts ``usage-features serve`` on a free loopback port, signs in, and times (one request at a
time, after one warm-up view) the worklist's first page, a filtered page (a band, a plan and a
search), a customer page (the snapshot's customers in turn) and the CSV of the whole worklist;
then ``POST /score`` for one customer at ``--rate`` requests per second, alone, then while
other processes (``--page-clients``) request pages at ``--page-rate`` per second, then as fast
as they are answered: does building pages hold up the scoring event loop? The first view
after the server starts (the worklist table built from the snapshot) is reported on its own.
Targets: each page p95 at most 300 ms, the CSV at most 2 s, and ``POST /score``'s p99 within
its 25 ms while pages are served.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import re
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import httpx
import numpy as np
import pandas as pd


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sign_in(url: str, token: str) -> httpx.Client:
    client = httpx.Client(base_url=url, timeout=60, follow_redirects=True)
    page = client.get("/sign-in")
    nonce = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    answer = client.post("/sign-in", data={"token": token, "csrf": nonce, "next": "/"},
                         follow_redirects=False)  # the worklist not viewed yet
    if answer.status_code != 303:
        raise SystemExit(f"sign-in refused: {answer.status_code}")
    return client


def timed(client: httpx.Client, paths: list[str], n: int) -> np.ndarray:
    """Milliseconds of ``n`` GETs cycling through ``paths``, one at a time."""
    out = []
    for i in range(n):
        started = time.perf_counter()
        response = client.get(paths[i % len(paths)])
        out.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
    return np.array(out)


def summary(name: str, ms: np.ndarray, target_ms: float | None = None, **extra) -> dict:
    return {"what": name, "requests": len(ms), "p50_ms": round(float(np.percentile(ms, 50)), 1),
            "p95_ms": round(float(np.percentile(ms, 95)), 1),
            "p99_ms": round(float(np.percentile(ms, 99)), 1),
            "max_ms": round(float(ms.max()), 1), "target_ms": target_ms, **extra}


async def score_load(url: str, customers: list[str], rate: float, seconds: float) -> np.ndarray:
    """Open loop: one-customer ``POST /score`` requests at ``rate`` per second."""
    latencies: list[float] = []

    async def one(http: httpx.AsyncClient, customer: str) -> None:
        started = time.perf_counter()
        response = await http.post(f"{url}/score", json={"customer_ids": [customer]})
        latencies.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()

    async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=50)) as http:
        tasks, start = [], time.perf_counter()
        for i in range(int(rate * seconds)):
            await asyncio.sleep(max(0.0, start + i / rate - time.perf_counter()))
            tasks.append(asyncio.create_task(one(http, customers[i % len(customers)])))
        await asyncio.gather(*tasks)
    return np.array(latencies)


def page_loader(url: str, token: str, paths: list[str], rate: float | None, stop,
                served) -> None:
    """Request pages one after another (``rate`` per second at most; None: as fast as they
    are answered) until ``stop`` is set (another process)."""
    client = sign_in(url, token)
    i, start = 0, time.perf_counter()
    while not stop.is_set():
        client.get(paths[i % len(paths)]).raise_for_status()
        i += 1
        if rate:
            time.sleep(max(0.0, start + i / rate - time.perf_counter()))
    with served.get_lock():
        served.value += i


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repo", type=Path, default=Path("demo/feature_repo"))
    parser.add_argument("--requests", type=int, default=100, help="per page kind")
    parser.add_argument("--rate", type=float, default=100, help="POST /score per second")
    parser.add_argument("--seconds", type=float, default=15, help="of each POST /score run")
    parser.add_argument("--page-clients", type=int, default=2)
    parser.add_argument("--page-rate", type=float, default=10,
                        help="pages per second in the paced run (then a run flat out)")
    args = parser.parse_args()
    repo = args.repo.resolve()
    days = sorted(p.parent.name for p in (repo / "data" / "scores").glob("date=*/scores.parquet"))
    snapshot = pd.read_parquet(repo / "data" / "scores" / days[-1] / "scores.parquet")
    active = snapshot[snapshot.status == "active"].sort_values(
        "churn_probability", ascending=False)
    customers = active.customer_id.tolist()
    plans = pd.read_parquet(repo / "data" / "customers.parquet").set_index("customer_id").plan
    plan = plans.reindex(customers).mode().iloc[0]
    band = active.risk_band.mode().iloc[0]
    filtered = f"/?band={band}&plan={quote(plan)}&q=1"

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([sys.executable, "-m", "usage_features", "serve", "--repo",
                               str(repo), "--port", str(port)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    results = []
    try:
        token = None
        for line in server.stdout:
            found = re.search(r"sign in with the token: (\S+)", line)
            if found:
                token = found.group(1)
                break
        if token is None:
            raise SystemExit("serve printed no token (is USAGE_FEATURES_API_TOKEN set?)")
        for _ in range(600):
            try:
                if httpx.get(f"{url}/health").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        client = sign_in(url, token)
        started = time.perf_counter()
        client.get("/").raise_for_status()
        cold = (time.perf_counter() - started) * 1000
        results.append({"what": f"first view after start (worklist table built; filter "
                                f"{filtered})",
                        "requests": 1, "p50_ms": round(cold, 1), "active_customers":
                        len(customers), "snapshot": days[-1]})
        pages = {
            "worklist, first page": ["/"],
            "worklist, filtered page (band + plan + search)": [filtered],
            "customer page": [f"/customers/{quote(c, safe='')}" for c in customers[::7]],
        }
        for name, paths in pages.items():
            timed(client, paths, 3)  # warm-up
            results.append(summary(name, timed(client, paths, args.requests), 300))
        results.append(summary(f"CSV of the whole worklist ({len(customers):,} rows)",
                               timed(client, ["/worklist.csv"], 10), 2000))

        asyncio.run(score_load(url, customers, args.rate, 2))  # warm-up
        alone = asyncio.run(score_load(url, customers, args.rate, args.seconds))
        results.append(summary(f"POST /score at {args.rate:g}/s, alone", alone, 25))
        mix = ["/", filtered,
               *(f"/customers/{quote(c, safe='')}" for c in customers[:50])]
        for page_rate in (args.page_rate, None):
            stop, served = multiprocessing.Event(), multiprocessing.Value("i", 0)
            each = page_rate / args.page_clients if page_rate else None
            loaders = [multiprocessing.Process(target=page_loader, args=(
                url, token, mix[i::2] + mix, each, stop, served))
                for i in range(args.page_clients)]
            for loader in loaders:
                loader.start()
            time.sleep(2)
            started = time.perf_counter()
            busy = asyncio.run(score_load(url, customers, args.rate, args.seconds))
            elapsed = time.perf_counter() - started
            stop.set()
            for loader in loaders:
                loader.join(timeout=60)
            how = f"{page_rate:g} pages/s" if page_rate else "pages as fast as answered"
            results.append(summary(
                f"POST /score at {args.rate:g}/s, while {args.page_clients} clients load {how}",
                busy, 25, pages_per_second=round(served.value / (elapsed + 2), 1)))
    finally:
        server.terminate()
        server.wait(timeout=10)
    for result in results:
        print(json.dumps(result))
    print()
    print("| what | requests | p50 | p95 | p99 | max | target |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        cells = [f"{r[k]:,.1f} ms" if r.get(k) is not None else ""
                 for k in ("p50_ms", "p95_ms", "p99_ms", "max_ms")]
        target = f"{r['target_ms']:g} ms" if r.get("target_ms") else ""
        print(f"| {r['what']} | {r['requests']} | {' | '.join(cells)} | {target} |")


if __name__ == "__main__":
    main()
