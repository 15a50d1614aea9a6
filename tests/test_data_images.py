"""Tests for d2lcnn.data.images: bundled, offline sample photographs."""

import socket

import numpy as np
import pytest

from d2lcnn.data import SAMPLE_IMAGES, sample_image, sample_image_path


def test_every_name_is_bundled_with_skimage():
    for name in SAMPLE_IMAGES:
        assert sample_image_path(name).is_file(), name


@pytest.mark.parametrize("name", SAMPLE_IMAGES)
def test_gray_and_rgb_shapes_and_range(name):
    g = sample_image(name)
    c = sample_image(name, gray=False)
    assert g.ndim == 2 and g.dtype == np.float32
    assert c.shape == (*g.shape, 3) and c.dtype == np.float32
    for img in (g, c):
        assert 0.0 <= img.min() < img.max() <= 1.0
        assert img.flags["C_CONTIGUOUS"]


def test_camera_matches_skimage_loader():
    import skimage.data

    expected = skimage.data.camera().astype(np.float64) / 255.0
    np.testing.assert_allclose(sample_image("camera", dtype=np.float64), expected, atol=1e-12)


def test_rgb_photo_is_really_colour_and_gray_repeats_channels():
    c = sample_image("astronaut", gray=False)
    assert not np.allclose(c[..., 0], c[..., 1])
    cam = sample_image("camera", gray=False)
    assert np.array_equal(cam[..., 0], cam[..., 2])


@pytest.mark.parametrize("size, shape", [(64, (64, 64)), ((48, 80), (48, 80))])
def test_resize(size, shape):
    g = sample_image("chelsea", size=size)
    c = sample_image("chelsea", gray=False, size=size)
    assert g.shape == shape and c.shape == (*shape, 3)
    assert 0.0 <= g.min() and g.max() <= 1.0
    # Anti-aliased downsampling keeps the mean brightness.
    assert abs(g.mean() - sample_image("chelsea").mean()) < 0.01


def test_dtype_float64():
    assert sample_image("coins", dtype=np.float64).dtype == np.float64


def test_unknown_name_lists_valid_names():
    with pytest.raises(ValueError, match="camera") as info:
        sample_image("lena")
    assert "'lena'" in str(info.value)
    for name in SAMPLE_IMAGES:
        assert name in str(info.value)


@pytest.mark.parametrize("size", [0, -3, (32,), (32, 0), 2.5, (True, 4)])
def test_bad_size(size):
    with pytest.raises(ValueError, match="size"):
        sample_image("camera", size=size)


def test_bad_dtype():
    with pytest.raises(ValueError, match="dtype"):
        sample_image("camera", dtype=np.uint8)


def test_loads_with_network_disabled(monkeypatch):
    # Any attempt to open a socket fails, so a download would raise.
    def no_network(*args, **kwargs):
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket, "socket", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    for name in SAMPLE_IMAGES:
        assert sample_image(name, size=16).shape == (16, 16)
