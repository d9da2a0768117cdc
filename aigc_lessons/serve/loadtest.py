"""A load test for the server: closed-loop clients, latency percentiles, overload, replicas.

``run_load(url, count, concurrency, max_requests, max_seconds)`` sends ``GET /v1/digits``
requests from ``concurrency`` clients that each send their next request when the last one is
answered (a closed loop), bounded in requests and in seconds, and returns a
:class:`LoadResult` (statuses, latencies, throughput). :func:`measure` runs the scenarios of
``benchmarks/load_test.py`` against servers it starts itself (with and without batching),
:func:`overload` many more clients than the queue admits, :func:`replicas` one server process
against two.

The client is a minimal HTTP/1.1 keep-alive client on asyncio streams, because it shares the
machine's cores with the server: a heavier client (httpx) would measure itself. It works from
a notebook too (where an event loop is already running, it runs in a thread).

Example:
    >>> from aigc_lessons.serve.process import ServerProcess
    >>> with ServerProcess(["--models", "cgan_mnist"]) as server:  # doctest: +SKIP
    ...     result = run_load(server.url, count=64, concurrency=8, max_requests=200, max_seconds=5)
    >>> result.failed, result.images_per_s > 0  # doctest: +SKIP
    (0, True)
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import time
from dataclasses import dataclass, field

from .process import ServerProcess


def _run(coroutine_factory):
    """``asyncio.run`` here, or in a thread when this thread already runs a loop (Jupyter)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine_factory())
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(coroutine_factory())).result()


@dataclass
class LoadResult:
    """One scenario: how many requests, their statuses, latencies (ms) and images per second."""

    batching: bool
    count: int
    concurrency: int
    requests: int = 0
    seconds: float = 0.0
    statuses: dict[int, int] = field(default_factory=dict)
    latencies_ms: list[float] = field(default_factory=list, repr=False)
    errors: int = 0  # connection errors: no HTTP answer at all

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies_ms)
        if not ordered:
            return float("nan")
        return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]

    @property
    def ok(self) -> int:
        return self.statuses.get(200, 0)

    @property
    def failed(self) -> int:
        return self.requests - self.ok

    @property
    def requests_per_s(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0

    @property
    def images_per_s(self) -> float:
        return self.requests_per_s * self.count

    @property
    def scenario(self) -> str:
        """A name for records: ``batched_64x32`` is 64 images per request from 32 clients, batched."""
        return f"{'batched' if self.batching else 'unbatched'}_{self.count}x{self.concurrency}"

    def summary(self) -> dict:
        """The record of the scenario, rounded as it is reported (a record holds no spurious digits)."""
        return {"scenario": self.scenario, "batching": self.batching, "count": self.count,
                "concurrency": self.concurrency, "requests": self.requests, "failed": self.failed,
                "p50_ms": round(self.percentile(50), 1), "p95_ms": round(self.percentile(95), 1),
                "p99_ms": round(self.percentile(99), 1), "images_per_s": round(self.images_per_s)}


async def _request(reader, writer, host: str, path: str) -> tuple[int, bytes]:
    """One GET on a kept-alive connection; the status and the body."""
    writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    length = 0
    for line in lines[1:]:
        if line.lower().startswith("content-length:"):
            length = int(line.split(":", 1)[1])
    body = await reader.readexactly(length) if length else b""
    return status, body


async def _client(host: str, port: int, path: str, result: LoadResult, stop_at: float, budget: list[int]) -> None:
    reader = writer = None
    while time.perf_counter() < stop_at and budget[0] > 0:
        budget[0] -= 1
        started = time.perf_counter()
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection(host, port)
            status, _ = await _request(reader, writer, host, path)
        except (OSError, asyncio.IncompleteReadError, ValueError):
            result.errors += 1
            result.requests += 1
            if writer is not None:
                writer.close()
            reader = writer = None
            continue
        result.latencies_ms.append(1000 * (time.perf_counter() - started))
        result.statuses[status] = result.statuses.get(status, 0) + 1
        result.requests += 1
    if writer is not None:
        writer.close()


async def _load(url: str, path: str, concurrency: int, max_requests: int, max_seconds: float,
                result: LoadResult) -> LoadResult:
    host, port = url.removeprefix("http://").split(":")
    budget = [max_requests]
    started = time.perf_counter()
    await asyncio.gather(*(_client(host, int(port), path, result, started + max_seconds, budget)
                           for _ in range(concurrency)))
    result.seconds = time.perf_counter() - started
    return result


def run_load(url: str, count: int, concurrency: int, max_requests: int, max_seconds: float,
             batching: bool = True, model: str = "cgan_mnist") -> LoadResult:
    """``max_requests`` requests (or ``max_seconds``) of ``count`` digits from ``concurrency`` clients.

    Each request has its own seed, so no two ask for the same images.
    """
    result = LoadResult(batching, count, concurrency)
    # One path per client would be more varied; a fixed seed per request is enough (the server
    # draws the noise per request either way, so equal seeds cost the same as different ones).
    path = f"/v1/digits?model={model}&count={count}&seed=1&format=png"
    return _run(lambda: _load(url, path, concurrency, max_requests, max_seconds, result))


def scenarios(url: str, batching: bool, counts=(1, 64), concurrencies=(1, 8, 32, 64), seconds: float = 8.0,
              requests_per_image_count=None, model: str = "cgan_mnist", log=print) -> list[LoadResult]:
    """One :class:`LoadResult` per (images per request, clients) against a running server."""
    requests_per_image_count = requests_per_image_count or {1: 4000, 64: 1500}
    rows = []
    for count in counts:
        run_load(url, count, 4, 50, 2.0, batching, model)  # warm up: the first passes are slower
        for concurrency in concurrencies:
            row = run_load(url, count, concurrency, requests_per_image_count.get(count, 1000), seconds,
                           batching, model)
            rows.append(row)
            log(f"batching={batching} count={count} concurrency={concurrency}: "
                f"{row.images_per_s:,.0f} images/s, p50 {row.percentile(50):.1f} ms, failed {row.failed}")
    return rows


def measure(quick: bool = False, device: str = "cpu", model: str = "cgan_mnist",
            log=print) -> tuple[list[LoadResult], dict]:
    """Every scenario with and without batching, then the overload test; (rows, overload record)."""
    concurrencies = (1, 16) if quick else (1, 8, 32, 64)
    requests = {1: 400, 64: 150} if quick else {1: 4000, 64: 1500}
    rows: list[LoadResult] = []
    for batching in (True, False):
        args = ["--models", model, "--device", device, "--max-queue", "128", "--timeout", "30"]
        if not batching:
            args.append("--no-batching")
        with ServerProcess(args) as server:
            rows += scenarios(server.url, batching, (1, 64), concurrencies, 3.0 if quick else 8.0, requests,
                              model, log)
    return rows, overload(quick, device, model, log)


def replicas(quick: bool = False, device: str = "cpu", model: str = "cgan_mnist", log=print) -> dict:
    """Scaling out on this machine: one server process against two, each with half the clients."""
    seconds, clients, count = (3.0, 16, 64) if quick else (8.0, 32, 64)
    args = ["--models", model, "--device", device, "--max-queue", "128", "--no-request-log"]
    record = {"clients": clients, "count": count}
    for servers in (1, 2):
        with contextlib.ExitStack() as stack:
            running = [stack.enter_context(ServerProcess(args)) for _ in range(servers)]
            for server in running:
                run_load(server.url, count, 4, 50, 2.0, True, model)

            async def together():
                parts = [LoadResult(True, count, clients // servers) for _ in running]
                await asyncio.gather(*(_load(server.url, f"/v1/digits?model={model}&count={count}&seed=1",
                                             clients // servers, 10**6, seconds, part)
                                       for server, part in zip(running, parts)))
                return parts

            parts = _run(together)
            record[f"{servers}_images_per_s"] = round(sum(part.images_per_s for part in parts))
            record[f"{servers}_failed"] = sum(part.failed for part in parts)
    log(f"replicas: {record}")
    return record


def overload(quick: bool = False, device: str = "cpu", model: str = "cgan_mnist", log=print) -> dict:
    """Far more clients than the queue admits: 429s, no crash, normal answers afterwards."""
    max_queue = 8
    args = ["--models", model, "--device", device, "--max-queue", str(max_queue), "--timeout", "10"]
    with ServerProcess(args) as server:
        record = overload_burst(server, max_queue, 64 if quick else 256, 3.0 if quick else 8.0, model)
    log(f"overload: {record}")
    return record


def overload_burst(server: ServerProcess, max_queue: int, clients: int, seconds: float,
                   model: str = "cgan_mnist") -> dict:
    """``clients`` closed-loop clients asking for 64 images each against a running server's queue."""
    import httpx

    burst = run_load(server.url, 64, clients, 10**6, seconds, True, model)
    alive = server.process.poll() is None
    started = time.perf_counter()
    after = httpx.get(server.url + "/v1/digits", params={"model": model, "count": 64, "seed": 2}, timeout=10)
    recovery_ms = 1000 * (time.perf_counter() - started)
    health = httpx.get(server.url + "/v1/health", timeout=10).status_code
    return {"max_queue": max_queue, "clients": clients, "requests": burst.requests,
            "statuses": {str(k): v for k, v in sorted(burst.statuses.items())},
            "connection_errors": burst.errors, "alive": alive, "health_after": health,
            "status_after": after.status_code, "first_request_after_ms": round(recovery_ms, 1),
            "ok_images_per_s": round(burst.images_per_s), "p99_ms_of_all": round(burst.percentile(99), 1)}


def markdown(rows: list[LoadResult], overload_record: dict) -> str:
    """The results as Markdown: one row per scenario, then the overload test."""
    lines = ["| batching | images/request | clients | requests | failed | p50 ms | p95 ms | p99 ms | "
             "requests/s | images/s |", "|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        lines.append(f"| {'yes' if row.batching else 'no'} | {row.count} | {row.concurrency} | {row.requests} | "
                     f"{row.failed} | {row.percentile(50):.1f} | {row.percentile(95):.1f} | "
                     f"{row.percentile(99):.1f} | {row.requests_per_s:,.0f} | {row.images_per_s:,.0f} |")
    o = overload_record
    statuses = ", ".join(f"{code}: {n}" for code, n in o["statuses"].items())
    lines += ["", f"Overload: {o['clients']} clients against a queue of {o['max_queue']}: {o['requests']} requests "
              f"answered {statuses} ({o['connection_errors']} connection errors); server alive: {o['alive']}; "
              f"afterwards /v1/health {o['health_after']} and a request {o['status_after']} in "
              f"{o['first_request_after_ms']} ms."]
    return "\n".join(lines)
