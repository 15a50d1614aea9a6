"""d2lcnn.viz: filter grids (shapes, [0, 1] per filter or globally, grey/RGB/reduced
channels), feature maps (forward order, values, hooks removed also after an error),
occlusion against a brute-force loop, saliency against torch.autograd.grad and a finite
difference, activation maximisation against a random input, and the argument checks."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from d2lcnn.torch.models import LeNet5  # noqa: E402
from d2lcnn.viz import (  # noqa: E402
    feature_maps,
    filter_grid,
    maximize_activation,
    occlusion,
    saliency,
    show_feature_maps,
    show_filters,
)

pytestmark = pytest.mark.usefixtures("one_thread_and_closed_figures")


def small_net(seed=0, in_channels=3, dtype=torch.float32):
    """conv 3x3 (5) -> ReLU -> 2x2 max-pool -> conv 3x3 (6) -> ReLU -> mean -> linear (4)."""
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(in_channels, 5, 3, padding=1),  # (N, 5, 8, 8)
        nn.ReLU(),
        nn.MaxPool2d(2),  # (N, 5, 4, 4)
        nn.Conv2d(5, 6, 3, padding=1),  # (N, 6, 4, 4)
        nn.Tanh(),
        nn.AdaptiveAvgPool2d(1),  # (N, 6, 1, 1)
        nn.Flatten(),
        nn.Linear(6, 4),
    ).to(dtype)


def _hooks(model):
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


# ----------------------------------------------------------------------------- filters


def test_filter_grid_tiles_grey_filters_each_rescaled_to_0_1():
    w = torch.randn(5, 1, 3, 2)
    img = filter_grid(w, ncols=3, pad=1)
    assert img.shape == (2 * (3 + 1) + 1, 3 * (2 + 1) + 1)  # rows * (kH + pad) + pad
    assert img.min() >= 0 and img.max() <= 1
    for i in range(5):
        r, c = divmod(i, 3)
        tile = img[1 + 4 * r : 4 + 4 * r, 1 + 3 * c : 3 + 3 * c]
        f = w[i, 0].numpy()
        np.testing.assert_allclose(tile, (f - f.min()) / (f.max() - f.min()), rtol=1e-6)
        assert tile.min() == 0 and tile.max() == 1
    assert np.all(img[0] == 1.0) and np.all(img[:, 0] == 1.0)  # the padding is pad_value
    assert np.all(img[5:8, 7:9] == 1.0)  # the unused sixth cell too
    assert filter_grid(w).shape == (2 * 4 + 1, 3 * 3 + 1)  # ncols = ceil(sqrt(5)) = 3


def test_filter_grid_global_rgb_reduced_and_constant_filters():
    w = torch.randn(4, 3, 5, 5, dtype=torch.float64)
    rgb = filter_grid(w, normalize="global", pad=0)
    assert rgb.shape == (10, 10, 3)
    tiles = w.permute(0, 2, 3, 1).numpy()
    expected = (tiles - tiles.min()) / (tiles.max() - tiles.min())
    np.testing.assert_allclose(rgb[:5, :5], expected[0])
    np.testing.assert_allclose(rgb[5:, 5:], expected[3])
    per = filter_grid(w, pad=0)  # per filter: the three channels of a filter together
    t0 = tiles[0]
    np.testing.assert_allclose(per[:5, :5], (t0 - t0.min()) / (t0.max() - t0.min()))
    many = torch.randn(2, 7, 3, 3)
    mean = filter_grid(many, pad=0, ncols=2)
    first = filter_grid(many, pad=0, ncols=2, channel=4)
    assert mean.shape == first.shape == (3, 6)
    m = many.mean(1)[1].numpy()
    np.testing.assert_allclose(mean[:, 3:], (m - m.min()) / (m.max() - m.min()), rtol=1e-5)
    c = many[0, 4].numpy()
    np.testing.assert_allclose(first[:, :3], (c - c.min()) / (c.max() - c.min()), rtol=1e-5)
    assert np.all(filter_grid(torch.ones(1, 1, 3, 3), pad=0) == 0.5)


def test_filter_grid_and_show_filters_refuse_bad_arguments_and_plot():
    with pytest.raises(ValueError, match=r"weight must be conv weights .* got shape \(3, 3\)"):
        filter_grid(torch.randn(3, 3))
    with pytest.raises(ValueError, match="normalize must be 'per_filter' or 'global'"):
        filter_grid(torch.randn(2, 1, 3, 3), normalize="none")
    with pytest.raises(ValueError, match=r"channel must be 'mean' or an int in \[0, 4\)"):
        filter_grid(torch.randn(2, 4, 3, 3), channel=4)
    with pytest.raises(ValueError, match="pad must be an int >= 0"):
        filter_grid(torch.randn(2, 1, 3, 3), pad=-1)
    model = LeNet5()
    fig = show_filters(model.features[0].weight)
    (ax,) = fig.axes
    assert ax.get_title() == "6 filters, 5x5x1" and ax.images[0].get_array().shape == (13, 19)
    _, ax = plt.subplots()
    assert show_filters(torch.randn(8, 3, 3, 3), ax=ax, title="mine") is ax.figure
    assert ax.get_title() == "mine" and ax.images[0].get_array().shape == (13, 13, 3)


# ----------------------------------------------------------------------------- feature maps


def test_feature_maps_are_the_conv_and_pool_outputs_in_forward_order():
    model = LeNet5().train()
    x = torch.randn(2, 1, 32, 32)
    maps = feature_maps(model, x)
    assert list(maps) == ["features.0", "features.2", "features.3", "features.5", "features.6"]
    assert [tuple(m.shape) for m in maps.values()] == [
        (2, 6, 28, 28), (2, 6, 14, 14), (2, 16, 10, 10), (2, 16, 5, 5), (2, 120, 1, 1)]
    with torch.no_grad():
        torch.testing.assert_close(maps["features.3"], model.features[:4](x))
    assert model.training and _hooks(model) == 0 and not maps["features.0"].requires_grad
    one = feature_maps(model, x[0], layers=["classifier.2", "features.1"])
    assert list(one) == ["features.1", "classifier.2"]  # the order they ran in
    assert one["classifier.2"].shape == (1, 84)
    fig = show_feature_maps(maps, max_channels=4)
    assert len(fig.axes) == 5 * 4 and "features.3" in fig.axes[8].get_ylabel()


def test_feature_maps_remove_their_hooks_even_when_the_forward_pass_fails():
    model = LeNet5()
    with pytest.raises(RuntimeError):
        feature_maps(model, torch.randn(1, 3, 32, 32))  # LeNet5 wants one channel
    assert _hooks(model) == 0
    with pytest.raises(ValueError, match=r"no layer 'conv1'; available: \['features', "):
        feature_maps(model, torch.randn(1, 1, 32, 32), layers=["conv1"])
    with pytest.raises(ValueError, match=r"x must be a batch \(N, C, H, W\) or an image"):
        feature_maps(model, torch.randn(32, 32))
    with pytest.raises(TypeError, match="model must be a torch.nn.Module"):
        feature_maps("lenet", torch.randn(1, 1, 32, 32))
    assert _hooks(model) == 0


# ----------------------------------------------------------------------------- occlusion


def _occlusion_loop(model, x, target, patch, stride, fill):
    """The definition, one position at a time."""
    c, h, w = x.shape
    with torch.no_grad():
        p = model(x[None]).softmax(1)[0, target]
        out = np.zeros(((h - patch) // stride + 1, (w - patch) // stride + 1))
        for i in range(out.shape[0]):
            for j in range(out.shape[1]):
                covered = x.clone()
                top, left = i * stride, j * stride
                rows, cols = slice(top, top + patch), slice(left, left + patch)
                for ch in range(c):
                    covered[ch, rows, cols] = fill[ch]
                out[i, j] = (p - model(covered[None]).softmax(1)[0, target]).item()
    return out


@pytest.mark.parametrize(("patch", "stride", "fill", "batch_size"),
                         [(3, 1, None, 7), (2, 2, 0.0, 256), (4, 3, [0.1, 0.5, 0.9], 5)])
def test_occlusion_equals_the_brute_force_loop(patch, stride, fill, batch_size):
    model = small_net(dtype=torch.float64).train()
    x = torch.rand(3, 8, 8, dtype=torch.float64)
    got = occlusion(model, x, 2, patch=patch, stride=stride, fill=fill, batch_size=batch_size)
    values = x.mean((1, 2)) if fill is None else torch.as_tensor(fill).expand(3)
    model.eval()
    expected = _occlusion_loop(model, x, 2, patch, stride, values)
    assert got.shape == expected.shape == ((8 - patch) // stride + 1,) * 2
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)
    assert np.abs(got).max() > 1e-6  # covering something changed something
    model.train()
    occlusion(model, x, 2, patch=patch)
    assert model.training


def test_occlusion_refuses_bad_arguments():
    model = small_net()
    x = torch.rand(3, 8, 8)
    with pytest.raises(ValueError, match=r"one image \(C, H, W\), got shape \(1, 3, 8, 8\) "
                                         r"\(pass x\[0\]"):
        occlusion(model, x[None], 0)
    with pytest.raises(ValueError, match=r"target must be a class index in \[0, 4\), got 4"):
        occlusion(model, x, 4)
    with pytest.raises(ValueError, match="patch must be <= min"):
        occlusion(model, x, 0, patch=9)
    with pytest.raises(ValueError, match="fill must be None, a number or 3 values"):
        occlusion(model, x, 0, fill=[0.0, 1.0])
    with pytest.raises(ValueError, match="stride must be an int >= 1"):
        occlusion(model, x, 0, stride=0)


# ----------------------------------------------------------------------------- saliency


def test_saliency_equals_autograd_and_a_finite_difference():
    model = small_net(dtype=torch.float64)
    x = torch.rand(3, 8, 8, dtype=torch.float64)
    xg = x[None].clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(model.eval()(xg)[0, 1], xg)
    model.train()
    raw = saliency(model, x, 1, absolute=False, reduce=None)
    np.testing.assert_allclose(raw, grad[0].numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(saliency(model, x, 1), grad[0].abs().amax(0).numpy())
    np.testing.assert_allclose(saliency(model, x, 1, reduce="mean"), grad[0].abs().mean(0))
    assert saliency(model, x, 1).shape == (8, 8)
    as_float32 = saliency(model, x.float(), 1)  # the input follows the model's dtype
    assert as_float32.dtype == np.float64
    np.testing.assert_allclose(as_float32, saliency(model, x.float().double(), 1))
    eps = 1e-6
    for c, i, j in [(0, 3, 4), (2, 0, 7), (1, 5, 1)]:
        up, down = x.clone(), x.clone()
        up[c, i, j] += eps
        down[c, i, j] -= eps
        with torch.no_grad():
            fd = (model.eval()(up[None])[0, 1] - model(down[None])[0, 1]).item() / (2 * eps)
        assert raw[c, i, j] == pytest.approx(fd, rel=1e-5, abs=1e-9)
    model.train()
    saliency(model, x, 1)
    assert model.training and all(p.grad is None for p in model.parameters())
    with pytest.raises(ValueError, match="reduce must be 'max', 'mean' or None"):
        saliency(model, x, 1, reduce="sum")
    with pytest.raises(ValueError, match=r"target must be a class index in \[0, 4\)"):
        saliency(model, x, -1)
    with pytest.raises(ValueError, match=r"one image \(C, H, W\)"):
        saliency(model, x[0], 1)


# ----------------------------------------------------------------------------- maximisation


def _activation(model, layer, unit, image):
    with torch.no_grad():
        if layer is None:
            return model(image[None])[0, unit].item()
        return feature_maps(model, image, layers=[layer])[layer][0, unit].mean().item()


@pytest.mark.parametrize(("layer", "unit"), [("3", 2), (None, 1), ("logits", 3)])
def test_maximize_activation_beats_a_random_input(layer, unit):
    model = small_net().train()
    img = maximize_activation(model, layer, unit, shape=(3, 8, 8), steps=60)
    assert img.shape == (3, 8, 8) and img.dtype == np.float32
    layer = None if layer == "logits" else layer
    reached = _activation(model, layer, unit, torch.from_numpy(img))
    gen = torch.Generator().manual_seed(1)
    randoms = [_activation(model, layer, unit, torch.rand(3, 8, 8, generator=gen))
               for _ in range(20)]
    # far outside what random images reach (an untrained net's tanh bounds the logits)
    assert reached > max(randoms) and reached - np.mean(randoms) > 10 * np.std(randoms)
    assert model.training and all(p.grad is None for p in model.parameters())
    assert _hooks(model) == 0
    again = maximize_activation(model, layer, unit, shape=(3, 8, 8), steps=60)
    np.testing.assert_array_equal(img, again)  # seeded


def test_maximize_activation_refuses_bad_arguments():
    model = small_net()
    with pytest.raises(ValueError, match=r"no layer 'fc'; available: \['0', '1', '2'"):
        maximize_activation(model, "fc", 0, shape=(3, 8, 8))
    with pytest.raises(ValueError, match=r"unit must be < 6 \(the channels of 3\), got 6"):
        maximize_activation(model, "3", 6, shape=(3, 8, 8), steps=2)
    with pytest.raises(ValueError, match=r"unit must be < 4 \(the classes of the logits\)"):
        maximize_activation(model, None, 4, shape=(3, 8, 8), steps=2)
    with pytest.raises(ValueError, match=r"shape must be \(C, H, W\)"):
        maximize_activation(model, None, 0, shape=(1, 3, 8, 8))
    with pytest.raises(ValueError, match="l2 must be < 1"):
        maximize_activation(model, None, 0, shape=(3, 8, 8), l2=1.0)
    assert _hooks(model) == 0
