"""Run folders and checkpoints: exact resumption, safe formats, clear errors that overwrite nothing."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from aigc_lessons.runs import (
    RunConfig,
    RunError,
    checkpoint_paths,
    list_checkpoints,
    load_run,
    optimizer_state_from_flat,
    optimizer_state_to_flat,
    read_checkpoint,
    read_metrics,
    rng_state,
    sample_run,
    set_rng_state,
    train_run,
)
from aigc_lessons.trainers import TRAINERS, UnknownModelError, get_trainer

ROOT = Path(__file__).resolve().parent.parent

# A tiny run: 64 images, 2 steps per epoch, every step logged.
TINY = dict(subset=64, batch_size=32, log_every=1, device="cpu")


def tiny(epochs: int, **changes) -> RunConfig:
    return RunConfig("gan_mlp", epochs=epochs, **{**TINY, **changes})


def folder_fingerprint(folder: Path) -> dict[str, str]:
    """SHA-256 of every file under ``folder``: compare before and after to prove nothing was written."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def assert_same_final_state(run_a: Path, run_b: Path) -> None:
    a, b = read_checkpoint(run_a), read_checkpoint(run_b)
    assert a.epoch == b.epoch
    assert sorted(a.weights) == sorted(b.weights)
    differing = [k for k in a.weights if not torch.equal(a.weights[k], b.weights[k])]
    assert not differing, f"weights differ after resuming: {differing[:3]}"
    differing = [k for k in a.state if not torch.equal(a.state[k], b.state[k])]
    assert not differing, f"optimizer or RNG state differs after resuming: {differing[:3]}"
    assert a.record["history"]["rows"] == b.record["history"]["rows"], "loss histories differ"


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, mnist_available) -> Path:
    """A 2-epoch run trained in one go (shared by the resume tests)."""
    run_dir = tmp_path_factory.mktemp("runs") / "straight"
    train_run(run_dir, tiny(2), progress=False)
    return run_dir


def test_run_folder_layout_and_contents(uninterrupted):
    names = {str(p.relative_to(uninterrupted)) for p in uninterrupted.rglob("*") if p.is_file()}
    for epoch in (1, 2):
        for path in checkpoint_paths(uninterrupted, epoch):
            assert str(path.relative_to(uninterrupted)) in names
        assert f"samples/epoch_{epoch:04d}.png" in names
    assert {"config.json", "metrics.jsonl"} <= names
    suffixes = {Path(n).suffix for n in names}
    assert suffixes <= {".json", ".jsonl", ".safetensors", ".png"}, f"unexpected file types (pickles?): {suffixes}"
    rows = read_metrics(uninterrupted)
    assert len(rows) == 4 and rows[-1]["epoch"] == 2 and rows[-1]["step"] == 4
    assert json.loads((uninterrupted / "config.json").read_text())["epochs"] == 2


def test_resume_gives_the_same_result_as_an_uninterrupted_run(tmp_path, uninterrupted):
    run_dir = tmp_path / "stopped"
    train_run(run_dir, tiny(1), progress=False)
    assert list_checkpoints(run_dir) == [1]
    result = train_run(run_dir, tiny(2), resume=True, progress=False)
    assert result.start_epoch == 1
    assert_same_final_state(uninterrupted, run_dir)
    assert read_metrics(run_dir) == read_metrics(uninterrupted)
    for path_a, path_b in zip(checkpoint_paths(uninterrupted, 2)[:2], checkpoint_paths(run_dir, 2)[:2]):
        assert path_a.read_bytes() == path_b.read_bytes(), f"{path_b.name} is not byte-identical"


def test_resume_without_config_uses_the_stored_settings(tmp_path):
    run_dir = tmp_path / "run"
    train_run(run_dir, tiny(1), progress=False)
    result = train_run(run_dir, None, resume=True, progress=False)  # already at its 1 epoch: nothing to do
    assert result.start_epoch == 1 and result.config.subset == 64


def _wait_for(path: Path, process: subprocess.Popen, seconds: float = 120) -> None:
    deadline = time.time() + seconds
    while not path.exists():
        if process.poll() is not None:
            raise AssertionError(f"training exited early:\n{process.stderr.read()}")
        if time.time() > deadline:
            process.kill()
            raise AssertionError(f"{path} did not appear within {seconds} s")
        time.sleep(0.05)


@pytest.mark.parametrize("how", ["ctrl-c", "killed"])
def test_a_stopped_training_process_resumes_exactly(tmp_path, how, mnist_available):
    """Start the CLI, stop it after its first checkpoint (SIGINT or SIGKILL), resume, compare."""
    run_dir = tmp_path / "run"
    command = [sys.executable, "-m", "aigc_lessons.cli", "train", "gan_mlp", "--run-dir", str(run_dir),
               "--epochs", "200", "--subset", "64", "--batch-size", "32", "--log-every", "1", "--device", "cpu",
               "--no-progress"]
    # A child inherits an ignored SIGINT (pytest-xdist workers ignore it), and Python then never
    # raises KeyboardInterrupt; give the child the default disposition, as a terminal would.
    process = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    _wait_for(checkpoint_paths(run_dir, 1)[2], process)
    process.send_signal(signal.SIGINT if how == "ctrl-c" else signal.SIGKILL)
    _, stderr = process.communicate(timeout=60)
    if how == "ctrl-c":
        assert process.returncode == 130, stderr
        assert "--resume" in stderr, f"the interrupt message should say how to resume:\n{stderr}"
    else:
        assert process.returncode == -signal.SIGKILL
    done = list_checkpoints(run_dir)[-1]
    read_checkpoint(run_dir)  # the last checkpoint on disk is complete and verifies
    resumed = subprocess.run(command[:8] + [str(done + 1), "--resume", "--no-progress"], cwd=tmp_path,
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    reference = tmp_path / "reference"
    train_run(reference, tiny(done + 1), progress=False)
    assert_same_final_state(reference, run_dir)


def test_corrupt_checkpoint_is_rejected_and_nothing_is_overwritten(tmp_path, uninterrupted):
    run_dir = tmp_path / "corrupt"
    train_run(run_dir, tiny(1), progress=False)
    weights, _, _ = checkpoint_paths(run_dir, 1)
    data = bytearray(weights.read_bytes())
    data[-100] ^= 0xFF  # one flipped byte inside a tensor
    weights.write_bytes(bytes(data))
    before = folder_fingerprint(run_dir)
    with pytest.raises(RunError, match=r"corrupt: its SHA-256 is .* Delete the damaged checkpoint"):
        train_run(run_dir, tiny(2), resume=True, progress=False)
    assert folder_fingerprint(run_dir) == before, "a failed resume must not write anything"
    with pytest.raises(RunError, match="corrupt"):
        sample_run(run_dir)


def test_truncated_checkpoint_record_is_rejected(tmp_path):
    run_dir = tmp_path / "truncated"
    train_run(run_dir, tiny(1), progress=False)
    record = checkpoint_paths(run_dir, 1)[2]
    record.write_text(record.read_text()[:200])
    before = folder_fingerprint(run_dir)
    with pytest.raises(RunError, match=r"checkpoint record .* is corrupt"):
        train_run(run_dir, None, resume=True, progress=False)
    assert folder_fingerprint(run_dir) == before


def test_checkpoint_of_another_model_or_setting_is_rejected(tmp_path):
    gan, other = tmp_path / "gan", tmp_path / "other"
    train_run(gan, tiny(1), progress=False)
    train_run(other, tiny(1, options={"latent_dim": 8}), progress=False)
    # Put the other run's checkpoint files into the first run (as a careless copy would).
    for source, target in zip(checkpoint_paths(other, 1), checkpoint_paths(gan, 1)):
        target.write_bytes(source.read_bytes())
    before = folder_fingerprint(gan)
    with pytest.raises(RunError, match=r"made with other settings \(options: checkpoint .*latent_dim.*8"):
        train_run(gan, tiny(2), resume=True, progress=False)
    assert folder_fingerprint(gan) == before


def test_resume_refuses_changed_settings_and_new_runs_refuse_existing_folders(tmp_path):
    run_dir = tmp_path / "run"
    train_run(run_dir, tiny(1), progress=False)
    before = folder_fingerprint(run_dir)
    with pytest.raises(RunError, match=r"cannot resume with different settings \(lr: run 0.0002, asked 0.001\)"):
        train_run(run_dir, tiny(2, lr=1e-3), resume=True, progress=False)
    with pytest.raises(RunError, match="already holds a run"):
        train_run(run_dir, tiny(2), progress=False)
    with pytest.raises(RunError, match="trained as 'gan_mlp', not 'vae'"):
        train_run(run_dir, RunConfig("vae", epochs=2), resume=True, progress=False)
    with pytest.raises(RunError, match="not a run folder"):
        train_run(tmp_path / "missing", tiny(1), resume=True, progress=False)
    assert folder_fingerprint(run_dir) == before


def test_invalid_settings_get_clear_errors():
    with pytest.raises(ValueError, match=r"epochs must be a positive integer \(>= 1\), got 0"):
        RunConfig("gan_mlp", epochs=0).resolved()
    with pytest.raises(ValueError, match="lr must be a number > 0 and < 1, got 5"):
        RunConfig("gan_mlp", lr=5).resolved()
    with pytest.raises(ValueError, match=r"no option 'depth'; its options: latent_dim \(default 100, a positive"):
        RunConfig("gan_mlp", options={"depth": 3}).resolved()
    with pytest.raises(UnknownModelError, match="unknown model 'gan'"):
        get_trainer("gan")


def test_optimizer_state_survives_the_flat_round_trip():
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.5, 0.999))
    for _ in range(3):
        optimizer.zero_grad()
        model(torch.randn(4, 3)).pow(2).sum().backward()
        optimizer.step()
    tensors, meta = optimizer_state_to_flat("opt", optimizer)
    meta = json.loads(json.dumps(meta))  # what a checkpoint stores
    restored = torch.optim.Adam(model.parameters(), lr=0.5)
    restored.load_state_dict(optimizer_state_from_flat("opt", tensors, meta))
    original, again = optimizer.state_dict(), restored.state_dict()
    assert again["param_groups"] == original["param_groups"]
    for index, values in original["state"].items():
        for key, value in values.items():
            assert torch.equal(again["state"][index][key], value), (index, key)


def test_random_states_survive_the_round_trip():
    import random

    import numpy as np

    tensors, meta = rng_state()
    meta = json.loads(json.dumps(meta))
    first = (torch.rand(3), random.random(), np.random.rand())
    set_rng_state(tensors, meta)
    second = (torch.rand(3), random.random(), np.random.rand())
    assert torch.equal(first[0], second[0]) and first[1:] == second[1:]


def test_load_run_and_sample_a_png(tmp_path, uninterrupted):
    config, setup, epoch = load_run(uninterrupted)
    assert epoch == 2 and config.model == "gan_mlp"
    assert not setup.modules["generator"].training
    state = torch.get_rng_state()
    path = sample_run(uninterrupted, out=tmp_path / "grid.png", count=10, seed=3)
    assert torch.equal(state, torch.get_rng_state()), "sampling must not change the caller's random state"
    import matplotlib.image

    image = matplotlib.image.imread(path)
    assert image.shape[0] > 28 and image.shape[1] > 28
    with pytest.raises(RunError, match="no checkpoint for epoch 7"):
        load_run(uninterrupted, epoch=7)


@pytest.mark.parametrize("name", sorted(TRAINERS))
def test_every_trainer_builds_steps_and_samples(name):
    config = RunConfig(name, epochs=1, device="cpu").resolved()
    torch.manual_seed(0)
    setup = get_trainer(name).build(config, torch.device("cpu"))
    low, high = setup.value_range
    images = torch.rand(8, 1, 28, 28) * (high - low) + low
    batch = (images, torch.arange(8) % 10) if setup.with_labels else (images,)
    losses = setup.step(batch)
    assert losses and all(torch.isfinite(v) and v.dim() == 0 for v in losses.values()), losses
    state = torch.get_rng_state()
    samples = setup.sample(torch.Generator().manual_seed(0), 5)
    assert torch.equal(state, torch.get_rng_state()), f"{name}: sampling drew from the global random state"
    assert samples.shape == (5, 1, 28, 28) and samples.min() >= low - 1e-6 and samples.max() <= high + 1e-6


def test_eval_passes_the_value_range_and_the_conditional_labels_to_the_metrics(uninterrupted, monkeypatch):
    """``evaluate_run`` calls ``metrics.evaluate_images``; checked with a stand-in, so it runs without the classifier."""
    import types

    from aigc_lessons import runs
    from aigc_lessons.runs import finished

    calls = []

    def evaluate_images(images, value_range, labels=None, device=None, progress=True):
        calls.append((images.shape, value_range, labels))
        return {"fd_mnist": torch.tensor(12.5), "precision": 0.25}

    monkeypatch.setattr(finished, "metrics", types.SimpleNamespace(evaluate_images=evaluate_images))
    result = runs.evaluate_run(uninterrupted, count=30, device="cpu")
    (shape, value_range, labels), = calls
    assert shape == (30, 1, 28, 28) and value_range == (-1.0, 1.0) and labels is None
    assert result["metrics"] == {"fd_mnist": 12.5, "precision": 0.25}, "tensor scores must become plain floats"
    assert json.loads(Path(result["file"]).read_text())["metrics"]["fd_mnist"] == 12.5
    assert finished._class_labels(25).tolist() == [i % 10 for i in range(25)]


def test_runs_table_joins_settings_and_evaluations(tmp_path):
    from aigc_lessons.runs import runs_table

    for seed in (0, 1):
        train_run(tmp_path / f"seed{seed}", tiny(1, seed=seed), progress=False)
    (tmp_path / "seed1" / "eval_epoch_0001.json").write_text(json.dumps(
        {"epoch": 1, "count": 10, "metrics": {"fd_mnist": 3.5, "precision": 0.5}}))
    (tmp_path / "not_a_run").mkdir()
    rows = {row["name"]: row for row in runs_table(tmp_path)}
    assert sorted(rows) == ["seed0", "seed1"]
    assert rows["seed0"]["seed"] == 0 and rows["seed0"]["epochs_done"] == 1 and "fd_mnist" not in rows["seed0"]
    assert rows["seed1"]["fd_mnist"] == 3.5 and rows["seed1"]["eval_count"] == 10 and rows["seed1"]["lr"] == 2e-4


def test_only_the_latest_checkpoints_are_kept_and_the_run_still_resumes(tmp_path):
    run_dir = tmp_path / "pruned"
    train_run(run_dir, tiny(3, keep_checkpoints=2), progress=False)
    assert list_checkpoints(run_dir) == [2, 3]
    files = sorted(p.name for p in (run_dir / "checkpoints").iterdir())
    assert files == sorted(p.name for e in (2, 3) for p in checkpoint_paths(run_dir, e)), f"stray files: {files}"
    result = train_run(run_dir, tiny(4, keep_checkpoints=2), resume=True, progress=False)
    assert result.start_epoch == 3 and list_checkpoints(run_dir) == [3, 4]
    with pytest.raises(ValueError, match=r"keep_checkpoints must be a positive integer \(>= 1\)"):
        tiny(1, keep_checkpoints=0).resolved()


def test_precision_may_change_on_resume_and_older_runs_without_it_resume(tmp_path):
    run_dir = tmp_path / "run"
    train_run(run_dir, tiny(1), progress=False)
    result = train_run(run_dir, tiny(2, options={"precision": "bf16"}), resume=True, progress=False)
    assert result.config.options["precision"] == "bf16" and list_checkpoints(run_dir) == [1, 2]
    # A run folder written before the option existed has no "precision" in its config.json.
    config_path = run_dir / "config.json"
    stored = json.loads(config_path.read_text())
    del stored["options"]["precision"]
    config_path.write_text(json.dumps(stored))
    result = train_run(run_dir, tiny(3), resume=True, progress=False)
    assert list_checkpoints(run_dir)[-1] == 3
