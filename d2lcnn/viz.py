"""What has a CNN learned? Pictures of its filters, its feature maps, and of what it looks at.

* :func:`filter_grid` / :func:`show_filters`: a conv layer's filters tiled into one image;
* :func:`feature_maps` / :func:`show_feature_maps`: the outputs of chosen layers for one input;
* :func:`occlusion`: how much the probability of a class drops when a patch of the image is
  covered (Zeiler and Fergus, 2014);
* :func:`saliency`: the gradient of a class score with respect to the pixels;
* :func:`maximize_activation`: an input, found by gradient ascent, that excites one unit.

Torch models in, NumPy arrays out for every image, so the results go straight to matplotlib.
The model's train/eval mode is restored, and its parameters' ``.grad`` left untouched, by
every function here: they run the model in eval mode and differentiate only the input.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from d2lcnn.torch.device import device as pick_device

__all__ = [
    "filter_grid",
    "show_filters",
    "feature_maps",
    "show_feature_maps",
    "occlusion",
    "saliency",
    "maximize_activation",
]


# ----------------------------------------------------------------------------- filters


def filter_grid(
    weight,
    *,
    ncols: int | None = None,
    normalize: str = "per_filter",
    pad: int = 1,
    channel: str | int = "mean",
    pad_value: float = 1.0,
) -> np.ndarray:
    """Tile the filters of a conv layer into one image, each rescaled to ``[0, 1]``.

    Args:
        weight: conv weights ``(C_out, C_in, kH, kW)``, a tensor or an array (e.g.
            ``model.features[0].weight``).
        ncols: filters per row; default ``ceil(sqrt(C_out))``.
        normalize: ``"per_filter"`` (default) maps each filter's own min and max to 0 and 1
            (an RGB filter's three channels together, so its colours keep their balance);
            ``"global"`` maps the min and max over all filters to 0 and 1, so filters can be
            compared in strength. A constant filter becomes 0.5.
        pad: pixels of ``pad_value`` between filters and around the grid. Default 1.
        channel: for ``C_in`` other than 1 (grey) and 3 (RGB): ``"mean"`` (default) shows
            the mean over the input channels, an int shows that input channel.
        pad_value: the value of the padding, in ``[0, 1]``. Default 1.0 (white).

    Returns:
        An ``(H, W)`` array (grey, from ``C_in = 1`` or a reduced ``C_in``) or an
        ``(H, W, 3)`` array (RGB, ``C_in = 3``) in ``[0, 1]``, with
        ``H = rows * (kH + pad) + pad`` and ``W = ncols * (kW + pad) + pad``.
    """
    fn = "filter_grid"
    w = _np(weight).astype(np.float64)
    if w.ndim != 4:
        raise ValueError(
            f"{fn}: weight must be conv weights (C_out, C_in, kH, kW), got shape {w.shape}"
        )
    c_out, c_in, kh, kw = w.shape
    ncols = math.ceil(math.sqrt(c_out)) if ncols is None else _int(ncols, "ncols", fn, 1)
    pad = _int(pad, "pad", fn, 0)
    if normalize not in ("per_filter", "global"):
        raise ValueError(f"{fn}: normalize must be 'per_filter' or 'global', got {normalize!r}")
    if c_in == 3:
        tiles = w.transpose(0, 2, 3, 1)  # (C_out, kH, kW, 3)
    elif c_in == 1:
        tiles = w[:, 0]  # (C_out, kH, kW)
    elif channel == "mean":
        tiles = w.mean(axis=1)
    elif isinstance(channel, int) and not isinstance(channel, bool) and 0 <= channel < c_in:
        tiles = w[:, channel]
    else:
        raise ValueError(f"{fn}: channel must be 'mean' or an int in [0, {c_in}), got {channel!r}")
    axes = tuple(range(1, tiles.ndim)) if normalize == "per_filter" else None
    lo = tiles.min(axis=axes, keepdims=axes is not None)
    hi = tiles.max(axis=axes, keepdims=axes is not None)
    span = hi - lo
    tiles = np.where(span > 0, (tiles - lo) / np.where(span > 0, span, 1.0), 0.5)
    rows = math.ceil(c_out / ncols)
    out = np.full(
        (rows * (kh + pad) + pad, ncols * (kw + pad) + pad, *tiles.shape[3:]), float(pad_value)
    )
    for i, tile in enumerate(tiles):
        r, c = divmod(i, ncols)
        top, left = pad + r * (kh + pad), pad + c * (kw + pad)
        out[top : top + kh, left : left + kw] = tile
    return out


def show_filters(weight, ax=None, *, title: str | None = None, **kwargs):
    """Plot :func:`filter_grid` of ``weight`` (keyword arguments go to it).

    Returns:
        The ``matplotlib.figure.Figure`` (``ax``'s, or a new one made with pyplot).
    """
    image = filter_grid(weight, **kwargs)
    c_out, c_in, kh, kw = _np(weight).shape
    if ax is None:
        import matplotlib.pyplot as plt  # lazy: keep the import of this module light

        ax = plt.figure(figsize=(4, 4), layout="constrained").subplots()
    ax.imshow(image, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set(xticks=[], yticks=[], title=title or f"{c_out} filters, {kh}x{kw}x{c_in}")
    return ax.figure


# ----------------------------------------------------------------------------- feature maps


def feature_maps(
    model: torch.nn.Module, x, layers: Sequence[str] | None = None
) -> dict[str, torch.Tensor]:
    """Outputs of named submodules of ``model`` for input ``x`` (eval mode, no gradients).

    Forward hooks catch the outputs; they are removed afterwards, also when the forward
    pass raises.

    Args:
        model: the network.
        x: a batch ``(N, C, H, W)``, or one image ``(C, H, W)`` (a batch of one is made).
        layers: names from ``model.named_modules()`` (e.g. ``"features.0"``); ``None``
            (default) means every convolution and pooling layer.

    Returns:
        ``{name: output}`` in the order the layers ran, detached, on the CPU (a module
        called twice keeps its first output).

    Raises:
        ValueError: an unknown layer name (the message lists the names), a layer that did not
            run, or an ``x`` that is not 3-D or 4-D.
    """
    fn = "feature_maps"
    _model(model, fn)
    x = _tensor(x, fn)
    if x.ndim == 3:
        x = x[None]
    if x.ndim != 4:
        raise ValueError(
            f"{fn}: x must be a batch (N, C, H, W) or an image (C, H, W), got "
            f"shape {tuple(x.shape)}"
        )
    modules = {k: m for k, m in model.named_modules() if k}
    if layers is None:
        chosen = {k: m for k, m in modules.items() if _is_conv_or_pool(m)}
    else:
        chosen = {k: _module(modules, k, fn) for k in _names(layers, fn)}
    maps: dict[str, torch.Tensor] = {}

    def keep(name):
        def hook(module, inputs, output):
            if name not in maps and isinstance(output, torch.Tensor):
                maps[name] = output.detach().cpu()

        return hook

    handles = [m.register_forward_hook(keep(k)) for k, m in chosen.items()]
    try:
        with _evaluating(model), torch.no_grad():
            model(_on(model, x))
    finally:
        for h in handles:
            h.remove()
    missing = [k for k in chosen if k not in maps]
    if missing:
        raise ValueError(
            f"{fn}: layers {missing} did not run (or returned no tensor) in the forward pass"
        )
    return maps


def show_feature_maps(maps: dict[str, torch.Tensor], max_channels: int = 8, *, index: int = 0):
    """One row per layer: the first ``max_channels`` maps of example ``index``.

    Args:
        maps: what :func:`feature_maps` returned (``(N, C, H, W)`` outputs; an ``(N, F)``
            output is drawn as one strip).
        max_channels: channels shown per layer. Default 8.
        index: the example of the batch. Default 0.

    Returns:
        The ``matplotlib.figure.Figure`` (made with pyplot).
    """
    import matplotlib.pyplot as plt

    fn = "show_feature_maps"
    if not isinstance(maps, dict) or not maps:
        got = f"an empty {type(maps).__name__}" if not maps else type(maps).__name__
        raise ValueError(f"{fn}: maps must be a non-empty dict from feature_maps, got {got}")
    max_channels = _int(max_channels, "max_channels", fn, 1)
    n = min(len(m) for m in maps.values())
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < n:
        raise ValueError(f"{fn}: index must be an int in [0, {n}), got {index!r}")
    ncols = min(max_channels, max(m.shape[1] if m.ndim == 4 else 1 for m in maps.values()))
    fig, axes = plt.subplots(
        len(maps),
        ncols,
        figsize=(1.3 * ncols + 1.2, 1.4 * len(maps)),
        layout="constrained",
        squeeze=False,
    )
    for row, (name, m) in zip(axes, maps.items(), strict=True):
        m = _np(m)[index]
        panels = m[:max_channels] if m.ndim == 3 else [m.reshape(1, -1)]
        for j, ax in enumerate(row):
            ax.set(xticks=[], yticks=[])
            if j < len(panels):
                ax.imshow(
                    panels[j],
                    cmap="viridis",
                    interpolation="nearest",
                    aspect="auto" if m.ndim != 3 else "equal",
                )
            else:
                ax.axis("off")
        row[0].set_ylabel(f"{name}\n{'x'.join(map(str, m.shape))}", fontsize="small")
    fig.suptitle(f"Feature maps of example {index} (first {ncols} channels)", fontsize="medium")
    return fig


# ----------------------------------------------------------------------------- occlusion


def occlusion(
    model: torch.nn.Module,
    x,
    target: int,
    *,
    patch: int = 4,
    stride: int = 1,
    fill=None,
    batch_size: int = 256,
    device=None,
) -> np.ndarray:
    """How much covering each patch of ``x`` lowers the probability of class ``target``.

    A ``patch x patch`` square of ``fill`` slides over the image with step ``stride``; at
    each position the model (eval mode, no gradients) scores the covered image. Entry
    ``(i, j)`` of the map is ``p(target | x) - p(target | x with the square at row
    i * stride, column j * stride)``: large where the model needs the pixels. The covered
    images are scored ``batch_size`` at a time.

    Args:
        model: a classifier returning logits ``(N, K)``.
        x: one image ``(C, H, W)``.
        target: the class, ``0 <= target < K``.
        patch: side of the square, ``1 <= patch <= min(H, W)``. Default 4.
        stride: step between positions. Default 1.
        fill: the square's value: ``None`` (default) the image's mean of each channel, a
            number, or one value per channel.
        batch_size: covered images per forward pass. Default 256.
        device: ``None`` (default) is the model's device; otherwise the model is moved.

    Returns:
        ``(H_out, W_out)`` float64 array, ``H_out = (H - patch) // stride + 1`` (``W_out``
        alike).
    """
    fn = "occlusion"
    _model(model, fn)
    x = _image(x, fn)
    c, h, w = x.shape
    patch = _int(patch, "patch", fn, 1)
    stride = _int(stride, "stride", fn, 1)
    batch_size = _int(batch_size, "batch_size", fn, 1)
    if patch > min(h, w):
        raise ValueError(f"{fn}: patch must be <= min(H, W) = {min(h, w)}, got {patch}")
    dev = _device(model, device)
    x = _on(model, x)
    fill = _fill(fill, x, fn)  # (C,)
    h_out, w_out = (h - patch) // stride + 1, (w - patch) // stride + 1
    tops = torch.arange(h_out, device=dev).repeat_interleave(w_out) * stride  # (P,)
    lefts = torch.arange(w_out, device=dev).repeat(h_out) * stride  # (P,)
    rows, cols = torch.arange(h, device=dev), torch.arange(w, device=dev)
    drops = []
    with _evaluating(model), torch.no_grad():
        base = _probability(model(x[None]), target, fn)[0]
        for i in range(0, len(tops), batch_size):
            t, lf = tops[i : i + batch_size, None], lefts[i : i + batch_size, None]
            in_rows = (rows >= t) & (rows < t + patch)  # (B, H)
            in_cols = (cols >= lf) & (cols < lf + patch)  # (B, W)
            covered = (in_rows[:, :, None] & in_cols[:, None, :])[:, None]  # (B, 1, H, W)
            batch = torch.where(covered, fill[None, :, None, None], x[None])  # (B, C, H, W)
            drops.append(base - _probability(model(batch), target, fn))
    return torch.cat(drops).reshape(h_out, w_out).double().cpu().numpy()


def _fill(fill, x: torch.Tensor, fn: str) -> torch.Tensor:
    c = x.shape[0]
    if fill is None:
        return x.mean(dim=(1, 2))  # (C,)
    values = torch.as_tensor(fill, dtype=x.dtype, device=x.device).flatten()
    if values.numel() == 1:
        return values.expand(c)
    if values.numel() != c:
        raise ValueError(
            f"{fn}: fill must be None, a number or {c} values (one per channel), "
            f"got {values.numel()} values"
        )
    return values


def _probability(logits: torch.Tensor, target: int, fn: str) -> torch.Tensor:
    if logits.ndim != 2:
        raise ValueError(
            f"{fn}: the model must return logits (N, K), got shape {tuple(logits.shape)}"
        )
    target = _target(target, logits.shape[1], fn)
    return logits.float().softmax(dim=1)[:, target]  # (N,)


# ----------------------------------------------------------------------------- saliency


def saliency(
    model: torch.nn.Module, x, target: int, *, absolute: bool = True, reduce: str | None = "max"
) -> np.ndarray:
    """The gradient of the logit of class ``target`` with respect to the pixels of ``x``.

    ``abs(d logit_target / d x)`` (``absolute=True``), reduced over the channels: the
    pixels whose small changes move the class score most (Simonyan et al., 2014).
    The model runs in eval mode; only ``x`` is differentiated.

    Args:
        model: a classifier returning logits ``(N, K)``.
        x: one image ``(C, H, W)``.
        target: the class, ``0 <= target < K``.
        absolute: take the absolute value first. Default True.
        reduce: over the channels: ``"max"`` (default), ``"mean"``, or ``None`` to keep
            them.

    Returns:
        ``(H, W)`` array (``(C, H, W)`` with ``reduce=None``), in the model's float dtype.
    """
    fn = "saliency"
    _model(model, fn)
    if reduce not in ("max", "mean", None):
        raise ValueError(f"{fn}: reduce must be 'max', 'mean' or None, got {reduce!r}")
    x = _on(model, _image(x, fn))
    x = x[None].detach().clone().requires_grad_(True)  # (1, C, H, W)
    with _evaluating(model):
        logits = model(x)
        if logits.ndim != 2:
            raise ValueError(
                f"{fn}: the model must return logits (N, K), got shape {tuple(logits.shape)}"
            )
        target = _target(target, logits.shape[1], fn)
        (grad,) = torch.autograd.grad(logits[0, target], x)
    g = grad[0]  # (C, H, W)
    if absolute:
        g = g.abs()
    if reduce == "max":
        g = g.amax(dim=0)
    elif reduce == "mean":
        g = g.mean(dim=0)
    return g.detach().cpu().numpy()


# ----------------------------------------------------------------------------- maximisation


def maximize_activation(
    model: torch.nn.Module,
    layer: str | None,
    unit: int,
    *,
    shape: Sequence[int],
    steps: int = 200,
    lr: float = 0.1,
    l2: float = 1e-3,
    blur_every: int = 4,
    jitter: int = 1,
    seed: int = 0,
    device=None,
) -> np.ndarray:
    """An input that excites one unit, found by regularised gradient ascent on the pixels.

    Starting from faint noise, each step shifts the image by a random ``(dy, dx)`` in
    ``[-jitter, jitter]`` (circularly), computes the objective, and moves the image along
    its gradient normalised to unit root-mean-square, ``x <- x + lr * g / rms(g)``; then
    decays it, ``x <- (1 - l2) * x``, and every ``blur_every`` steps blurs it with a 3x3
    Gaussian (sigma 0.5). Jitter, decay and blur keep the image from filling with
    high-frequency patterns that excite the unit but show nothing (Yosinski et al., 2015).

    The objective is the mean over positions of channel ``unit`` of ``layer``'s output (for
    an ``(N, F)`` output, feature ``unit``), or the logit of class ``unit`` when ``layer`` is
    ``None`` or ``"logits"``. The model runs in eval mode.

    Args:
        model: the network.
        layer: a name from ``model.named_modules()``, or ``None`` / ``"logits"``.
        unit: the channel (or class).
        shape: the input's ``(C, H, W)``.
        steps, lr, l2, blur_every, jitter: as above (``blur_every=0`` never blurs,
            ``jitter=0`` never shifts). Defaults 200, 0.1, 1e-3, 4, 1.
        seed: seeds the starting noise and the shifts (a generator of its own).
        device: ``None`` (default) is the model's device; otherwise the model is moved.

    Returns:
        The image ``(C, H, W)`` as a float32 array.
    """
    fn = "maximize_activation"
    _model(model, fn)
    shape = tuple(shape) if isinstance(shape, Sequence) else shape
    if not (
        isinstance(shape, tuple)
        and len(shape) == 3
        and all(isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in shape)
    ):
        raise ValueError(f"{fn}: shape must be (C, H, W) of positive ints, got {shape!r}")
    steps = _int(steps, "steps", fn, 1)
    blur_every, jitter = _int(blur_every, "blur_every", fn, 0), _int(jitter, "jitter", fn, 0)
    for name, value in (("lr", lr), ("l2", l2)):
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise ValueError(f"{fn}: {name} must be a number >= 0, got {value!r}")
    if l2 >= 1:
        raise ValueError(f"{fn}: l2 must be < 1 (the decay factor is 1 - l2), got {l2!r}")
    dev = _device(model, device)
    objective = _Objective(model, layer, unit, fn)
    gen = torch.Generator().manual_seed(seed)
    img = _on(model, 0.01 * torch.randn(shape, generator=gen))
    shifts = torch.randint(-jitter, jitter + 1, (steps, 2), generator=gen).tolist()
    kernel = _gaussian_kernel(shape[0], img.dtype, dev)
    try:
        with _evaluating(model):
            for t, (dy, dx) in enumerate(shifts):
                img.requires_grad_(True)
                value = objective(torch.roll(img, (dy, dx), dims=(1, 2))[None])
                (g,) = torch.autograd.grad(value, img)
                with torch.no_grad():
                    img = img + lr * g / (g.pow(2).mean().sqrt() + 1e-12)
                    img = img * (1 - l2)
                    if blur_every and (t + 1) % blur_every == 0:
                        img = F.conv2d(
                            F.pad(img[None], (1, 1, 1, 1), mode="replicate"),
                            kernel,
                            groups=shape[0],
                        )[0]
    finally:
        objective.remove()
    return img.detach().float().cpu().numpy()


class _Objective:
    """The mean activation of ``unit`` in ``layer`` (via a forward hook), or a class logit."""

    def __init__(self, model, layer, unit, fn):
        self.model, self.unit, self.fn, self.handle, self.out = model, unit, fn, None, None
        if isinstance(unit, bool) or not isinstance(unit, int) or unit < 0:
            raise ValueError(f"{fn}: unit must be an int >= 0, got {unit!r}")
        self.layer = None if layer in (None, "logits") else layer
        if self.layer is not None:
            modules = {k: m for k, m in model.named_modules() if k}
            module = _module(modules, self.layer, fn)
            self.handle = module.register_forward_hook(self._keep)

    def _keep(self, module, inputs, output):
        self.out = output

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        self.out = None
        logits = self.model(x)
        out = logits if self.layer is None else self.out
        if not isinstance(out, torch.Tensor) or out.ndim < 2:
            raise ValueError(f"{self.fn}: layer {self.layer!r} gave no (N, C, ...) tensor")
        what = "classes" if self.layer is None else "channels"
        if self.unit >= out.shape[1]:
            raise ValueError(
                f"{self.fn}: unit must be < {out.shape[1]} (the {what} of "
                f"{self.layer or 'the logits'}), got {self.unit}"
            )
        return out[0, self.unit].mean()

    def remove(self) -> None:
        if self.handle is not None:
            self.handle.remove()


def _gaussian_kernel(channels: int, dtype, dev) -> torch.Tensor:
    k1 = torch.exp(-(torch.tensor([-1.0, 0.0, 1.0]) ** 2) / (2 * 0.5**2))
    k2 = torch.outer(k1, k1)
    k2 = k2 / k2.sum()
    return k2.to(dtype=dtype, device=dev).expand(channels, 1, 3, 3).contiguous()


# ----------------------------------------------------------------------------- helpers


@contextlib.contextmanager
def _evaluating(model: torch.nn.Module):
    """Eval mode for the block; the model's mode (and every submodule's) restored after."""
    modes = {m: m.training for m in model.modules()}
    model.eval()
    try:
        yield
    finally:
        for m, mode in modes.items():
            m.training = mode


def _model(model, fn: str) -> None:
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"{fn}: model must be a torch.nn.Module, got {type(model).__name__}")


def _device(model: torch.nn.Module, device) -> torch.device:
    if device is None:
        for t in (*model.parameters(), *model.buffers()):
            return t.device
        return torch.device("cpu")
    device = pick_device(device) if isinstance(device, str) else device
    if not isinstance(device, torch.device):
        raise TypeError(f"device must be None, a name or a torch.device, got {device!r}")
    model.to(device)
    return device


def _on(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``x`` on the model's device, in its floating dtype (float32 without parameters)."""
    for p in model.parameters():
        if p.dtype.is_floating_point:
            return x.to(p.device, p.dtype)
    return x.to(_device(model, None))


def _tensor(x, fn: str) -> torch.Tensor:
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{fn}: x must be a tensor or an array, got {type(x).__name__}")
    return x.float() if not x.dtype.is_floating_point else x


def _image(x, fn: str) -> torch.Tensor:
    x = _tensor(x, fn)
    if x.ndim != 3:
        hint = " (pass x[0] for the first image of a batch)" if x.ndim == 4 else ""
        raise ValueError(f"{fn}: x must be one image (C, H, W), got shape {tuple(x.shape)}{hint}")
    return x


def _target(target, k: int, fn: str) -> int:
    if isinstance(target, torch.Tensor | np.integer) and np.ndim(target) == 0:
        target = int(target)
    if isinstance(target, bool) or not isinstance(target, int) or not 0 <= target < k:
        raise ValueError(f"{fn}: target must be a class index in [0, {k}), got {target!r}")
    return target


def _int(value, name: str, fn: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"{fn}: {name} must be an int >= {minimum}, got {value!r}")
    return int(value)


def _names(layers, fn: str) -> list[str]:
    layers = [layers] if isinstance(layers, str) else list(layers)
    if not layers:
        raise ValueError(f"{fn}: layers must be None or a non-empty list of names")
    return layers


def _module(modules: dict, name, fn: str) -> torch.nn.Module:
    if name not in modules:
        raise ValueError(f"{fn}: the model has no layer {name!r}; available: {list(modules)}")
    return modules[name]


def _is_conv_or_pool(m: torch.nn.Module) -> bool:
    return isinstance(m, torch.nn.modules.conv._ConvNd) or type(m).__module__ == (
        "torch.nn.modules.pooling"
    )


def _np(a) -> np.ndarray:
    return a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)
