"""Data-parallel runs (``aigc_lessons.runs.distributed``): 2 ranks at batch B are 1 process at batch 2B.

The processes are real: forked with torchrun's environment variables on a free
loopback port (``run_local``), or started by torchrun itself (``run_torchrun``),
and every launch is bounded in time (all processes are killed after it).
"""

from __future__ import annotations

import json
import os
import textwrap

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from aigc_lessons.data import TensorBatches
from aigc_lessons.family import TrainingSetup
from aigc_lessons.runs import RunConfig, read_checkpoint, read_metrics, train_run
from aigc_lessons.runs.distributed import (
    ShardedBatches,
    distribute,
    environment_world_size,
    epoch_seed,
    from_environment,
    run_local,
    run_torchrun,
    torchrun_command,
)
from aigc_lessons.train.loop import fit

BATCH, STEPS_PER_EPOCH, EPOCHS = 16, 4, 3


def _data() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(2 * BATCH * STEPS_PER_EPOCH, 8, generator=generator)
    return x, x[:, :1].sin() + 0.1 * torch.randn(len(x), 1, generator=generator)


def _regression(batch_norm: bool = False) -> TrainingSetup:
    """A small network with a mean loss over the batch: the case where DDP equals the big batch exactly."""
    torch.manual_seed(0)
    norm = nn.BatchNorm1d(32) if batch_norm else nn.Identity()
    model = nn.Sequential(nn.Linear(8, 32), norm, nn.Tanh(), nn.Linear(32, 1))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)

    def step(batch):
        x, y = batch
        loss = F.mse_loss(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return {"loss": loss.detach()}

    return TrainingSetup({"net": model}, {"net": optimizer}, step, sample=lambda generator, count: None)


def _train_one_rank(batch_norm: bool) -> dict:
    """What each forked rank runs: its slice of every batch of 2 * BATCH, gradients averaged by DDP."""
    context = from_environment("cpu")
    try:
        torch.set_num_threads(1)
        setup = _regression(batch_norm)
        batches = ShardedBatches(*_data(), batch_size=BATCH, rank=context.rank, world_size=context.world_size)
        wrappers = distribute(setup, context, torch.device("cpu"))
        assert len(wrappers) == 1 and isinstance(wrappers[0], nn.parallel.DistributedDataParallel)
        history = fit(setup.step, batches, EPOCHS, log_every=1, progress=False)
        return {"weights": {k: v.clone() for k, v in setup.modules["net"].state_dict().items()},
                "losses": history.series("loss"), "world_size": context.world_size}
    finally:
        context.close()


def _train_one_process(batch_norm: bool) -> dict:
    setup = _regression(batch_norm)
    batches = TensorBatches(*_data(), batch_size=2 * BATCH, seed=0, drop_last=True)
    history = fit(setup.step, batches, EPOCHS, log_every=1, progress=False)
    return {"weights": setup.modules["net"].state_dict(), "losses": history.series("loss")}


def _largest_difference(a: dict, b: dict) -> float:
    return max(float((a[k].float() - b[k].float()).abs().max()) for k in a)


def test_two_ranks_at_batch_b_equal_one_process_at_batch_2b():
    ranks = run_local(_train_one_rank, 2, False, timeout=90)
    single = _train_one_process(False)
    assert [r["world_size"] for r in ranks] == [2, 2]
    # DDP keeps the copies identical: the same averaged gradient, the same step on every rank
    assert all(torch.equal(ranks[0]["weights"][k], ranks[1]["weights"][k]) for k in single["weights"])
    steps = EPOCHS * STEPS_PER_EPOCH
    assert len(ranks[0]["losses"]) == steps
    assert _largest_difference(ranks[0]["weights"], single["weights"]) < 1e-6
    # the logged loss is the average over the ranks: the mean loss of the global batch
    assert max(abs(a - b) for a, b in zip(ranks[0]["losses"], single["losses"])) < 1e-6
    assert ranks[0]["losses"] == ranks[1]["losses"]


def test_batch_norm_breaks_the_equality_on_the_cpu():
    """Each rank normalises with its own slice's statistics (SyncBatchNorm needs a GPU): not the big batch."""
    ranks = run_local(_train_one_rank, 2, True, timeout=90)
    single = _train_one_process(True)
    assert torch.equal(ranks[0]["weights"]["0.weight"], ranks[1]["weights"]["0.weight"])
    assert _largest_difference(ranks[0]["weights"], single["weights"]) > 1e-4


def test_sharded_batches_split_each_global_batch():
    x = torch.arange(20.0)
    whole = [b[0] for b in TensorBatches(x, batch_size=8, seed=3, drop_last=True)]
    shards = [[b[0] for b in ShardedBatches(x, batch_size=4, rank=r, world_size=2, seed=3)] for r in range(2)]
    assert len(shards[0]) == len(shards[1]) == len(whole) == 2  # the last 4 examples cannot be split: dropped
    for k, batch in enumerate(whole):
        assert torch.equal(torch.cat([shards[0][k], shards[1][k]]), batch)


def test_each_rank_draws_its_own_noise_and_the_same_again_on_resume():
    x = torch.arange(8.0)
    draws = {}
    for rank in (0, 1):
        batches = ShardedBatches(x, batch_size=2, rank=rank, world_size=2)
        batches.set_epoch(3)
        draws[rank] = torch.randn(4)
    assert not torch.equal(draws[0], draws[1])
    again = ShardedBatches(x, batch_size=2, rank=1, world_size=2)
    again.set_epoch(3)
    assert torch.equal(torch.randn(4), draws[1])
    assert len({epoch_seed(0, e, r) for e in range(50) for r in range(8)}) == 400


def test_bad_launch_settings_give_clear_errors(monkeypatch):
    with pytest.raises(ValueError, match="fewer than one global batch"):
        ShardedBatches(torch.zeros(10), batch_size=8, rank=0, world_size=2)
    with pytest.raises(ValueError, match="rank must be in 0..1"):
        ShardedBatches(torch.zeros(10), batch_size=2, rank=2, world_size=2)
    monkeypatch.setenv("WORLD_SIZE", "two")
    with pytest.raises(ValueError, match="WORLD_SIZE must be a positive integer"):
        environment_world_size()
    monkeypatch.setenv("WORLD_SIZE", "2")
    for name in ("RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ValueError, match="start distributed runs with torchrun"):
        from_environment("cpu")
    monkeypatch.delenv("WORLD_SIZE")
    assert from_environment("cpu").world_size == 1


# --------------------------------------------------------------------------- a real run folder, 2 ranks

TINY = dict(subset=256, batch_size=32, log_every=2, device="cpu")


def _train_run_rank(run_dir: str, epochs: int, resume: bool) -> dict:
    torch.set_num_threads(1)
    config = {"epochs": epochs} if resume else RunConfig("gan_mlp", epochs=epochs, **TINY)
    result = train_run(run_dir, config, resume=resume, progress=False)
    return {name: {k: v.clone() for k, v in module.state_dict().items()}
            for name, module in result.setup.modules.items()}


@pytest.fixture(scope="module")
def straight(tmp_path_factory, mnist_available):
    """A 2-rank gan_mlp run of 2 epochs in one go, and what each rank ended with."""
    run_dir = tmp_path_factory.mktemp("ddp") / "straight"
    return run_dir, run_local(_train_run_rank, 2, str(run_dir), 2, False, timeout=120)


def test_two_rank_run_folder_is_written_once_by_rank_0(straight):
    run_dir, ranks = straight
    for name in ranks[0]:
        assert all(torch.equal(ranks[0][name][k], ranks[1][name][k]) for k in ranks[0][name])
    checkpoint = read_checkpoint(run_dir)
    assert checkpoint.record["world_size"] == 2 and checkpoint.epoch == 2
    assert all(torch.equal(checkpoint.weights[f"generator.{k}"], v) for k, v in ranks[0]["generator"].items())
    rows = read_metrics(run_dir)
    # 256 images, global batch 2 x 32: 4 steps per epoch, a row every 2 steps
    assert [row["step"] for row in rows] == [2, 4, 6, 8]
    assert json.loads((run_dir / "config.json").read_text())["batch_size"] == 32
    assert sorted(p.name for p in (run_dir / "samples").iterdir()) == ["epoch_0001.png", "epoch_0002.png"]


def test_two_rank_run_resumes_exactly(straight, tmp_path):
    run_dir, ranks = straight
    resumed = tmp_path / "resumed"
    run_local(_train_run_rank, 2, str(resumed), 1, False, timeout=120)
    again = run_local(_train_run_rank, 2, str(resumed), 2, True, timeout=120)
    a, b = read_checkpoint(run_dir), read_checkpoint(resumed)
    assert all(torch.equal(a.weights[k], b.weights[k]) for k in a.weights)
    assert a.record["history"]["rows"] == b.record["history"]["rows"]
    assert all(torch.equal(again[1]["generator"][k], ranks[1]["generator"][k]) for k in ranks[1]["generator"])


# --------------------------------------------------------------------------- torchrun itself

ALL_REDUCE = textwrap.dedent("""
    import os, torch, torch.distributed as dist
    dist.init_process_group("gloo")
    value = torch.tensor([float(dist.get_rank() + 1)])
    dist.all_reduce(value)
    print(f"rank {dist.get_rank()} of {dist.get_world_size()}: sum {value.item():g}", flush=True)
    dist.destroy_process_group()
""")


def test_torchrun_starts_two_gloo_ranks_on_a_free_loopback_port(tmp_path):
    script = tmp_path / "all_reduce.py"
    script.write_text(ALL_REDUCE)
    done = run_torchrun([str(script)], nproc=2, timeout=120)
    assert "rank 0 of 2: sum 3" in done.stdout and "rank 1 of 2: sum 3" in done.stdout
    command = torchrun_command(["x.py"], 2)
    assert command[command.index("--master_addr") + 1] == "127.0.0.1"


def test_torchrun_failure_and_timeout_end_every_process(tmp_path):
    script = tmp_path / "hang.py"
    script.write_text("import os, sys, time\nif os.environ['RANK'] == '1':\n    sys.exit(3)\ntime.sleep(600)\n")
    with pytest.raises(RuntimeError, match="torchrun exited"):
        run_torchrun([str(script)], nproc=2, timeout=120)
    script.write_text("import time\ntime.sleep(600)\n")
    import subprocess

    with pytest.raises(subprocess.TimeoutExpired):
        run_torchrun([str(script)], nproc=2, timeout=5)


@pytest.mark.slow
def test_the_command_line_under_torchrun(tmp_path, mnist_available):
    """The documented command: torchrun -m aigc_lessons.cli train (3 launches of 3 processes: slow on 2 cores)."""
    common = ["-m", "aigc_lessons.cli", "train", "gan_mlp", "--subset", "256", "--batch-size", "32",
              "--log-every", "2", "--device", "cpu", "--no-progress"]
    env = {"AIGC_LESSONS_DATA": os.environ.get("AIGC_LESSONS_DATA", "")}
    done = run_torchrun([*common, "--run-dir", str(tmp_path / "a"), "--epochs", "2"], nproc=2, timeout=300, env=env)
    assert done.stdout.count("done: epochs 1-2") == 1  # rank 0 alone reports
    run_torchrun([*common, "--run-dir", str(tmp_path / "b"), "--epochs", "1"], nproc=2, timeout=300, env=env)
    run_torchrun([*common, "--run-dir", str(tmp_path / "b"), "--epochs", "2", "--resume"], nproc=2, timeout=300,
                 env=env)
    a, b = read_checkpoint(tmp_path / "a"), read_checkpoint(tmp_path / "b")
    assert a.record["world_size"] == 2 and all(torch.equal(a.weights[k], b.weights[k]) for k in a.weights)
