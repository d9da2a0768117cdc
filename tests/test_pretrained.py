"""Tests of the pretrained registry: round trips, checksums, clear errors, shipped entries."""

from __future__ import annotations

import json

import pytest
import torch

from aigc_lessons import pretrained
from aigc_lessons.data import sha256_of
from aigc_lessons.models import DiscriminatorMLP, GeneratorMLP
from aigc_lessons.pretrained import PretrainedError

SMALL = {"latent_dim": 4, "hidden": [8]}


@pytest.fixture
def saved(tmp_path):
    torch.manual_seed(0)
    model = GeneratorMLP(**SMALL)
    pretrained.save("tiny_gan", model, SMALL, {"command": "test", "metrics": {"score": 1.0}}, weights_dir=tmp_path)
    return tmp_path, model


def _edit_card(folder, name, change):
    path = folder / f"{name}.json"
    record = json.loads(path.read_text())
    change(record)
    path.write_text(json.dumps(record))


def test_save_load_round_trip_float16(saved):
    folder, model = saved
    loaded = pretrained.load("tiny_gan", weights_dir=folder)
    z = torch.randn(5, 4)
    assert not loaded.training, "load returns the model in eval mode"
    assert torch.allclose(loaded(z), model.eval()(z), atol=5e-3), "float16 storage should change outputs by < 5e-3"
    record = pretrained.card("tiny_gan", weights_dir=folder)
    assert record["dtype"] == "float16" and len(record["sha256"]) == 64
    assert record["card"]["command"] == "test" and "hardware" in record["card"]
    assert pretrained.available(folder) == ["tiny_gan"] and pretrained.exists("tiny_gan", folder)
    assert list(pretrained.cards(folder)) == ["tiny_gan"]


def test_save_full_precision_is_exact(tmp_path):
    model = GeneratorMLP(**SMALL).eval()
    pretrained.save("exact", model, SMALL, {}, weights_dir=tmp_path, half=False)
    z = torch.randn(3, 4)
    assert torch.equal(pretrained.load("exact", weights_dir=tmp_path)(z), model(z))


def test_corrupt_file_is_rejected(saved):
    folder, _ = saved
    path = folder / "tiny_gan.safetensors"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(PretrainedError, match="corrupt or was replaced"):
        pretrained.load("tiny_gan", weights_dir=folder)


def test_truncated_file_with_matching_checksum_is_not_valid_safetensors(saved):
    folder, _ = saved
    path = folder / "tiny_gan.safetensors"
    path.write_bytes(path.read_bytes()[:40])
    _edit_card(folder, "tiny_gan", lambda r: r.update(sha256=sha256_of(path)))
    with pytest.raises(PretrainedError, match="not a valid safetensors file"):
        pretrained.load("tiny_gan", weights_dir=folder)


def test_wrong_shapes_are_named(saved):
    folder, _ = saved
    _edit_card(folder, "tiny_gan", lambda r: r["model"]["kwargs"].update(hidden=[16]))
    with pytest.raises(PretrainedError, match=r"wrong shapes: .*net\.0\.weight is \(8, 4\), the model needs \(16, 4\)"):
        pretrained.load("tiny_gan", weights_dir=folder)


def test_wrong_keys_are_named(tmp_path):
    pretrained.save("swapped", DiscriminatorMLP(hidden=(8,)), {"hidden": [8]}, {}, weights_dir=tmp_path)
    _edit_card(tmp_path, "swapped", lambda r: r["model"].update({"class": "GeneratorMLP", "kwargs": SMALL}))
    with pytest.raises(PretrainedError, match="missing tensors|unexpected tensors"):
        pretrained.load("swapped", weights_dir=tmp_path)


def test_pickle_files_are_never_loaded(saved):
    folder, model = saved
    torch.save(model.state_dict(), folder / "tiny_gan.pt")
    _edit_card(folder, "tiny_gan", lambda r: r.update(file="tiny_gan.pt"))
    with pytest.raises(PretrainedError, match="never loaded"):
        pretrained.load("tiny_gan", weights_dir=folder)
    _edit_card(folder, "tiny_gan", lambda r: r.update(file="../elsewhere.safetensors"))
    with pytest.raises(PretrainedError, match="plain"):
        pretrained.load("tiny_gan", weights_dir=folder)


def test_unknown_invalid_and_broken_entries(saved):
    folder, _ = saved
    with pytest.raises(PretrainedError, match="no pretrained entry named 'nope'.*available: tiny_gan"):
        pretrained.load("nope", weights_dir=folder)
    with pytest.raises(PretrainedError, match="invalid pretrained name"):
        pretrained.card("../tiny_gan", weights_dir=folder)
    assert not pretrained.exists("../tiny_gan", folder)
    (folder / "tiny_gan.json").write_text("{not json")
    with pytest.raises(PretrainedError, match="not valid JSON"):
        pretrained.card("tiny_gan", weights_dir=folder)
    (folder / "tiny_gan.json").write_text("{}")
    with pytest.raises(PretrainedError, match="lacks required fields"):
        pretrained.card("tiny_gan", weights_dir=folder)
    (folder / "tiny_gan.safetensors").unlink()
    assert pretrained.available(folder) == []


def test_shipped_weights_verify_and_stay_small():
    names = pretrained.available()
    total = 0
    for name in names:
        path = pretrained.verify(name)  # raises on a checksum mismatch
        record = pretrained.card(name)
        total += path.stat().st_size
        assert record["bytes"] == path.stat().st_size, f"{name}: the card's size disagrees with the file"
        assert "command" in record["card"] and "hardware" in record["card"], f"{name}: the card lacks command/hardware"
        # each file small enough to read on a laptop and to keep the clone light
        assert path.stat().st_size < 4 * 2**20, f"{name}: {path.stat().st_size / 2**20:.1f} MiB; a file's budget is 4 MiB"
    # the budget grew from 20 to 32 MiB when the tuned character GPTs (about 2.4 MB each, float16) arrived
    assert total < 32 * 2**20, f"shipped weights take {total / 2**20:.1f} MiB; the book's budget is 32 MiB"
