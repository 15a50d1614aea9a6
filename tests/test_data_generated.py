"""Tests for d2lcnn.data.digits and d2lcnn.data.synthetic: embedded and generated data."""

import socket

import numpy as np
import pytest

from d2lcnn.data import (
    SEGMENTATION_CLASSES,
    load_digits,
    synthetic_segmentation,
    translated_digits,
)


@pytest.fixture(scope="module")
def digits8():
    return load_digits()


def test_digits_are_the_real_sklearn_set(digits8):
    from sklearn.datasets import load_digits as sk_load_digits

    x, y = digits8
    assert x.shape == (1797, 1, 8, 8) and x.dtype == np.float32
    assert y.shape == (1797,) and y.dtype == np.int64
    assert set(np.unique(y)) == set(range(10))
    sk = sk_load_digits()
    np.testing.assert_array_equal(x[:, 0] * 16, sk.images)  # 16 gray levels, exact
    np.testing.assert_array_equal(y, sk.target)


@pytest.mark.parametrize("size", [16, 28, 32])
def test_digits_upsampled(digits8, size):
    x, y = load_digits(size=size)
    assert x.shape == (1797, 1, size, size) and x.dtype == np.float32
    assert 0.0 <= x.min() and x.max() <= 1.0
    np.testing.assert_array_equal(y, digits8[1])
    # Upsampling keeps the picture: the brightness of each image, and shrinking back gives
    # an image strongly correlated with the 8x8 original.
    from skimage.transform import resize

    np.testing.assert_allclose(x.mean(axis=(1, 2, 3)), digits8[0].mean(axis=(1, 2, 3)),
                               atol=0.02)
    back = resize(x[:50, 0].astype(np.float64), (50, 8, 8), order=1, anti_aliasing=True)
    assert np.corrcoef(back.ravel(), digits8[0][:50].ravel())[0, 1] > 0.95


def test_digits_as_uint8(digits8):
    x, _ = load_digits(as_float=False)
    assert x.dtype == np.uint8 and x.max() == 255
    np.testing.assert_array_equal(x, np.round(digits8[0] * 255).astype(np.uint8))


def test_digits_load_with_network_disabled(monkeypatch):
    def no_network(*args, **kwargs):
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket, "socket", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    assert load_digits(size=16)[0].shape == (1797, 1, 16, 16)


@pytest.mark.parametrize("size", [7, 0, 8.0, True, "8"])
def test_digits_bad_size(size):
    with pytest.raises(ValueError, match="size"):
        load_digits(size=size)


def test_translated_digits_shape_range_and_determinism():
    x, y = translated_digits(300, size=32, seed=3)
    assert x.shape == (300, 1, 32, 32) and x.dtype == np.float32
    assert y.shape == (300,) and y.dtype == np.int64
    assert 0.0 <= x.min() and x.max() <= 1.0
    x2, y2 = translated_digits(300, size=32, seed=3)
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(y, y2)
    x3, _ = translated_digits(300, size=32, seed=4)
    assert not np.array_equal(x, x3)


def test_translated_digits_really_move_and_scale():
    x, _ = translated_digits(500, size=28, digit_size=(10, 20), seed=0)
    ink = x[:, 0] > 0.05
    rows, cols = ink.any(axis=2), ink.any(axis=1)  # (n, 28) rows/cols with ink
    top = rows.argmax(axis=1)
    left = cols.argmax(axis=1)
    height = 28 - rows[:, ::-1].argmax(axis=1) - top
    assert top.min() <= 1 and top.max() >= 14  # positions spread over the canvas
    assert left.min() <= 1 and left.max() >= 14
    assert height.max() - height.min() >= 6  # and sizes vary
    assert height.max() <= 20


def test_translated_digits_from_a_source_subset(digits8):
    x8, y8 = digits8
    keep = y8 < 2
    x, y = translated_digits(100, source=(x8[keep], y8[keep]), seed=1)
    assert set(np.unique(y)) <= {0, 1}


@pytest.mark.parametrize(
    "kwargs, word",
    [({"n": 0}, "n"), ({"size": 0}, "size"), ({"digit_size": (5, 40)}, "digit_size"),
     ({"digit_size": (9, 8)}, "digit_size"), ({"digit_size": 12}, "digit_size"),
     ({"source": (np.zeros((3, 8, 8)), np.zeros(3))}, "source")],
)
def test_translated_digits_bad_arguments(kwargs, word):
    with pytest.raises(ValueError, match=word):
        translated_digits(**{"n": 10, **kwargs})


def test_segmentation_shapes_classes_and_determinism():
    x, m = synthetic_segmentation(40, size=48, seed=5)
    assert x.shape == (40, 1, 48, 48) and x.dtype == np.float32
    assert m.shape == (40, 48, 48) and m.dtype == np.int64
    assert 0.0 <= x.min() and x.max() <= 1.0
    assert set(np.unique(m)) == set(range(len(SEGMENTATION_CLASSES)))
    assert all((m[i] > 0).any() for i in range(40)), "every image has a visible shape"
    x2, m2 = synthetic_segmentation(40, size=48, seed=5)
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(m, m2)


def test_segmentation_masks_match_the_pictures():
    # A shape's brightness differs from the background's by >= 0.25 before the textures
    # (which average out over a region): with one shape per image, the means separate.
    x, m = synthetic_segmentation(30, size=64, seed=0, max_shapes=1, noise=0.0)
    for img, mask in zip(x[:, 0], m, strict=True):
        bg = img[mask == 0]
        for k in np.unique(mask[mask > 0]):
            region = img[mask == k]
            if region.size > 30:
                assert abs(region.mean() - bg.mean()) > 0.15


def test_segmentation_shape_geometry():
    # A rectangle's mask fills its bounding box; a disk fills about pi/4 of it.
    _, m = synthetic_segmentation(200, size=64, seed=2, max_shapes=1)
    fills = {1: [], 2: [], 3: []}
    for mask in m:
        k = mask.max()
        ys, xs = np.nonzero(mask == k)
        cut = ys.min() == 0 or xs.min() == 0 or ys.max() == 63 or xs.max() == 63
        if not cut:
            box = (np.ptp(ys) + 1) * (np.ptp(xs) + 1)
            fills[int(k)].append(len(ys) / box)
    assert min(fills[2]) == 1.0
    assert 0.7 < np.mean(fills[1]) < 0.85
    assert 0.3 < np.mean(fills[3]) < 0.7  # a triangle fills half its box or so


@pytest.mark.parametrize(
    "kwargs, word",
    [({"n": 0}, "n"), ({"size": 4}, "size"), ({"max_shapes": 0}, "max_shapes"),
     ({"noise": -1.0}, "noise")],
)
def test_segmentation_bad_arguments(kwargs, word):
    with pytest.raises(ValueError, match=word):
        synthetic_segmentation(**{"n": 2, **kwargs})
