"""Data-parallel runs under ``torchrun``: one process per device, gradients averaged by DDP.

``torchrun --nproc_per_node N -m aigc_lessons.cli train MODEL ...`` starts N copies
of the command; each learns who it is from the environment (``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``). Inside
:func:`~aigc_lessons.runs.train_run` this module

1. joins the process group (:func:`from_environment`: NCCL on CUDA, each process on
   ``cuda:LOCAL_RANK``; gloo on the CPU);
2. routes every trainable network through ``DistributedDataParallel``
   (:func:`distribute`), which averages the gradients over the processes in
   ``backward``, and averages the logged losses, so that every rank logs the same;
3. gives each rank its slice of every global batch (:class:`ShardedBatches`), so
   that N processes at batch ``b`` see, step by step, the examples that one
   process at batch ``N * b`` sees;
4. reseeds each rank's random stream at every epoch from the seed, the epoch and
   the rank (:func:`epoch_seed`): the ranks draw different noise, and a resumed
   run draws what the uninterrupted one drew.

Rank 0 alone writes the run folder (``runs/loop.py``). Outside ``torchrun`` the
context is inactive and nothing here changes a run.

For tests and notebooks, :func:`run_local` forks the current process into ranks
(no new interpreter to start) and :func:`run_torchrun` runs ``torchrun`` itself;
both pick a free port on 127.0.0.1 and kill every process after ``timeout``.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from ..core import get_device
from ..data import TensorBatches
from ..family import TrainingSetup

LAUNCH_VARIABLES = ("RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


# --------------------------------------------------------------------------- who am I


def environment_world_size() -> int:
    """``WORLD_SIZE`` from the environment (1 when unset), checked."""
    text = os.environ.get("WORLD_SIZE", "1")
    try:
        size = int(text)
    except ValueError:
        size = 0
    if size < 1:
        raise ValueError(f"WORLD_SIZE must be a positive integer, got {text!r}")
    return size


@dataclass
class Distributed:
    """This process's place in the group: rank, local rank, world size and backend."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    backend: str | None = None
    owns_group: bool = False

    @property
    def active(self) -> bool:
        """Whether there is more than one process."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that writes files, prints and shows progress."""
        return self.rank == 0

    def barrier(self) -> None:
        """Wait until every rank has arrived here (nothing to wait for in one process)."""
        if self.active:
            dist.barrier()

    def close(self) -> None:
        """Leave the process group, if this context joined it."""
        if self.owns_group and dist.is_initialized():
            dist.destroy_process_group()
        self.owns_group = False


def from_environment(device: str = "auto") -> Distributed:
    """Join the process group that ``torchrun`` (or :func:`run_local`) described in the environment.

    With ``WORLD_SIZE`` unset or 1, return an inactive context and start nothing.
    ``device`` picks the backend: NCCL when the run trains on CUDA, gloo otherwise.
    """
    world_size = environment_world_size()
    if world_size == 1:
        return Distributed()
    missing = [name for name in LAUNCH_VARIABLES if name not in os.environ]
    if missing:
        raise ValueError(f"WORLD_SIZE is {world_size} but {', '.join(missing)} is not set: "
                         "start distributed runs with torchrun (torchrun --nproc_per_node N -m aigc_lessons.cli "
                         "train ...), which sets them for every process.")
    rank, local_rank = int(os.environ["RANK"]), int(os.environ["LOCAL_RANK"])
    backend = "nccl" if get_device(device).type == "cuda" else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(local_rank)  # before the group starts: NCCL binds this process to its GPU
    owns_group = not dist.is_initialized()
    if owns_group:
        dist.init_process_group(backend, rank=rank, world_size=world_size)
    return Distributed(rank, local_rank, world_size, backend, owns_group)


def run_device(context: Distributed, device: str) -> torch.device:
    """The device this rank trains on: ``cuda:LOCAL_RANK`` in an NCCL group, else ``device`` resolved."""
    if context.backend == "nccl":
        return torch.device("cuda", context.local_rank)
    return get_device(device)


# --------------------------------------------------------------------------- batches and noise


def epoch_seed(seed: int, epoch: int, rank: int) -> int:
    """The seed of ``rank``'s random stream in ``epoch``.

    NumPy's ``SeedSequence`` mixes the three numbers into independent streams
    (adjacent seeds such as ``seed + rank`` would give overlapping ones across runs).
    """
    return int(np.random.SeedSequence([seed, epoch, rank]).generate_state(1)[0])


class ShardedBatches(TensorBatches):
    """Rank ``rank``'s slice of each global batch of ``world_size * batch_size`` examples.

    The global batches are those of one process at the global batch size with the
    same seed (:class:`~aigc_lessons.data.TensorBatches`), and rank ``r`` gets rows
    ``r * batch_size`` to ``(r + 1) * batch_size - 1`` of each. A last global batch
    that cannot be split evenly is dropped: a rank without a batch would leave the
    others waiting in the all-reduce. ``set_epoch`` also reseeds the global random
    state with :func:`epoch_seed`, so that each rank draws its own noise.

    Example:
        >>> x = torch.arange(8)
        >>> [b[0].tolist() for b in ShardedBatches(x, batch_size=2, rank=1, world_size=2, shuffle=False)]
        [[2, 3], [6, 7]]
    """

    def __init__(self, *tensors: torch.Tensor, batch_size: int, rank: int, world_size: int,
                 shuffle: bool = True, seed: int = 0) -> None:
        if world_size < 1:
            raise ValueError(f"world_size must be a positive integer, got {world_size}")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank must be in 0..{world_size - 1}, got {rank}")
        super().__init__(*tensors, batch_size=world_size * batch_size, shuffle=shuffle, seed=seed, drop_last=True)
        if len(self) == 0:
            raise ValueError(f"{self.num_examples} examples are fewer than one global batch of {world_size} x "
                             f"{batch_size}: lower the batch size or use more data.")
        self.rank, self.world_size, self.shard_size = rank, world_size, batch_size

    def set_epoch(self, epoch: int) -> None:
        super().set_epoch(epoch)
        torch.manual_seed(epoch_seed(self.seed, epoch, self.rank))

    def __iter__(self):
        start = self.rank * self.shard_size
        for batch in super().__iter__():
            yield tuple(t[start : start + self.shard_size] for t in batch)


# --------------------------------------------------------------------------- DDP


def route_through_ddp(module: nn.Module, device_ids: list[int] | None = None) -> nn.parallel.DistributedDataParallel:
    """Wrap ``module`` in DDP and make its own calls go through the wrapper while it is in training mode.

    The families' training steps call their networks directly (``generator(z)``),
    so instead of handing them a wrapper, the module's ``forward`` is replaced on
    this instance by one that enters DDP (which calls the original ``forward``
    back). In evaluation mode (sampling, on rank 0 alone) calls skip DDP: they
    must not wait for the other ranks. Keep the returned wrapper alive as long as
    the module trains.
    """
    wrapper = nn.parallel.DistributedDataParallel(module, device_ids=device_ids)
    original_forward = module.forward
    inside = False

    def forward(*args: Any, **kwargs: Any) -> Any:
        nonlocal inside
        if inside or not module.training:  # DDP calling back, or a call that is not a training step
            return original_forward(*args, **kwargs)
        inside = True
        try:
            return wrapper(*args, **kwargs)
        finally:
            inside = False

    module.forward = forward
    return wrapper


def distribute(setup: TrainingSetup, context: Distributed,
               device: torch.device) -> list[nn.parallel.DistributedDataParallel]:
    """Route every trainable network of ``setup`` through DDP and average its logged losses over the ranks.

    Returns the DDP wrappers (an empty list outside ``torchrun``). On CUDA, batch
    norm layers become ``SyncBatchNorm`` first, so that they normalise with the
    statistics of the global batch; PyTorch has no CPU version of it.
    """
    if not context.active:
        return []
    device_ids = [device.index] if device.type == "cuda" else None
    wrappers = []
    for module in setup.modules.values():
        if not any(p.requires_grad for p in module.parameters()):
            continue
        if device.type == "cuda":
            nn.SyncBatchNorm.convert_sync_batchnorm(module)  # replaces the batch-norm children in place
        wrappers.append(route_through_ddp(module, device_ids))
    setup.step = _averaging_losses(setup.step, context.world_size)
    return wrappers


def _averaging_losses(step: Callable[[tuple], dict], world_size: int) -> Callable[[tuple], dict]:
    """``step``, with its returned losses averaged over the ranks (one all-reduce per step)."""

    def averaged(batch: tuple) -> dict:
        losses = step(batch)
        names = list(losses)
        values = torch.stack([losses[name].detach().float() for name in names])
        dist.all_reduce(values)
        values /= world_size
        return dict(zip(names, values))

    return averaged


# --------------------------------------------------------------------------- launching, for tests and notebooks


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _rank_main(rank: int, world_size: int, port: int, function: Callable, args: tuple, results) -> None:
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world_size),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    # One thread per rank, as torchrun sets by default; it also avoids OpenMP's
    # thread pool, which a forked child must not reuse from its parent.
    torch.set_num_threads(1)
    try:
        # Pickled here, by value: torch's own queue pickling would share tensors through
        # memory that vanishes when this process exits.
        results.put((rank, True, pickle.dumps(function(*args))))
    except BaseException:  # noqa: BLE001 (reported to the parent, which raises)
        results.put((rank, False, traceback.format_exc()))


def run_local(function: Callable, nproc: int, *args: Any, timeout: float = 120) -> list:
    """Fork this process into ``nproc`` ranks that each run ``function(*args)``; return their results by rank.

    Each rank sees torchrun's environment variables (so :func:`from_environment`
    joins a gloo group on a free loopback port) and one torch thread. Forking
    needs no new interpreter and no importable ``function``: a notebook's own
    functions work. A rank that raises makes this raise ``RuntimeError`` with its
    traceback; after ``timeout`` seconds every rank is killed and ``TimeoutError``
    raised. Results travel back through a pipe, so they must be picklable
    (tensors, numbers, dicts); nothing is read from files.
    """
    if nproc < 1:
        raise ValueError(f"nproc must be a positive integer, got {nproc}")
    context = multiprocessing.get_context("fork")
    results = context.SimpleQueue()
    port = free_port()
    processes = [context.Process(target=_rank_main, args=(rank, nproc, port, function, args, results), daemon=True)
                 for rank in range(nproc)]
    for process in processes:
        process.start()
    deadline = time.monotonic() + timeout
    collected: dict[int, Any] = {}
    try:
        while len(collected) < nproc:
            if not results.empty():
                rank, ok, value = results.get()
                if not ok:
                    raise RuntimeError(f"rank {rank} failed:\n{value}")
                collected[rank] = pickle.loads(value)  # our own child's bytes, not a file
            elif time.monotonic() > deadline:
                raise TimeoutError(f"the {nproc} ranks did not finish within {timeout:g} s; all were stopped")
            elif any(p.exitcode not in (None, 0) for p in processes) and results.empty():
                codes = [p.exitcode for p in processes]
                raise RuntimeError(f"a rank died without a result (exit codes {codes})")
            else:
                time.sleep(0.05)
        for process in processes:  # every result is in: the ranks are leaving their group
            process.join(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        for process in processes:
            if process.is_alive():
                process.kill()
            process.join()
    return [collected[rank] for rank in range(nproc)]


@dataclass
class TorchrunResult:
    """What :func:`run_torchrun` returns: the workers' output and the wall time of the launch."""

    command: list[str]
    stdout: str
    stderr: str
    seconds: float


def torchrun_command(arguments: list[str], nproc: int, port: int | None = None) -> list[str]:
    """``python -m torch.distributed.run`` (``torchrun``) with ``nproc`` processes, meeting on 127.0.0.1."""
    return [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc_per_node", str(nproc),
            "--master_addr", "127.0.0.1", "--master_port", str(port or free_port()), *arguments]


def _descendants(pid: int) -> list[int]:
    """The processes below ``pid``, from ``/proc`` (empty where there is no ``/proc``)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended while we looked
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, frontier = [], [pid]
    while frontier:
        below = children.get(frontier.pop(), [])
        found += below
        frontier += below
    return found


def _stop(process: subprocess.Popen) -> None:
    """End torchrun and every worker: SIGTERM (torchrun then stops its workers), SIGKILL after 20 s.

    torchrun starts its workers in sessions of their own, so killing torchrun's
    process group alone would leave them running.
    """
    workers = _descendants(process.pid)
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    for pid in workers:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:  # already gone, as it should be
            pass


def run_torchrun(arguments: list[str], nproc: int = 2, *, timeout: float = 300,
                 env: dict[str, str] | None = None) -> TorchrunResult:
    """Run ``torchrun`` with ``arguments`` (a script and its options, or ``-m module ...``) and wait.

    ``env`` is added to this process's environment. When ``timeout`` passes,
    torchrun and every worker are stopped and ``subprocess.TimeoutExpired`` is
    raised; a non-zero exit raises ``RuntimeError`` with the end of their output.
    The output goes through temporary files, not pipes, so that a worker that
    outlives torchrun cannot keep this call waiting.
    """
    command = torchrun_command(arguments, nproc)
    started = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        process = subprocess.Popen(command, stdout=out, stderr=err, text=True,
                                   env={**os.environ, **(env or {})}, start_new_session=True)
        try:
            process.wait(timeout=timeout)
        finally:
            if process.poll() is None:  # timed out, or interrupted: nothing may keep running
                _stop(process)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if process.returncode != 0:
        raise RuntimeError(f"torchrun exited with code {process.returncode}:\n{(stdout + stderr)[-4000:]}")
    return TorchrunResult(command, stdout, stderr, time.perf_counter() - started)
