"""MNIST loading, checksum errors, and the on-device batch iterator."""

from __future__ import annotations

import gzip

import pytest
import torch

from aigc_lessons.data import MNIST_FILES, MnistDataError, TensorBatches, load_mnist, verify_mnist


@pytest.mark.parametrize("split, size, first_labels", [("train", 60_000, [5, 0, 4, 1, 9]), ("test", 10_000, [7, 2, 1, 0, 4])])
def test_splits_have_the_published_sizes_and_first_labels(mnist_available, split, size, first_labels):
    data = load_mnist(split)
    assert data.images.shape == (size, 1, 28, 28)
    assert data.images.dtype == torch.float32 and data.labels.dtype == torch.int64
    assert data.labels[:5].tolist() == first_labels, "label order differs from the published MNIST files"
    assert torch.bincount(data.labels).tolist() == torch.bincount(data.labels, minlength=10).tolist()


@pytest.mark.parametrize("value_range", [(0.0, 1.0), (-1.0, 1.0)])
def test_pixel_range_follows_the_argument(mnist_available, value_range):
    images = load_mnist("test", value_range=value_range, subset=500).images
    assert images.min().item() == pytest.approx(value_range[0])
    assert images.max().item() == pytest.approx(value_range[1])


def test_subset_keeps_the_first_examples(mnist_available):
    full, small = load_mnist("test"), load_mnist("test", subset=100)
    assert len(small) == 100
    assert torch.equal(small.images, full.images[:100]) and torch.equal(small.labels, full.labels[:100])


def test_bad_arguments_are_explained(mnist_available):
    with pytest.raises(ValueError, match="split must be 'train' or 'test'"):
        load_mnist("validation")
    with pytest.raises(ValueError, match="low < high"):
        load_mnist("test", value_range=(1, 0))
    with pytest.raises(ValueError, match="subset must be a positive"):
        load_mnist("test", subset=0)


@pytest.fixture
def empty_cache(tmp_path, monkeypatch):
    """A private cache folder, so extraction in these tests never touches the user's cache."""
    monkeypatch.setenv("AIGC_LESSONS_CACHE", str(tmp_path / "cache"))
    return tmp_path


def test_missing_folder_says_where_it_looked_and_how_to_fix(empty_cache):
    root = empty_cache / "nowhere"
    with pytest.raises(MnistDataError) as error:
        load_mnist("test", root=root, download=False)
    message = str(error.value)
    assert str(root / "MNIST" / "raw") in message
    assert all(f"missing: {name}" in message for name in MNIST_FILES)
    assert "AIGC_LESSONS_DATA" in message and "How to fix it" in message


def test_truncated_and_tampered_files_are_reported_as_corrupt(empty_cache):
    raw = empty_cache / "data" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    (raw / "t10k-labels-idx1-ubyte").write_bytes(b"\0" * 100)  # wrong size
    (raw / "train-labels-idx1-ubyte").write_bytes(b"\0" * MNIST_FILES["train-labels-idx1-ubyte"][1])  # right size, wrong bytes
    with pytest.raises(MnistDataError) as error:
        verify_mnist(empty_cache / "data")
    message = str(error.value)
    assert "t10k-labels-idx1-ubyte has 100 bytes, expected 10008" in message
    assert "train-labels-idx1-ubyte has SHA-256" in message
    assert "delete them" in message


def test_damaged_gzip_gives_a_clear_error(empty_cache):
    raw = empty_cache / "data" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    (raw / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(b"short")[:-6])
    with pytest.raises(MnistDataError, match="gzip file is damaged"):
        verify_mnist(empty_cache / "data")


def test_gz_only_folder_is_extracted_to_the_cache_not_the_data_folder(mnist_available, empty_cache):
    import shutil

    from aigc_lessons.data import resolve_data_root

    source = resolve_data_root() / "MNIST" / "raw"
    raw = empty_cache / "data" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in MNIST_FILES:
        gz = source / f"{name}.gz"
        if not gz.exists():
            pytest.skip("the data folder has no .gz files to copy")
        shutil.copy(gz, raw / gz.name)
    paths = verify_mnist(empty_cache / "data")
    assert sorted(p.name for p in raw.iterdir()) == sorted(f"{n}.gz" for n in MNIST_FILES), "data folder was written to"
    assert all(str(empty_cache / "cache") in str(path) for path in paths.values())


def test_batches_cover_every_example_once_with_a_partial_last_batch():
    batches = TensorBatches(torch.arange(10), batch_size=4, seed=1)
    seen = [batch[0] for batch in batches]
    assert [len(b) for b in seen] == [4, 4, 2] and len(batches) == 3
    assert sorted(torch.cat(seen).tolist()) == list(range(10))
    dropped = TensorBatches(torch.arange(10), batch_size=4, drop_last=True)
    assert [len(b[0]) for b in dropped] == [4, 4] and len(dropped) == 2


def test_batches_are_seeded_reshuffled_per_epoch_and_resumable():
    def epoch_order(batches):
        return torch.cat([b[0] for b in batches]).tolist()

    first, second = TensorBatches(torch.arange(50), batch_size=8, seed=3), TensorBatches(torch.arange(50), batch_size=8, seed=3)
    assert epoch_order(first) == epoch_order(second), "same seed must give the same batches"
    epoch_1 = epoch_order(first)
    assert epoch_1 != epoch_order(TensorBatches(torch.arange(50), batch_size=8, seed=3)), "epochs must reshuffle"
    resumed = TensorBatches(torch.arange(50), batch_size=8, seed=3)
    resumed.set_epoch(1)
    assert epoch_order(resumed) == epoch_1, "set_epoch must reproduce a later epoch's order"


def test_batches_keep_tensors_aligned_and_reject_mismatched_sizes():
    x, y = torch.arange(20.0), torch.arange(20)
    for bx, by in TensorBatches(x, y, batch_size=6):
        assert torch.equal(bx.long(), by)
    with pytest.raises(ValueError, match="same first dimension"):
        TensorBatches(torch.zeros(3), torch.zeros(4), batch_size=2)
