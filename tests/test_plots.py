"""Headless tests for d2lcnn.plots."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from d2lcnn.plots import show_images  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_grid_titles_labels_and_data():
    rng = np.random.default_rng(0)
    imgs = [rng.random((5, 7)) for _ in range(5)]
    fig = show_images(imgs, [f"map {i}" for i in range(5)], ncols=3, suptitle="maps")
    axes = fig.get_axes()
    assert len(axes) == 5  # the sixth grid cell is removed
    assert [ax.get_title() for ax in axes] == [f"map {i}" for i in range(5)]
    assert all(ax.get_xlabel() == "column" and ax.get_ylabel() == "row" for ax in axes)
    for ax, im in zip(axes, imgs, strict=True):
        np.testing.assert_array_equal(ax.get_images()[0].get_array(), im)
    assert fig._suptitle.get_text() == "maps"


def test_stack_of_feature_maps_and_torch_tensor():
    stack = torch.arange(3 * 4 * 4, dtype=torch.float32, requires_grad=True).reshape(3, 4, 4)
    fig = show_images(stack, vmin=0, vmax=47)
    axes = fig.get_axes()
    assert len(axes) == 3
    np.testing.assert_array_equal(axes[2].get_images()[0].get_array(), stack[2].detach().numpy())
    assert axes[0].get_images()[0].get_clim() == (0, 47)


def test_single_rgb_image():
    rgb = np.zeros((4, 6, 3))
    rgb[..., 0] = 1.0
    fig = show_images(rgb, ["red"], xlabel=None, ylabel=None)
    (ax,) = fig.get_axes()
    assert ax.get_title() == "red" and ax.get_xlabel() == ""
    assert ax.get_images()[0].get_array().shape == (4, 6, 3)


def test_annotate_writes_every_value():
    m = np.array([[1, 2], [0, -1]])
    fig = show_images([m, m / 3], annotate=True)
    ax_int, ax_float = fig.get_axes()
    assert sorted(t.get_text() for t in ax_int.texts) == ["-1", "0", "1", "2"]
    assert sorted(t.get_text() for t in ax_float.texts) == ["-0.333", "0", "0.333", "0.667"]


def test_colorbar_adds_axes():
    fig = show_images([np.eye(3), np.eye(3)], colorbar=True)
    assert len(fig.get_axes()) == 4


@pytest.mark.parametrize(
    "images, titles, match",
    [
        ([], None, "at least one"),
        ([np.zeros((2, 2, 2))], None, "images\\[0\\]"),
        ([np.zeros((2, 2))], ["a", "b"], "titles"),
    ],
)
def test_errors(images, titles, match):
    with pytest.raises(ValueError, match=match):
        show_images(images, titles)
