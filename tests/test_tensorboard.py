"""TensorBoard event files of a run: the logged losses as scalars and the sample grids as images.

The files are read back with TensorBoard's own reader (``EventAccumulator``),
the one ``tensorboard --logdir runs`` uses.
"""

from __future__ import annotations

import pytest

from aigc_lessons import cli
from aigc_lessons.runs import RunConfig, checkpoint_paths, read_metrics, train_run

pytest.importorskip("tensorboard")
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402

TINY = dict(subset=64, batch_size=32, log_every=1, device="cpu")


def events(run_dir) -> EventAccumulator:
    return EventAccumulator(str(run_dir), size_guidance={"scalars": 0, "images": 0}).Reload()


@pytest.fixture(scope="module")
def logged(tmp_path_factory, mnist_available):
    run_dir = tmp_path_factory.mktemp("tb") / "run"
    train_run(run_dir, RunConfig("gan_mlp", epochs=2, **TINY), progress=False, tensorboard=True)
    return run_dir


def test_scalars_are_the_logged_losses(logged):
    accumulator = events(logged)
    assert {"train/loss_d", "train/loss_g"} <= set(accumulator.Tags()["scalars"])
    rows = read_metrics(logged)
    for name in ("loss_d", "loss_g"):
        scalars = accumulator.Scalars(f"train/{name}")
        assert [s.step for s in scalars] == [row["step"] for row in rows] == [1, 2, 3, 4]
        assert all(abs(s.value - row[name]) < 1e-6 for s, row in zip(scalars, rows))


def test_one_sample_grid_per_checkpoint(logged):
    images = events(logged).Images("samples")
    assert [image.step for image in images] == [2, 4]  # end of epoch 1 and 2 (2 steps per epoch)
    # an 8 x 8 grid of 28 x 28 digits with 2 pixels of padding
    assert (images[0].width, images[0].height) == (8 * 30 + 2, 8 * 30 + 2)
    assert images[0].encoded_image_string.startswith(b"\x89PNG")
    assert "config/text_summary" in events(logged).Tags()["tensors"]  # the settings, as text


def test_resumed_run_continues_the_curves_without_repeating_steps(tmp_path, mnist_available):
    """An interrupted run logged epoch 2 but its checkpoint is lost: resuming from epoch 1 hides the old epoch 2."""
    run_dir = tmp_path / "run"
    train_run(run_dir, RunConfig("gan_mlp", epochs=2, **TINY), progress=False, tensorboard=True)
    for path in checkpoint_paths(run_dir, 2):
        path.unlink()
    train_run(run_dir, {"epochs": 3}, resume=True, progress=False, tensorboard=True)
    assert len(list(run_dir.glob("events.out.tfevents.*"))) == 2
    steps = [s.step for s in events(run_dir).Scalars("train/loss_d")]
    assert steps == [1, 2, 3, 4, 5, 6]
    assert [image.step for image in events(run_dir).Images("samples")] == [2, 4, 6]


def test_the_command_line_writes_events_unless_told_not_to(tmp_path, mnist_available, capsys):
    options = ["--epochs", "1", "--subset", "64", "--batch-size", "32", "--device", "cpu", "--no-progress"]
    assert cli.main(["train", "gan_mlp", "--run-dir", str(tmp_path / "with"), *options]) == 0
    assert cli.main(["train", "gan_mlp", "--run-dir", str(tmp_path / "without"), "--no-tensorboard", *options]) == 0
    assert len(list((tmp_path / "with").glob("events.out.tfevents.*"))) == 1
    assert not list((tmp_path / "without").glob("events.out.tfevents.*"))
