"""Tests for the data helpers: splits, normalization, augmentation (NumPy and torch) and
reproducible loaders."""

import numpy as np
import pytest
import torch

from d2lcnn.data import (
    ArrayDataset,
    channel_stats,
    make_loader,
    normalize,
    random_crop,
    random_flip,
    random_translate,
    train_val_test_split,
)
from d2lcnn.data import transforms as T


def labelled(n=1000, classes=(0.5, 0.3, 0.2)):
    y = np.repeat(np.arange(len(classes)), [int(n * c) for c in classes])
    x = np.arange(len(y) * 2).reshape(len(y), 2)
    return x, y


def test_split_partitions_and_stratifies():
    x, y = labelled()
    (xtr, ytr), (xva, yva), (xte, yte) = train_val_test_split(x, y, val=0.1, test=0.2)
    assert (len(ytr), len(yva), len(yte)) == (700, 100, 200)
    rows = np.concatenate([xtr[:, 0], xva[:, 0], xte[:, 0]])
    assert sorted(rows.tolist()) == x[:, 0].tolist()  # every sample exactly once
    for part in (ytr, yva, yte):
        np.testing.assert_allclose(np.bincount(part) / len(part), [0.5, 0.3, 0.2])
    np.testing.assert_array_equal(xte[:, 0] // 2, np.flatnonzero(np.isin(x[:, 0], xte[:, 0])))


def test_split_is_deterministic_and_seeded():
    x, y = labelled()
    a = train_val_test_split(x, y, seed=1)
    b = train_val_test_split(x, y, seed=1)
    c = train_val_test_split(x, y, seed=2)
    np.testing.assert_array_equal(a.test[0], b.test[0])
    assert not np.array_equal(a.test[0], c.test[0])


def test_split_unstratified_sizes():
    x, y = labelled(n=100)
    s = train_val_test_split(x, y, val=0.25, test=0.25, stratify=False)
    assert [len(p[1]) for p in s] == [50, 25, 25]


@pytest.mark.parametrize("kwargs, word", [({"val": -0.1}, "val"), ({"test": 1.0}, "test"),
                                          ({"val": 0.5, "test": 0.5}, "val \\+ test")])
def test_split_bad_fractions(kwargs, word):
    x, y = labelled(n=10)
    with pytest.raises(ValueError, match=word):
        train_val_test_split(x, y, **kwargs)


def test_split_length_mismatch():
    with pytest.raises(ValueError, match="y must be"):
        train_val_test_split(np.zeros((5, 2)), np.zeros(4))


def test_channel_stats_and_normalize():
    rng = np.random.default_rng(0)
    x = rng.normal([1.0, -2.0, 5.0], [0.5, 2.0, 3.0], (64, 8, 8, 3)).transpose(0, 3, 1, 2)
    x = x.astype(np.float32)
    mean, std = channel_stats(x)
    np.testing.assert_allclose(mean, x.astype(np.float64).mean(axis=(0, 2, 3)), rtol=1e-12)
    z = normalize(x, mean, std)
    assert z.dtype == np.float32 and z.shape == x.shape
    z64 = z.astype(np.float64)  # not channel_stats again: a wrong std would agree with itself
    np.testing.assert_allclose(z64.mean(axis=(0, 2, 3)), 0, atol=1e-5)
    np.testing.assert_allclose(z64.std(axis=(0, 2, 3)), 1, atol=1e-5)
    np.testing.assert_allclose(normalize(x[0], mean, std), z[0], atol=1e-6)


def test_channel_stats_pool_every_image_and_pixel():
    """Hand-computed: channel 0 holds two constant images, 0 and 2 (each image's own std is
    0; pooled over N*H*W the std is 1), channel 1 a 0/4 checkerboard in both (std 2), so a
    mean of per-image stds (0 for channel 0) or of per-image means gives other numbers."""
    x = np.zeros((2, 2, 2, 2))
    x[1, 0] = 2.0
    x[:, 1] = [[0.0, 4.0], [4.0, 0.0]]
    mean, std = channel_stats(x)
    np.testing.assert_array_equal(mean, [1.0, 2.0])
    np.testing.assert_array_equal(std, [1.0, 2.0])
    rng = np.random.default_rng(1)  # and torch's population std over (N, H, W)
    x = rng.normal([1.0, -2.0, 5.0], [0.5, 2.0, 3.0], (16, 5, 7, 3)).transpose(0, 3, 1, 2)
    x = x * rng.uniform(0.5, 2.0, (16, 1, 1, 1))  # images differ in contrast
    mean, std = channel_stats(x)
    t = torch.from_numpy(x)
    np.testing.assert_allclose(mean, t.mean(dim=(0, 2, 3)).numpy(), rtol=1e-12)
    np.testing.assert_allclose(std, t.std(dim=(0, 2, 3), correction=0).numpy(), rtol=1e-12)


def test_normalize_errors():
    x = np.zeros((2, 3, 4, 4))
    with pytest.raises(ValueError, match=r"\(3,\) for 3 channels"):
        normalize(x, [0, 0], [1, 1])
    with pytest.raises(ValueError, match="std must be > 0"):
        normalize(x, [0, 0, 0], [1, 0, 1])
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        channel_stats(np.zeros((3, 4, 4)))


# ---- augmentation: NumPy and torch implement the same operations ----------------------

def np_ops(x, seed):
    rng = np.random.default_rng(seed)
    return {"crop": lambda a, s, p: random_crop(a, s, padding=p, rng=rng),
            "flip": lambda a: random_flip(a, rng=rng),
            "translate": lambda a, m: random_translate(a, m, rng=rng)}


def torch_ops(x, seed):
    g = torch.Generator().manual_seed(seed)

    def t(f):
        return lambda a, *args, **kw: f(torch.from_numpy(a), *args, generator=g, **kw).numpy()

    return {"crop": lambda a, s, p: t(T.random_crop)(a, s, padding=p),
            "flip": t(T.random_flip),
            "translate": t(T.random_translate)}


BACKENDS = [pytest.param(np_ops, id="numpy"), pytest.param(torch_ops, id="torch")]


def windows(padded, sh, sw):
    """Every (sh, sw) window of one padded (C, H, W) image."""
    _, hp, wp = padded.shape
    return [padded[:, t : t + sh, s : s + sw] for t in range(hp - sh + 1)
            for s in range(wp - sw + 1)]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("size, padding", [(5, 0), ((4, 6), 2), (7, 0), (9, 1)])
def test_crop_is_a_window_of_the_padded_image(backend, size, padding):
    rng = np.random.default_rng(1)
    x = rng.random((40, 2, 7, 7)).astype(np.float32)
    out = backend(x, seed=3)["crop"](x, size, padding)
    sh, sw = (size, size) if isinstance(size, int) else size
    assert out.shape == (40, 2, sh, sw) and out.dtype == x.dtype
    padded = np.pad(x, ((0, 0), (0, 0), (padding,) * 2, (padding,) * 2))
    seen = set()
    for i in range(len(x)):
        hits = [k for k, w in enumerate(windows(padded[i], sh, sw)) if np.array_equal(w, out[i])]
        assert hits, f"sample {i} is not a window of its padded input"
        seen.add(hits[0])
    n_pos = (7 + 2 * padding - sh + 1) * (7 + 2 * padding - sw + 1)
    assert len(seen) > 1 if n_pos > 1 else len(seen) == 1  # offsets vary per sample


@pytest.mark.parametrize("backend", BACKENDS)
def test_single_image_and_reproducible(backend):
    x = np.random.default_rng(0).random((10, 3, 8, 8)).astype(np.float32)
    a = backend(x, seed=7)["translate"](x, 2)
    b = backend(x, seed=7)["translate"](x, 2)
    np.testing.assert_array_equal(a, b)
    assert backend(x, seed=7)["crop"](x[0], 6, 0).shape == (3, 6, 6)


@pytest.mark.parametrize("backend", BACKENDS)
def test_flip(backend):
    x = np.random.default_rng(0).random((200, 1, 3, 4)).astype(np.float32)
    out = backend(x, seed=0)["flip"](x)
    flipped = np.array([np.array_equal(o, i[..., ::-1]) for o, i in zip(out, x, strict=True)])
    same = np.array([np.array_equal(o, i) for o, i in zip(out, x, strict=True)])
    assert np.all(flipped ^ same)
    assert 70 < flipped.sum() < 130  # about half, p = 0.5


@pytest.mark.parametrize("backend", BACKENDS)
def test_translate_moves_content_and_fills_zeros(backend):
    x = np.zeros((300, 1, 9, 9), np.float32)
    x[:, 0, 4, 4] = 1.0  # a single bright pixel in the centre
    out = backend(x, seed=0)["translate"](x, 2)
    assert out.shape == x.shape and np.all(out.sum(axis=(1, 2, 3)) == 1.0)
    pos = np.array([np.argwhere(o[0])[0] for o in out]) - 4  # (dy, dx) per image
    assert pos.min() == -2 and pos.max() == 2
    assert len({tuple(p) for p in pos}) == 25  # every shift in -2..2 x -2..2 occurs


def test_numpy_augment_errors():
    rng = np.random.default_rng(0)
    x = np.zeros((2, 1, 4, 4))
    with pytest.raises(ValueError, match=r"size must be between 1 and the padded size \(6, 6\)"):
        random_crop(x, 7, padding=1, rng=rng)
    with pytest.raises(ValueError, match="padding"):
        random_crop(x, 3, padding=-1, rng=rng)
    with pytest.raises(ValueError, match=r"x must be \(C, H, W\)"):
        random_flip(np.zeros((4, 4)), rng=rng)
    with pytest.raises(ValueError, match="p must be"):
        random_flip(x, p=1.5, rng=rng)
    with pytest.raises(ValueError, match="max_shift"):
        random_translate(x, -1, rng=rng)
    with pytest.raises(TypeError, match="rng must be a np.random.Generator"):
        random_flip(x, rng=0)


def test_torch_augment_errors_and_device(device):
    x = torch.zeros(2, 1, 4, 4, device=device)
    with pytest.raises(ValueError, match="size"):
        T.random_crop(x, 5)
    with pytest.raises(TypeError, match="generator"):
        T.random_flip(x, generator=0)
    g = torch.Generator().manual_seed(0)
    assert T.random_translate(x, 1, generator=g).device == x.device
    assert T.random_flip(x, generator=g).device == x.device


# ---- loaders ---------------------------------------------------------------------------

def test_array_dataset():
    x = np.arange(24, dtype=np.float32).reshape(6, 1, 2, 2)
    y = np.arange(6)
    ds = ArrayDataset(x, y, transform=lambda t: t * 2)
    assert len(ds) == 6
    xi, yi = ds[3]
    assert torch.equal(xi, torch.from_numpy(x[3]) * 2) and int(yi) == 3
    with pytest.raises(ValueError, match="same length, got 6 and 5"):
        ArrayDataset(x, y[:5])


def epoch_orders(loader, epochs=2):
    return [torch.cat([yb for _, yb in loader]).tolist() for _ in range(epochs)]


def test_loader_shuffles_reproducibly():
    x = np.zeros((50, 1, 2, 2), np.float32)
    y = np.arange(50)
    torch.manual_seed(123)  # the global generator must not matter
    a = epoch_orders(make_loader(x, y, batch_size=8, shuffle=True, seed=4))
    torch.manual_seed(999)
    b = epoch_orders(make_loader(x, y, batch_size=8, shuffle=True, seed=4))
    assert a == b and a[0] != a[1]  # same per seed, new order each epoch
    assert sorted(a[0]) == list(range(50))
    c = epoch_orders(make_loader(x, y, batch_size=8, shuffle=True, seed=5))
    assert c != a
    assert epoch_orders(make_loader(x, y, batch_size=8, shuffle=False), 1) == [list(range(50))]


def test_loader_batches_and_transform():
    x = np.ones((10, 1, 4, 4), np.float32)
    loader = make_loader(x, np.zeros(10, np.int64), batch_size=4, shuffle=False,
                         transform=lambda t: T.random_crop(t, 2))
    shapes = [tuple(xb.shape) for xb, _ in loader]
    assert shapes == [(4, 1, 2, 2), (4, 1, 2, 2), (2, 1, 2, 2)]


@pytest.mark.parametrize("kwargs, word", [({"batch_size": 0}, "batch_size"),
                                          ({"batch_size": 2, "num_workers": -1}, "num_workers")])
def test_loader_bad_arguments(kwargs, word):
    with pytest.raises(ValueError, match=word):
        make_loader(np.zeros((2, 1)), np.zeros(2), shuffle=False, **kwargs)
