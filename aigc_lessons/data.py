"""MNIST as tensors, and a batch iterator over tensors that already live on the device.

MNIST is small (60 000 + 10 000 images of 28 x 28 pixels, 188 MB as float32, 55 MB as bytes), so
the book keeps it as one tensor on the training device and slices batches out of
it. That is much faster than a ``DataLoader`` that converts every image from PIL
on every epoch (``benchmarks/`` measures by how much).

Where the data come from, in this order:

1. the ``root`` argument;
2. the environment variable ``AIGC_LESSONS_DATA``;
3. ``~/.cache/aigc_lessons/data``.

The folder uses torchvision's layout, ``<root>/MNIST/raw/train-images-idx3-ubyte``
and so on. When only the ``.gz`` files are there they are extracted into the cache
folder (the data folder is never written to: it may be a read-only mirror). Every
uncompressed file is checked against its SHA-256 before use. When files are
missing and downloading is allowed, torchvision downloads them.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch

DATA_ENV = "AIGC_LESSONS_DATA"
NO_DOWNLOAD_ENV = "AIGC_LESSONS_NO_DOWNLOAD"
CACHE_ENV = "AIGC_LESSONS_CACHE"

# SHA-256 of the *uncompressed* files, and their sizes in bytes.
MNIST_FILES: dict[str, tuple[str, int]] = {
    "train-images-idx3-ubyte": ("ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db", 47040016),
    "train-labels-idx1-ubyte": ("65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5", 60008),
    "t10k-images-idx3-ubyte": ("0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7", 7840016),
    "t10k-labels-idx1-ubyte": ("ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2", 10008),
}
_SPLIT_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081  # of the training pixels in [0, 1]


class MnistDataError(RuntimeError):
    """MNIST files are missing or corrupt; the message says where we looked and what to do."""


def cache_dir() -> Path:
    """The package's cache folder (``AIGC_LESSONS_CACHE`` or ``~/.cache/aigc_lessons``)."""
    return Path(os.environ.get(CACHE_ENV, Path.home() / ".cache" / "aigc_lessons")).expanduser()


def default_data_root() -> Path:
    """The data root chosen when no ``root`` argument is given."""
    env = os.environ.get(DATA_ENV)
    return Path(env).expanduser() if env else cache_dir() / "data"


def resolve_data_root(root: str | os.PathLike | None = None) -> Path:
    """The data root: the argument, else ``AIGC_LESSONS_DATA``, else the cache folder."""
    return Path(root).expanduser() if root is not None else default_data_root()


def sha256_of(path: Path, chunk_size: int = 1 << 20) -> str:
    """SHA-256 hex digest of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def _extracted_dir(raw_dir: Path) -> Path:
    """Where ``.gz`` files are extracted: a cache folder keyed by the data folder.

    The data folder itself is never written to: it may be a shared, read-only mirror.
    """
    key = hashlib.sha256(str(raw_dir.resolve()).encode()).hexdigest()[:12]
    return cache_dir() / "extracted" / key / "MNIST" / "raw"


def _locate(raw_dir: Path, name: str) -> Path | None:
    """Find the uncompressed file, extracting it from ``name.gz`` if only that exists."""
    for folder in (raw_dir, _extracted_dir(raw_dir)):
        if (folder / name).is_file():
            return folder / name
    gz = raw_dir / f"{name}.gz"
    if not gz.is_file():
        return None
    target_dir = _extracted_dir(raw_dir)
    target_dir.mkdir(parents=True, exist_ok=True)
    partial = target_dir / f"{name}.partial-{os.getpid()}"
    try:
        with gzip.open(gz, "rb") as source, open(partial, "wb") as sink:
            shutil.copyfileobj(source, sink)
    except (OSError, EOFError) as error:
        partial.unlink(missing_ok=True)
        raise MnistDataError(
            f"Could not extract {gz}: {error}. The gzip file is damaged; delete it and "
            "download MNIST again (see 'aigc-lessons data --help')."
        ) from error
    partial.replace(target_dir / name)  # atomic: a half-written file never has the real name
    return target_dir / name


def verify_mnist(root: str | os.PathLike | None = None) -> dict[str, Path]:
    """Find, extract if needed and checksum the four MNIST files; return their paths.

    Raises :class:`MnistDataError` naming every missing or corrupt file.

    Example:
        >>> paths = verify_mnist("../shared/data")  # doctest: +SKIP
    """
    data_root = resolve_data_root(root)
    raw_dir = data_root / "MNIST" / "raw"
    found: dict[str, Path] = {}
    problems: list[str] = []
    for name, (expected_sha, expected_size) in MNIST_FILES.items():
        path = _locate(raw_dir, name)
        if path is None:
            problems.append(f"missing: {name} (nor {name}.gz)")
            continue
        size = path.stat().st_size
        if size != expected_size:
            problems.append(f"corrupt: {path} has {size} bytes, expected {expected_size}")
            continue
        actual_sha = sha256_of(path)
        if actual_sha != expected_sha:
            problems.append(f"corrupt: {path} has SHA-256 {actual_sha[:16]}..., expected {expected_sha[:16]}...")
            continue
        found[name] = path
    if problems:
        raise MnistDataError(_explain(raw_dir, problems))
    return found


def _explain(raw_dir: Path, problems: list[str]) -> str:
    lines = "\n  - ".join(problems)
    return (
        f"MNIST is not usable from {raw_dir}:\n  - {lines}\n"
        "How to fix it:\n"
        f"  * offline: copy the four MNIST files (.gz is fine) into {raw_dir}, or point the book at a folder "
        f"that has them: export {DATA_ENV}=/path/to/data (the folder that contains MNIST/raw);\n"
        "  * online: run 'aigc-lessons data --download' (or call load_mnist(download=True));\n"
        "  * corrupt files: delete them and copy or download them again."
    )


def _download(data_root: Path) -> None:
    from torchvision.datasets import MNIST  # imported lazily: torchvision is slow to import

    for train in (True, False):
        MNIST(str(data_root), train=train, download=True)


@dataclass
class MnistTensors:
    """Images ``(N, 1, 28, 28)`` float32 and labels ``(N,)`` int64, on one device."""

    images: torch.Tensor
    labels: torch.Tensor
    value_range: tuple[float, float]

    def __len__(self) -> int:
        return len(self.labels)

    def to(self, device: str | torch.device) -> "MnistTensors":
        return MnistTensors(self.images.to(device), self.labels.to(device), self.value_range)


_RAW_CACHE: dict[tuple[str, str], tuple[torch.Tensor, torch.Tensor]] = {}


def _read_split(raw_files: dict[str, Path], split: str) -> tuple[torch.Tensor, torch.Tensor]:
    from torchvision.datasets.mnist import read_image_file, read_label_file

    image_name, label_name = _SPLIT_FILES[split]
    key = (str(raw_files[image_name]), split)
    if key not in _RAW_CACHE:
        _RAW_CACHE[key] = (read_image_file(str(raw_files[image_name])), read_label_file(str(raw_files[label_name])))
    return _RAW_CACHE[key]


def load_mnist(
    split: str = "train",
    value_range: tuple[float, float] = (0.0, 1.0),
    root: str | os.PathLike | None = None,
    device: str | torch.device = "cpu",
    subset: int | None = None,
    download: bool | None = None,
) -> MnistTensors:
    """Load an MNIST split as tensors.

    Args:
        split: ``"train"`` (60 000 images) or ``"test"`` (10 000).
        value_range: pixel range, ``(0, 1)`` or ``(-1, 1)`` (the latter for tanh generators).
        root: data folder containing ``MNIST/raw``; default from ``AIGC_LESSONS_DATA``.
        device: where the tensors go (``"auto"`` picks CUDA when present).
        subset: keep only the first ``subset`` examples (fast mode).
        download: download through torchvision when files are missing. ``None`` means
            yes unless ``AIGC_LESSONS_NO_DOWNLOAD=1``.

    Example:
        >>> test = load_mnist("test", value_range=(-1, 1), subset=100)  # doctest: +SKIP
        >>> test.images.shape, test.labels[:5].tolist()  # doctest: +SKIP
        (torch.Size([100, 1, 28, 28]), [7, 2, 1, 0, 4])
    """
    from .core import get_device

    if split not in _SPLIT_FILES:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    low, high = (float(v) for v in value_range)
    if high <= low:
        raise ValueError(f"value_range must be (low, high) with low < high, got {value_range!r}")
    if subset is not None and subset < 1:
        raise ValueError(f"subset must be a positive number of examples, got {subset}")
    data_root = resolve_data_root(root)
    if download is None:
        download = os.environ.get(NO_DOWNLOAD_ENV, "") not in {"1", "true", "yes"}
    try:
        raw_files = verify_mnist(data_root)
    except MnistDataError as missing:
        if not download:
            raise
        try:
            _download(data_root)
        except Exception as error:  # any network failure: report the original problem too
            raise MnistDataError(f"{missing}\n(Download was attempted and failed: {error})") from error
        raw_files = verify_mnist(data_root)

    pixels, labels = _read_split(raw_files, split)
    if subset is not None:
        pixels, labels = pixels[:subset], labels[:subset]
    images = pixels.unsqueeze(1).to(torch.float32).div_(255.0)
    if (low, high) != (0.0, 1.0):
        images.mul_(high - low).add_(low)
    target = get_device(device)
    return MnistTensors(images.to(target), labels.to(torch.int64).to(target), (low, high))


class TensorBatches:
    """Iterate over aligned tensors in mini-batches, without a DataLoader.

    The tensors stay where they are (typically on the training device), and each
    epoch draws a new permutation from a seeded generator, so two iterators with
    the same seed give the same batches, and ``set_epoch`` lets a resumed run
    continue the same sequence.

    Example:
        >>> x, y = torch.arange(10.0), torch.arange(10)
        >>> batches = TensorBatches(x, y, batch_size=4, seed=0)
        >>> [len(bx) for bx, by in batches]
        [4, 4, 2]
    """

    def __init__(
        self,
        *tensors: torch.Tensor,
        batch_size: int,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
    ) -> None:
        if not tensors:
            raise ValueError("TensorBatches needs at least one tensor")
        sizes = {len(t) for t in tensors}
        if len(sizes) != 1:
            raise ValueError(f"all tensors must have the same first dimension, got sizes {sorted(sizes)}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self.tensors = tensors
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.drop_last = drop_last
        self.epoch = 0

    @property
    def num_examples(self) -> int:
        return len(self.tensors[0])

    def __len__(self) -> int:
        full, rest = divmod(self.num_examples, self.batch_size)
        return full if (self.drop_last or rest == 0) else full + 1

    def set_epoch(self, epoch: int) -> None:
        """Make the next ``iter()`` produce the batches of this epoch (used when resuming)."""
        self.epoch = epoch

    def __iter__(self):
        device = self.tensors[0].device
        if self.shuffle:
            generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
            order = torch.randperm(self.num_examples, generator=generator).to(device)
        else:
            order = torch.arange(self.num_examples, device=device)
        self.epoch += 1
        stop = len(self) * self.batch_size
        for start in range(0, min(stop, self.num_examples), self.batch_size):
            index = order[start : start + self.batch_size]
            yield tuple(t.index_select(0, index) for t in self.tensors)
