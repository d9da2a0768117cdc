"""Dynamic batching with a bounded queue: many small requests, one forward pass.

A model on a CPU or a GPU computes 64 images in far less than 64 times the time of one
(the weights are read once per pass, and a matrix product keeps the cores busy), so a server
that runs each request alone wastes most of its hardware. :class:`DynamicBatcher` keeps one
queue per model. A single worker takes the first waiting request, then every request that is
already waiting (and, for ``wait_s``, those that arrive), up to ``max_items`` images, runs
them as one batch in its own thread (so the event loop keeps accepting connections), and
hands each request its own rows back.

The queue is bounded: :meth:`DynamicBatcher.submit` raises :class:`Overloaded` at once when
``max_pending`` requests are already admitted, which the app answers with 429 and a
``Retry-After`` header. Without the bound, a server under overload queues without limit:
every request waits longer than its client will, memory grows, and the server recovers only
long after the load stops. A request whose caller gave up (a timeout) is dropped from the
queue before its batch runs.

Example:
    >>> import asyncio
    >>> async def demo():
    ...     batcher = DynamicBatcher(lambda items: [x * 10 for x in items], max_items=8,
    ...                              max_pending=4)
    ...     results = await asyncio.gather(*(batcher.submit(x) for x in range(3)))
    ...     await batcher.close()
    ...     return results, batcher.stats.batches
    >>> asyncio.run(demo())
    ([0, 10, 20], 1)
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any


class Overloaded(Exception):
    """The queue is full: the request is refused now instead of waiting without bound."""

    def __init__(self, pending: int, retry_after_s: float = 1.0) -> None:
        super().__init__(f"the server is at its limit of {pending} requests waiting for this model; "
                         f"retry in {retry_after_s:g} s")
        self.pending, self.retry_after_s = pending, retry_after_s


@dataclass
class _Job:
    item: Any
    size: int
    future: asyncio.Future


@dataclass
class BatchStats:
    """Counters for ``GET /v1/ready`` and the chapter: batches run, items, the largest batch."""

    batches: int = 0
    items: int = 0
    requests: int = 0
    rejected: int = 0
    largest: int = 0
    sizes: list[int] = field(default_factory=list)  # the last 1,000 batch sizes, in images

    def record(self, requests: int, items: int) -> None:
        self.batches += 1
        self.requests += requests
        self.items += items
        self.largest = max(self.largest, items)
        self.sizes = (self.sizes + [items])[-1000:]


class DynamicBatcher:
    """One queue, one worker: joins waiting requests into batches of at most ``max_items``.

    ``run_batch(items)`` gets the list of request items and returns one result per item (in
    order); it runs in a dedicated thread. ``size(item)`` is how many images an item counts
    for (1 by default). ``batching=False`` runs one request per batch: the baseline.
    """

    def __init__(self, run_batch: Callable[[list[Any]], Sequence[Any]], max_items: int = 1024,
                 max_pending: int = 64, wait_s: float = 0.0, batching: bool = True,
                 size: Callable[[Any], int] = lambda item: 1, retry_after_s: float = 1.0) -> None:
        if max_items < 1 or max_pending < 1 or wait_s < 0:
            raise ValueError(f"max_items and max_pending must be >= 1 and wait_s >= 0, got "
                             f"{max_items}, {max_pending}, {wait_s}")
        self.run_batch, self.size = run_batch, size
        self.max_items, self.max_pending, self.wait_s = max_items, max_pending, wait_s
        self.batching, self.retry_after_s = batching, retry_after_s
        self.stats = BatchStats()
        self.pending = 0
        self._queue: asyncio.Queue[_Job] | None = None
        self._worker: asyncio.Task | None = None
        self._held: _Job | None = None  # a job that did not fit the last batch: first in the next
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="batch")

    async def submit(self, item: Any) -> Any:
        """Queue ``item`` and wait for its result; :class:`Overloaded` at once when the queue is full."""
        if self._queue is None:  # created here so that the queue belongs to the running loop
            self._queue = asyncio.Queue()
            self._worker = asyncio.get_running_loop().create_task(self._work())
        if self.pending >= self.max_pending:
            self.stats.rejected += 1
            raise Overloaded(self.max_pending, self.retry_after_s)
        future = asyncio.get_running_loop().create_future()
        self.pending += 1
        try:
            self._queue.put_nowait(_Job(item, self.size(item), future))
            return await future  # a caller's timeout cancels the future; the worker skips it
        finally:
            self.pending -= 1

    async def _next_batch(self) -> list[_Job]:
        assert self._queue is not None
        first = self._held or await self._queue.get()
        self._held = None
        batch, total = [first], first.size
        if not self.batching:
            return batch
        deadline = asyncio.get_running_loop().time() + self.wait_s
        while total < self.max_items:
            try:
                job = self._queue.get_nowait()
            except asyncio.QueueEmpty:
                remaining = deadline - asyncio.get_running_loop().time()
                if remaining <= 0:
                    break
                try:
                    job = await asyncio.wait_for(self._queue.get(), remaining)
                except asyncio.TimeoutError:
                    break
            if total + job.size > self.max_items:
                self._held = job
                break
            batch.append(job)
            total += job.size
        return batch

    async def _work(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [job for job in await self._next_batch() if not job.future.done()]
            if not batch:
                continue
            try:
                results = await loop.run_in_executor(self._executor, self.run_batch,
                                                     [job.item for job in batch])
            except Exception as error:  # every request of the batch gets the error, the worker lives on
                for job in batch:
                    if not job.future.done():
                        job.future.set_exception(error)
                continue
            self.stats.record(len(batch), sum(job.size for job in batch))
            for job, result in zip(batch, results):
                if not job.future.done():
                    job.future.set_result(result)

    async def close(self) -> None:
        """Stop the worker and its thread (the app calls it at shutdown)."""
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
        self._executor.shutdown(wait=False, cancel_futures=True)
