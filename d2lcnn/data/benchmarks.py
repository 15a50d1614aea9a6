"""Readers for the opt-in benchmark data sets: MNIST, Fashion-MNIST (IDX) and CIFAR-10.

The files are never downloaded here: they are read from a local folder (see
:func:`d2lcnn.data.download.data_root`), and a missing file raises ``FileNotFoundError``
with the command that fetches it.

Folder layout under the data root::

    mnist/          train-images-idx3-ubyte.gz  train-labels-idx1-ubyte.gz
                    t10k-images-idx3-ubyte.gz   t10k-labels-idx1-ubyte.gz
    fashion_mnist/  (the same four file names)
    cifar10/cifar-10-batches-py/  data_batch_1 .. data_batch_5  test_batch
"""

from __future__ import annotations

import gzip
import os
import pickle
from pathlib import Path

import numpy as np

from d2lcnn.data.download import (
    REMOTE_DATASETS,
    data_root,
    download_command,
    locate_data_root,
)

__all__ = [
    "CIFAR10_CLASSES",
    "FASHION_MNIST_CLASSES",
    "load_cifar10",
    "load_fashion_mnist",
    "load_mnist",
    "read_cifar10_batch",
    "read_idx",
]

FASHION_MNIST_CLASSES: tuple[str, ...] = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
CIFAR10_CLASSES: tuple[str, ...] = (
    "airplane", "automobile", "bird", "cat", "deer",
    "dog", "frog", "horse", "ship", "truck",
)

# IDX type byte -> big-endian NumPy dtype (http://yann.lecun.com/exdb/mnist/, "IDX format").
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (the MNIST format), gzip-compressed (``.gz``) or not.

    Header: two zero bytes, a type byte (0x08 = uint8, ...), the number of dimensions ``d``,
    then ``d`` big-endian uint32 sizes; then the data, row-major. "Magic number" 2051 is a
    3-d uint8 file (images), 2049 a 1-d one (labels).

    Args:
        path: the file.

    Returns:
        The array, shaped by the header, in native byte order.

    Raises:
        ValueError: if the header is malformed or the data size disagrees with it; the
            message names the file and the numbers.
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except gzip.BadGzipFile as e:
        raise ValueError(f"read_idx: {path} is not a valid gzip file ({e})") from e
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        magic = int.from_bytes(raw[:4].ljust(4, b"\0"), "big")
        raise ValueError(
            f"read_idx: {path} is not an IDX file: magic number {magic:#010x}, expected "
            f"0x0000TTDD (TT a type byte in {sorted(hex(t) for t in _IDX_DTYPES)}, DD the "
            f"number of dimensions), e.g. 2051 for images or 2049 for labels"
        )
    dtype, ndim = np.dtype(_IDX_DTYPES[raw[2]]), raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"read_idx: {path} is truncated inside its header ({len(raw)} bytes)")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) - header != expected:
        raise ValueError(
            f"read_idx: {path} holds {len(raw) - header} bytes of data, but its header "
            f"promises shape {shape} of {dtype.name} = {expected} bytes (truncated or corrupt)"
        )
    data = np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)
    return data.astype(dtype.newbyteorder("="))


def _split_arg(split: str, fn: str) -> str:
    if split not in ("train", "test"):
        raise ValueError(f"{fn}: split must be 'train' or 'test', got {split!r}")
    return split


def _require(path: Path, name: str, fn: str, root, root_dir: Path) -> Path:
    if not path.is_file():
        raise FileNotFoundError(
            f"{fn}: no file {path} (data root {root_dir}, from {locate_data_root(root).reason}). "
            f"Download it once with:\n    {download_command(name, root_dir)}\n"
            f"or pass root=... or set D2LCNN_DATA to a folder that holds it."
        )
    return path


def _load_idx_pair(name: str, fn: str, split: str, root, as_float: bool):
    split = _split_arg(split, fn)
    root_dir = data_root(root)
    folder = root_dir / REMOTE_DATASETS[name][0]
    prefix = "train" if split == "train" else "t10k"
    img_path = _require(folder / f"{prefix}-images-idx3-ubyte.gz", name, fn, root, root_dir)
    lbl_path = _require(folder / f"{prefix}-labels-idx1-ubyte.gz", name, fn, root, root_dir)
    images, labels = read_idx(img_path), read_idx(lbl_path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise ValueError(f"{fn}: {img_path} should hold (N, H, W) uint8 images, got "
                         f"{images.shape} {images.dtype}")
    if labels.shape != (len(images),) or labels.dtype != np.uint8:
        raise ValueError(f"{fn}: {lbl_path} should hold ({len(images)},) uint8 labels, got "
                         f"{labels.shape} {labels.dtype}")
    images = images[:, None]  # (N, 1, H, W)
    if as_float:
        images = images.astype(np.float32) / np.float32(255.0)
    return images, labels.astype(np.int64)


def load_mnist(
    split: str = "train", *, root: str | os.PathLike | None = None, as_float: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """MNIST handwritten digits from local IDX files (60,000 train / 10,000 test, 28x28).

    Args:
        split: ``"train"`` (default) or ``"test"``.
        root: data root (default: ``$D2LCNN_DATA`` or the repository's ``data/``); the
            files are read from ``root/mnist/``.
        as_float: if True (default) images are float32 in ``[0, 1]``, else uint8.

    Returns:
        ``(images, labels)``: images ``(N, 1, 28, 28)``, labels ``(N,)`` int64 in ``0..9``.

    Raises:
        FileNotFoundError: if a file is missing; the message gives the download command.
        ValueError: for a bad ``split`` or a malformed file.
    """
    return _load_idx_pair("mnist", "load_mnist", split, root, as_float)


def load_fashion_mnist(
    split: str = "train", *, root: str | os.PathLike | None = None, as_float: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Fashion-MNIST clothing images from local IDX files (60,000 / 10,000, 28x28).

    Same arguments, returns and errors as :func:`load_mnist`; files are read from
    ``root/fashion_mnist/``. Class names: :data:`FASHION_MNIST_CLASSES`.
    """
    return _load_idx_pair("fashion_mnist", "load_fashion_mnist", split, root, as_float)


class _CifarUnpickler(pickle.Unpickler):
    """Unpickles only what a CIFAR-10 batch holds (dicts, lists, bytes, NumPy arrays).

    Unpickling runs code named in the file, so anything else (``os.system``, ...) is refused.
    """

    _ALLOWED = {
        ("_codecs", "encode"),  # how Python 2 pickles store byte strings
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"),
    }

    def find_class(self, module, name):
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(
                f"refusing to unpickle {module}.{name}: not part of a CIFAR-10 batch"
            )
        return super().find_class(module, name)


def read_cifar10_batch(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read one CIFAR-10 "python version" batch file (e.g. ``data_batch_1``).

    The file is a pickled dict with ``b"data"``: ``(N, 3072)`` uint8 rows holding the red,
    then green, then blue 32x32 planes, and ``b"labels"``: ``N`` ints in ``0..9``.

    Args:
        path: the batch file.

    Returns:
        ``(images, labels)``: images ``(N, 3, 32, 32)`` uint8, labels ``(N,)`` int64.

    Raises:
        ValueError: if the file is not a CIFAR-10 batch (wrong keys, shapes or dtypes).
    """
    path = Path(path)
    try:
        with open(path, "rb") as f:
            batch = _CifarUnpickler(f, encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError) as e:
        raise ValueError(f"read_cifar10_batch: {path} is not a CIFAR-10 batch ({e})") from e
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        keys = sorted(batch) if isinstance(batch, dict) else type(batch).__name__
        raise ValueError(f"read_cifar10_batch: {path} should be a dict with keys b'data' and "
                         f"b'labels', got {keys}")
    data, labels = np.asarray(batch[b"data"]), np.asarray(batch[b"labels"], dtype=np.int64)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise ValueError(f"read_cifar10_batch: {path}: b'data' should be (N, 3072) uint8, "
                         f"got {data.shape} {data.dtype}")
    if labels.shape != (len(data),):
        raise ValueError(f"read_cifar10_batch: {path}: b'labels' should have {len(data)} "
                         f"entries, got shape {labels.shape}")
    return data.reshape(-1, 3, 32, 32), labels


def load_cifar10(
    split: str = "train", *, root: str | os.PathLike | None = None, as_float: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """CIFAR-10 colour images from the local python-pickle batches (50,000 / 10,000, 32x32).

    Args:
        split: ``"train"`` (``data_batch_1`` .. ``data_batch_5``, in order) or ``"test"``
            (``test_batch``).
        root: data root; batches are read from ``root/cifar10/cifar-10-batches-py/``.
        as_float: if True (default) images are float32 in ``[0, 1]``, else uint8.

    Returns:
        ``(images, labels)``: images ``(N, 3, 32, 32)``, labels ``(N,)`` int64 in ``0..9``
        (names in :data:`CIFAR10_CLASSES`).

    Raises:
        FileNotFoundError: if a batch is missing; the message gives the download command.
        ValueError: for a bad ``split`` or a malformed batch.
    """
    fn = "load_cifar10"
    split = _split_arg(split, fn)
    root_dir = data_root(root)
    folder = root_dir / REMOTE_DATASETS["cifar10"][0] / "cifar-10-batches-py"
    names = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
    paths = [_require(folder / n, "cifar10", fn, root, root_dir) for n in names]
    parts = [read_cifar10_batch(p) for p in paths]
    images = np.concatenate([p[0] for p in parts])  # (N, 3, 32, 32)
    labels = np.concatenate([p[1] for p in parts])
    if as_float:
        images = images.astype(np.float32) / np.float32(255.0)
    return images, labels
