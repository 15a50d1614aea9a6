"""Tests for d2lcnn.data.benchmarks: IDX and CIFAR-10 readers, on tiny files written here in
the real formats, plus the real MNIST test files of the developers' shared folder if present."""

import gzip
import os
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest

from d2lcnn.data import (
    load_cifar10,
    load_fashion_mnist,
    load_mnist,
    read_cifar10_batch,
    read_idx,
)

# ../shared/data beside the repository: developers' machines only, never a fresh clone.
SHARED_DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


def write_idx(path: Path, array: np.ndarray, *, compress: bool = True) -> Path:
    """Write ``array`` (uint8) in IDX format: 0, 0, type 0x08, ndim, sizes, data."""
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    raw = header + array.astype(np.uint8).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    (gzip.open if compress else open)(path, "wb").write(raw)
    return path


def make_idx_set(folder: Path, prefix: str, n: int, seed: int):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, n, dtype=np.uint8)
    write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", images)
    write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", labels)
    return images, labels


def write_cifar_batch(path: Path, n: int, seed: int):
    """A batch as the real files store it: a protocol-2 pickle with byte-string keys."""
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
    labels = [int(v) for v in rng.integers(0, 10, n)]
    batch = {b"batch_label": b"testing batch", b"labels": labels, b"data": data,
             b"filenames": [b"x.png"] * n}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(batch, protocol=2))
    return data, np.array(labels)


def test_read_idx_roundtrip_gz_and_raw(tmp_path):
    a = np.arange(2 * 3 * 5, dtype=np.uint8).reshape(2, 3, 5)
    np.testing.assert_array_equal(read_idx(write_idx(tmp_path / "a.gz", a)), a)
    np.testing.assert_array_equal(read_idx(write_idx(tmp_path / "a", a, compress=False)), a)


def test_read_idx_big_endian_int32(tmp_path):
    values = np.array([1, -2, 70000], dtype=">i4")
    raw = bytes([0, 0, 0x0C, 1]) + struct.pack(">I", 3) + values.tobytes()
    (tmp_path / "v").write_bytes(raw)
    out = read_idx(tmp_path / "v")
    assert out.dtype == np.int32 and out.tolist() == [1, -2, 70000]


def test_read_idx_bad_magic(tmp_path):
    (tmp_path / "bad").write_bytes(b"\x1f\x8b\x08\x03" + bytes(12))
    with pytest.raises(ValueError, match="magic number 0x1f8b0803"):
        read_idx(tmp_path / "bad")


def test_read_idx_truncated(tmp_path):
    path = write_idx(tmp_path / "t.gz", np.zeros((4, 28, 28), np.uint8))
    raw = gzip.open(path).read()
    gzip.open(path, "wb").write(raw[:-10])
    with pytest.raises(ValueError, match=r"3126 bytes of data.*\(4, 28, 28\).*3136 bytes"):
        read_idx(path)


def test_read_idx_not_gzip(tmp_path):
    (tmp_path / "x.gz").write_bytes(b"plain text")
    with pytest.raises(ValueError, match="not a valid gzip"):
        read_idx(tmp_path / "x.gz")


@pytest.mark.parametrize("loader, folder", [(load_mnist, "mnist"),
                                            (load_fashion_mnist, "fashion_mnist")])
def test_idx_loaders(tmp_path, loader, folder):
    train = make_idx_set(tmp_path / folder, "train", 12, seed=0)
    test = make_idx_set(tmp_path / folder, "t10k", 5, seed=1)
    for split, (images, labels) in (("train", train), ("test", test)):
        x, y = loader(split, root=tmp_path)
        assert x.shape == (len(labels), 1, 28, 28) and x.dtype == np.float32
        assert y.dtype == np.int64
        np.testing.assert_array_equal(y, labels)
        np.testing.assert_allclose(x[:, 0] * 255, images, atol=1e-4)
        x8, _ = loader(split, root=tmp_path, as_float=False)
        np.testing.assert_array_equal(x8[:, 0], images)


def test_root_from_environment_variable(tmp_path, monkeypatch):
    make_idx_set(tmp_path / "mnist", "t10k", 3, seed=2)
    monkeypatch.setenv("D2LCNN_DATA", str(tmp_path))
    assert load_mnist("test")[0].shape == (3, 1, 28, 28)


def test_missing_file_says_where_and_how_to_download(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        load_mnist("train", root=tmp_path)
    msg = str(info.value)
    assert str(tmp_path / "mnist" / "train-images-idx3-ubyte.gz") in msg
    assert f"python -m d2lcnn.data download mnist --root {tmp_path}" in msg
    with pytest.raises(FileNotFoundError, match="download cifar10"):
        load_cifar10("test", root=tmp_path)


def test_mismatched_counts(tmp_path):
    folder = tmp_path / "mnist"
    write_idx(folder / "t10k-images-idx3-ubyte.gz", np.zeros((4, 28, 28), np.uint8))
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", np.zeros(3, np.uint8))
    with pytest.raises(ValueError, match=r"\(4,\) uint8 labels, got \(3,\)"):
        load_mnist("test", root=tmp_path)


def test_images_file_with_wrong_rank(tmp_path):
    folder = tmp_path / "mnist"
    write_idx(folder / "t10k-images-idx3-ubyte.gz", np.zeros(4, np.uint8))
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", np.zeros(4, np.uint8))
    with pytest.raises(ValueError, match=r"\(N, H, W\) uint8 images"):
        load_mnist("test", root=tmp_path)


@pytest.mark.parametrize("loader", [load_mnist, load_fashion_mnist, load_cifar10])
def test_bad_split(tmp_path, loader):
    with pytest.raises(ValueError, match="split must be 'train' or 'test', got 'val'"):
        loader("val", root=tmp_path)


def test_cifar10_batches(tmp_path):
    folder = tmp_path / "cifar10" / "cifar-10-batches-py"
    train = [write_cifar_batch(folder / f"data_batch_{i}", 4, seed=i) for i in range(1, 6)]
    test = write_cifar_batch(folder / "test_batch", 3, seed=9)
    x, y = load_cifar10("train", root=tmp_path)
    assert x.shape == (20, 3, 32, 32) and x.dtype == np.float32 and y.dtype == np.int64
    np.testing.assert_array_equal(y, np.concatenate([t[1] for t in train]))
    # Row layout: 1024 red values, then green, then blue; each plane row-major.
    first = train[0][0][0]
    np.testing.assert_allclose(x[0, 1, 0, :] * 255, first[1024:1056], atol=1e-4)
    x8, y8 = load_cifar10("test", root=tmp_path, as_float=False)
    np.testing.assert_array_equal(x8.reshape(3, -1), test[0])
    np.testing.assert_array_equal(y8, test[1])


def test_cifar_reader_refuses_code_in_a_pickle(tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo should-not-run",))

    (tmp_path / "evil").write_bytes(pickle.dumps(Evil(), protocol=2))
    with pytest.raises(ValueError, match="refusing to unpickle"):
        read_cifar10_batch(tmp_path / "evil")


def test_cifar_reader_wrong_content(tmp_path):
    (tmp_path / "b").write_bytes(pickle.dumps({b"data": np.zeros((2, 10), np.uint8),
                                               b"labels": [0, 1]}, protocol=2))
    with pytest.raises(ValueError, match=r"\(N, 3072\) uint8"):
        read_cifar10_batch(tmp_path / "b")
    (tmp_path / "c").write_bytes(pickle.dumps({"x": 1}, protocol=2))
    with pytest.raises(ValueError, match="b'data' and b'labels'"):
        read_cifar10_batch(tmp_path / "c")


@pytest.mark.skipif(
    not (SHARED_DATA / "mnist" / "t10k-images-idx3-ubyte.gz").is_file(),
    reason="the real MNIST test files are only in the developers' ../shared/data folder",
)
def test_real_mnist_test_set():
    x, y = load_mnist("test", root=SHARED_DATA.resolve())
    assert x.shape == (10000, 1, 28, 28) and y.shape == (10000,)
    assert np.bincount(y).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert x.min() == 0.0 and x.max() == 1.0
    assert 0.12 < x.mean() < 0.14  # MNIST's well-known mean pixel, 0.1325
    assert y[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
