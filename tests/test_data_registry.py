"""Tests for d2lcnn.data.registry.load_dataset: the offline digit sets end to end, the
downloaded benchmarks through tiny files written here in their real formats, and errors."""

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest

from d2lcnn.data import (
    CIFAR10_CLASSES,
    DATASETS,
    FASHION_MNIST_CLASSES,
    LoadedDataset,
    load_dataset,
    load_digits,
)

PER_CLASS = 10  # samples per class in the tiny generated files


def write_idx_set(folder: Path, prefix: str, per_class: int, seed: int) -> None:
    """IDX images (N, 28, 28) and labels (N,), uint8, gzip-compressed, each class equally."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(10, dtype=np.uint8), per_class)
    images = rng.integers(0, 256, (len(labels), 28, 28), dtype=np.uint8)
    folder.mkdir(parents=True, exist_ok=True)
    for kind, arr in (("images-idx3", images), ("labels-idx1", labels)):
        header = bytes([0, 0, 0x08, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
        with gzip.open(folder / f"{prefix}-{kind}-ubyte.gz", "wb") as f:
            f.write(header + arr.tobytes())


def write_cifar_batch(path: Path, per_class: int, seed: int) -> None:
    """A CIFAR-10 python batch: pickled dict with b'data' (N, 3072) uint8 and b'labels'."""
    rng = np.random.default_rng(seed)
    labels = [int(c) for c in np.repeat(np.arange(10), per_class)]
    data = rng.integers(0, 256, (len(labels), 3072), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps({b"data": data, b"labels": labels}, protocol=2))


@pytest.fixture
def idx_root(tmp_path):
    for name in ("mnist", "fashion_mnist"):
        write_idx_set(tmp_path / name, "train", PER_CLASS, seed=1)
        write_idx_set(tmp_path / name, "t10k", 2, seed=2)
    return tmp_path


@pytest.fixture
def cifar_root(tmp_path):
    folder = tmp_path / "cifar10" / "cifar-10-batches-py"
    for i in range(1, 6):
        write_cifar_batch(folder / f"data_batch_{i}", 2, seed=i)  # 5 x 20 = 100 train
    write_cifar_batch(folder / "test_batch", 3, seed=9)
    return tmp_path


def check_consistent(d: LoadedDataset) -> None:
    """Shapes, dtypes, ranges and metadata agree with each other."""
    assert d.num_classes == len(d.class_names) == 10
    for x, y in ((d.x_train, d.y_train), (d.x_val, d.y_val), (d.x_test, d.y_test)):
        assert x.dtype == np.float32 and y.dtype == np.int64
        assert x.shape == (len(y), *d.input_shape)
        assert 0.0 <= x.min() and x.max() <= 1.0
        assert set(np.unique(y)) <= set(range(d.num_classes))


def test_names():
    assert DATASETS == ("digits", "translated_digits", "mnist", "fashion_mnist", "cifar10")


@pytest.mark.parametrize("size", [None, 8, 32])
def test_digits_stratified_split(size):
    d = load_dataset("digits", size=size)
    side = 8 if size is None else size
    check_consistent(d)
    assert d.input_shape == (1, side, side)
    assert d.class_names == tuple("0123456789")
    n = len(d.y_train) + len(d.y_val) + len(d.y_test)
    assert n == 1797
    assert abs(len(d.y_test) - 0.2 * n) <= 10 and abs(len(d.y_val) - 0.1 * n) <= 10
    # Stratified: every class in every part, in (nearly) the proportions of the whole.
    for y in (d.y_train, d.y_val, d.y_test):
        counts = np.bincount(y, minlength=10)
        assert (counts > 0).all()
        assert np.abs(counts / len(y) - 0.1).max() < 0.02


def test_digits_parts_are_disjoint_and_deterministic():
    a, b = load_dataset("digits"), load_dataset("digits")
    np.testing.assert_array_equal(a.x_test, b.x_test)
    np.testing.assert_array_equal(a.y_train, b.y_train)
    c = load_dataset("digits", seed=1)
    assert not np.array_equal(a.y_test, c.y_test)
    # The three parts together are the whole set, each image exactly once.
    rows = np.concatenate([a.x_train, a.x_val, a.x_test]).reshape(1797, -1)
    whole = load_digits()[0].reshape(1797, -1)

    def as_sorted_rows(m):
        return np.sort(np.ascontiguousarray(m).view(f"V{m.shape[1] * m.itemsize}").ravel())

    np.testing.assert_array_equal(as_sorted_rows(rows), as_sorted_rows(whole))


def test_digits_custom_split():
    d = load_dataset("digits", split=(0.25, 0.25))
    n = 1797
    assert abs(len(d.y_val) - n / 4) <= 10 and abs(len(d.y_test) - n / 4) <= 10


def test_translated_digits_end_to_end():
    d = load_dataset("translated_digits", split=(0.1, 0.2))
    check_consistent(d)
    assert d.input_shape == (1, 28, 28)
    assert (len(d.y_train), len(d.y_val), len(d.y_test)) == (7000, 1000, 2000)
    np.testing.assert_array_equal(d.y_test, load_dataset("translated_digits").y_test)
    big = load_dataset("translated_digits", size=32, split=(0.0, 0.5))
    assert big.input_shape == (1, 32, 32) and len(big.y_val) == 0
    assert (len(big.y_train), len(big.y_test)) == (5000, 5000)


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_idx_sets_keep_official_test_and_carve_val(idx_root, name):
    d = load_dataset(name, root=idx_root, split=(0.2, 0.5))  # test fraction unused here
    check_consistent(d)
    assert d.input_shape == (1, 28, 28)
    assert len(d.y_test) == 20  # the official t10k files
    assert len(d.y_val) == 20 and len(d.y_train) == 80  # 20% of each class of the 100
    np.testing.assert_array_equal(np.bincount(d.y_val), [2] * 10)
    names = FASHION_MNIST_CLASSES if name == "fashion_mnist" else tuple("0123456789")
    assert d.class_names == names


def test_mnist_padded_to_32(idx_root):
    d28 = load_dataset("mnist", root=idx_root)
    d32 = load_dataset("mnist", root=idx_root, size=32)
    assert d32.input_shape == (1, 32, 32)
    np.testing.assert_array_equal(d32.x_test[:, :, 2:30, 2:30], d28.x_test)
    assert d32.x_test[:, :, :2].max() == 0 and d32.x_test[:, :, 30:].max() == 0
    with pytest.raises(ValueError, match="size"):
        load_dataset("mnist", root=idx_root, size=16)


def test_cifar10(cifar_root):
    d = load_dataset("cifar10", root=cifar_root)
    check_consistent(d)
    assert d.input_shape == (3, 32, 32)
    assert d.class_names == CIFAR10_CLASSES
    assert (len(d.y_train), len(d.y_val), len(d.y_test)) == (90, 10, 30)


def test_unknown_name_lists_datasets():
    with pytest.raises(ValueError) as err:
        load_dataset("imagenet")
    for name in DATASETS:
        assert name in str(err.value)


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist", "cifar10"])
def test_missing_files_name_the_download_command(tmp_path, name):
    with pytest.raises(FileNotFoundError, match=f"download {name}"):
        load_dataset(name, root=tmp_path)


@pytest.mark.parametrize("split", [(0.5, 0.5), (-0.1, 0.2), (0.1,), "0.1", (True, 0.2)])
def test_bad_split(split):
    with pytest.raises(ValueError, match="split"):
        load_dataset("digits", split=split)


@pytest.mark.parametrize("size", [4, 2.5, "32"])
def test_bad_size(size):
    with pytest.raises(ValueError, match="size"):
        load_dataset("digits", size=size)


def test_translated_digits_too_small_canvas():
    with pytest.raises(ValueError, match="size"):
        load_dataset("translated_digits", size=16)
