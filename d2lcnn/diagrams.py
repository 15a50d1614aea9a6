"""Schematic diagrams of the book's figures, drawn by code (matplotlib only).

Every diagram is a function that returns a ``matplotlib.figure.Figure``: versioned with the
code, drawn offline, redrawn by ``make book``. Nothing runs on import and no ``rcParams`` are
changed; matplotlib and torch are imported when a diagram is drawn.

- :func:`conv_window` (and :func:`conv_window_animation`): the kernel sliding over a padded
  input and the output cell each position produces, checked by :mod:`d2lcnn.geometry`;
- :func:`pipeline`: layers left to right with their output shapes; :func:`layers_from_model`
  reads the layers and shapes off a model's forward pass, so :func:`lenet5` and
  :func:`alexnet` show the shapes the package's models really produce;
- :func:`inception_module`, :func:`residual_blocks`, :func:`unet` and :func:`hourglass`: the
  building blocks of chapters 07 and 08, labelled with the channel counts and sizes of
  :mod:`d2lcnn.torch.models` (computed by :func:`d2lcnn.summary.summary` on the ``meta``
  device, so even AlexNet costs no memory).

Every drawn part has a ``gid`` (``"box"``, ``"arrow"``, ``"add"``, and in :func:`conv_window`
``"input-cell"``, ``"padding-cell"``, ``"kernel-tap"``, ``"output-cell"``), which tests and
SVG output can use to find it.
"""

from __future__ import annotations

import math
from typing import NamedTuple

from d2lcnn.checks import check_int
from d2lcnn.geometry import conv2d_output_shape, pair

__all__ = [
    "conv_window", "conv_window_animation",  # chapter 01
    "pipeline", "layers_from_model", "lenet5", "alexnet", "inception_module",  # chapter 07
    "residual_blocks", "unet", "hourglass",  # chapter 08
]

# Fill colour of a box by the kind of layer it stands for.
COLORS = {
    "input": "#eeeeee",
    "conv": "#cfe2f3",
    "pool": "#fce5cd",
    "norm": "#d9ead3",
    "act": "#fff2cc",
    "fc": "#e4d3ee",
    "up": "#d0e0e3",
    "loss": "#f4cccc",
    "other": "#ffffff",
}
_KINDS = {  # module class name -> kind
    "Conv2d": "conv",
    "ConvTranspose2d": "up",
    "MaxPool2d": "pool",
    "AvgPool2d": "pool",
    "AdaptiveAvgPool2d": "pool",
    "BatchNorm2d": "norm",
    "LocalResponseNorm": "norm",
    "ReLU": "act",
    "Tanh": "act",
    "Linear": "fc",
}
TIMES = "\u00d7"  # the multiplication sign of every shape label: "6×28×28"


# --------------------------------------------------------------------------- primitives


def _canvas(xlim, ylim, title: str, width: float = 12.0):
    """A figure with one frameless, equal-aspect axes over ``xlim`` x ``ylim`` (data units)."""
    import matplotlib.pyplot as plt  # lazy: keep ``import d2lcnn`` light

    (x0, x1), (y0, y1) = xlim, ylim
    height = width * (y1 - y0) / (x1 - x0) + 0.6  # + room for the title
    fig, ax = plt.subplots(figsize=(width, height), layout="constrained")
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_aspect("equal")
    ax.set_axis_off()
    fig.suptitle(title, fontsize=14)
    return fig, ax


def _box(ax, x, y, name, sub=None, *, kind="other", w=1.4, h=0.8, dashed=False, fontsize=10):
    """A rounded box centred at ``(x, y)`` with the lines of ``name`` (the first in bold
    when there are more) and ``sub`` (a shape) below them."""
    from matplotlib.patches import FancyBboxPatch

    ax.add_patch(FancyBboxPatch(
        (x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0,rounding_size=0.08",
        fc=COLORS[kind], ec="0.25", lw=1.2, ls="--" if dashed else "-", zorder=2, gid="box",
    ))
    lines = [*name.split("\n"), *([] if sub is None else [_shape(sub)])]
    for i, line in enumerate(lines):  # stacked in points, so text never depends on the scale
        bold = i == 0 and len(lines) > 1
        ax.annotate(line, (x, y), xytext=(0, ((len(lines) - 1) / 2 - i) * 1.25 * fontsize),
                    textcoords="offset points", ha="center", va="center", fontsize=fontsize,
                    fontweight="bold" if bold else "normal", zorder=3)


def _arrow(ax, start, end, text=None, *, rad=0.0, color="0.2", dashed=False,
           text_offset=(0, 0.12), **text_kw):
    """An arrow from ``start`` to ``end`` (curved if ``rad`` != 0), with an optional label
    at its midpoint shifted by ``text_offset`` (``text_kw`` go to :func:`_label`)."""
    from matplotlib.patches import FancyArrowPatch

    ax.add_patch(FancyArrowPatch(
        start, end, arrowstyle="-|>", mutation_scale=14, lw=1.4, color=color,
        ls="--" if dashed else "-", connectionstyle=f"arc3,rad={rad}", zorder=1,
        shrinkA=0, shrinkB=0, gid="arrow",
    ))
    if text:
        mx, my = (start[0] + end[0]) / 2, (start[1] + end[1]) / 2
        _label(ax, mx + text_offset[0], my + text_offset[1], text,
               **{"va": "bottom", "color": color, **text_kw})


def _path(ax, points, color="0.2"):
    """A polyline through ``points`` ending in an arrow head (elbow connectors)."""
    xs, ys = zip(*points[:-1], strict=True)
    ax.plot(xs, ys, color=color, lw=1.4, zorder=1, solid_capstyle="butt")
    _arrow(ax, points[-2], points[-1], color=color)


def _label(ax, x, y, text, *, ha="center", va="center", fontsize=9.5, style="italic", **kw):
    """Free text: an annotation of a part of the diagram."""
    ax.text(x, y, text, ha=ha, va=va, fontsize=fontsize, style=style, zorder=4, **kw)


def _add(ax, x, y, r=0.2):
    """The addition node, a circled plus."""
    from matplotlib.patches import Circle

    ax.add_patch(Circle((x, y), r, fc="white", ec="0.2", lw=1.4, zorder=2, gid="add"))
    ax.text(x, y, "+", ha="center", va="center", fontsize=14, fontweight="bold", zorder=3)


def _shape(shape) -> str:
    """``(6, 28, 28)`` -> ``"6×28×28"``; strings pass through."""
    return shape if isinstance(shape, str) else TIMES.join(str(int(s)) for s in shape)


# --------------------------------------------------------------------------- conv window


class _Geometry(NamedTuple):
    """A convolution's geometry, one ``(height, width)`` pair per argument."""

    size: tuple[int, int]
    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]
    dilation: tuple[int, int]
    out: tuple[int, int]


def _conv_geometry(fn, input_size, kernel_size, stride, padding, dilation) -> _Geometry:
    args = dict(stride=stride, padding=padding, dilation=dilation)
    try:
        out = conv2d_output_shape(input_size, kernel_size, **args)
    except ValueError as e:  # name the diagram, keep geometry's arithmetic
        msg = str(e)
        msg = msg.replace("conv2d:", f"{fn}:", 1) if msg.startswith("conv2d:") else f"{fn}: {msg}"
        raise ValueError(msg) from None
    return _Geometry(
        pair(input_size, "input_size"), pair(kernel_size, "kernel_size"),
        pair(stride, "stride"), pair(padding, "padding"), pair(dilation, "dilation"), out,
    )


def _draw_frame(ax, g: _Geometry, step: int) -> None:
    """One frame: the padded input with the kernel at output position ``step`` (row-major),
    and the output grid with the cells computed so far."""
    from matplotlib.patches import Rectangle

    (h, w), (ph, pw), (ho, wo) = g.size, g.padding, g.out
    hp, wp = h + 2 * ph, w + 2 * pw
    oi, oj = divmod(step, wo)
    r0, c0 = oi * g.stride[0], oj * g.stride[1]  # top-left tap of the window
    for r in range(hp):
        for c in range(wp):
            pad = not (ph <= r < ph + h and pw <= c < pw + w)
            ax.add_patch(Rectangle((c, -r - 1), 1, 1, fc="#d9d9d9" if pad else "white", ec="0.5",
                                   hatch="///" if pad else None, lw=0.8,
                                   gid="padding-cell" if pad else "input-cell"))
    for a in range(g.kernel[0]):
        for b in range(g.kernel[1]):
            r, c = r0 + a * g.dilation[0], c0 + b * g.dilation[1]
            ax.add_patch(Rectangle((c, -r - 1), 1, 1, fc="#f6b26b", ec="#b45f06", lw=1.2,
                                   zorder=2, gid="kernel-tap"))
    span = [g.dilation[i] * (g.kernel[i] - 1) + 1 for i in (0, 1)]
    ax.add_patch(Rectangle((c0, -r0 - span[0]), span[1], span[0], fill=False, ec="#b45f06",
                           lw=2, ls="--", zorder=3, gid="window"))
    x0, y0 = wp + 1.6, -(hp - ho) / 2  # output grid: right of the input, centred vertically
    for k in range(ho * wo):
        i, j = divmod(k, wo)
        fc = "#9fc5e8" if k < step else "#f6b26b" if k == step else "white"
        ax.add_patch(Rectangle((x0 + j, y0 - i - 1), 1, 1, fc=fc, ec="0.3", lw=1,
                               gid="output-cell"))
    _arrow(ax, (c0 + span[1], -r0 - span[0] / 2), (x0 + oj, y0 - oi - 0.5), rad=-0.25,
           color="#b45f06")
    pad_text = f"\npadded to {hp}{TIMES}{wp}" if ph or pw else ""
    _label(ax, wp / 2, -hp - 0.3, f"input {h}{TIMES}{w}{pad_text}", va="top", fontsize=10)
    _label(ax, x0 + wo / 2, y0 - ho - 0.3, f"output {ho}{TIMES}{wo}", va="top", fontsize=10)
    ax.set_title(f"step {step + 1}: output[{oi}, {oj}]", fontsize=11)
    ax.set_xlim(-0.3, x0 + wo + 0.3)
    ax.set_ylim(-hp - _below(g), 0.8)
    ax.set_aspect("equal")
    ax.set_axis_off()


def _below(g: _Geometry) -> float:
    """Room under the input grid for its label (two lines when padded), in cells."""
    return 2.2 if any(g.padding) else 1.4


def _conv_title(g: _Geometry) -> str:
    def s(p):
        return str(p[0]) if p[0] == p[1] else f"{p[0]}{TIMES}{p[1]}"

    return (f"Convolution: {g.size[0]}{TIMES}{g.size[1]} input, "
            f"{g.kernel[0]}{TIMES}{g.kernel[1]} kernel, stride {s(g.stride)}, "
            f"padding {s(g.padding)}, dilation {s(g.dilation)} "
            f"\u2192 {g.out[0]}{TIMES}{g.out[1]} output")


def _conv_legend(fig, ncols: int) -> None:
    from matplotlib.patches import Patch

    handles = [
        Patch(fc="white", ec="0.5", label="input"),
        Patch(fc="#d9d9d9", ec="0.5", hatch="///", label="zero padding"),
        Patch(fc="#f6b26b", ec="#b45f06", label="kernel tap / output of this step"),
        Patch(fc="#9fc5e8", ec="0.3", label="output computed earlier"),
    ]
    fig.legend(handles=handles, loc="outside lower center", ncols=ncols, fontsize=10,
               frameon=False)


def conv_window(input_size=5, kernel_size=3, stride=1, padding=0, dilation=1, steps=4):
    """The kernel sliding over the (padded) input, one frame per output position.

    Each frame shows the padded input (padding hatched), the kernel's taps at one position
    (with gaps between them when ``dilation > 1``; the dashed outline is the window they
    span), and the output grid: the cell this position produces and the cells produced
    before it. Positions are taken in row-major order, as the loops of ``conv2d`` visit them.

    Args:
        input_size, kernel_size, stride, padding, dilation: the convolution's geometry, an
            int or an ``(H, W)`` pair each, with ``torch.nn.Conv2d``'s meaning. Default: a 3x3
            kernel on a 5x5 input, stride 1, no padding, no dilation.
        steps: number of frames (the first ``steps`` output positions, at most all of them),
            or ``None`` for every position. Default: 4.

    Returns:
        The ``Figure``; one axes per frame (4 per row), in order.

    Raises:
        ValueError: the kernel does not fit in the padded input, an argument is out of range
            (the message names it and shows the output-size formula), or ``steps < 1``.
    """
    import matplotlib.pyplot as plt

    g = _conv_geometry("conv_window", input_size, kernel_size, stride, padding, dilation)
    total = g.out[0] * g.out[1]
    n = total if steps is None else min(check_int(steps, "steps", "conv_window", minimum=1), total)
    ncols = min(n, 4)
    nrows = math.ceil(n / ncols)
    hp, wp = g.size[0] + 2 * g.padding[0], g.size[1] + 2 * g.padding[1]
    frame_w = min(12 / ncols, 4.5)  # inches; one or two frames are not blown up
    frame_h = frame_w * (hp + _below(g) + 0.8) / (wp + 1.6 + g.out[1] + 0.6) + 0.35
    width = max(9.0, frame_w * ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(width, frame_h * nrows + 1.0),
                             squeeze=False, layout="constrained")
    for step, ax in enumerate(axes.ravel()):
        if step < n:
            _draw_frame(ax, g, step)
        else:
            fig.delaxes(ax)
    fig.suptitle(_conv_title(g), fontsize=13)
    _conv_legend(fig, ncols=4 if width > 11 else 2)
    return fig


def conv_window_animation(input_size=5, kernel_size=3, stride=1, padding=0, dilation=1, *,
                          interval=700):
    """The same as :func:`conv_window`, as an animation over every output position.

    Args: the geometry as in :func:`conv_window`; ``interval``: milliseconds per frame.

    Returns:
        A ``matplotlib.animation.FuncAnimation`` with one frame per output position. Its
        figure is closed (so a notebook shows only the animation): display it with
        ``IPython.display.HTML(anim.to_jshtml())``, which needs no video encoder.
    """
    import matplotlib.pyplot as plt
    from matplotlib.animation import FuncAnimation

    g = _conv_geometry("conv_window_animation", input_size, kernel_size, stride, padding,
                       dilation)
    hp, wp = g.size[0] + 2 * g.padding[0], g.size[1] + 2 * g.padding[1]
    height = 7.0 * (hp + _below(g) + 0.8) / (wp + 2.2 + g.out[1]) + 0.9
    fig, ax = plt.subplots(figsize=(7.0, height), layout="constrained")
    fig.suptitle(_conv_title(g), fontsize=10)

    def update(step):
        ax.clear()
        _draw_frame(ax, g, step)
        return []

    anim = FuncAnimation(fig, update, frames=g.out[0] * g.out[1], interval=interval,
                         repeat=True)
    plt.close(fig)
    return anim


# --------------------------------------------------------------------------- pipelines


def pipeline(layers, title: str, *, per_row: int | None = None):
    """A network as boxes from left to right, each with its name and output shape.

    Args:
        layers: a sequence of ``(name, shape)`` or ``(name, shape, kind)``: ``shape`` a tuple
            (drawn as ``"C×H×W"``) or a string; ``kind`` one of ``"input"``, ``"conv"``,
            ``"pool"``, ``"norm"``, ``"act"``, ``"fc"``, ``"up"``, ``"loss"``, ``"other"``
            (the box's colour). Use :func:`layers_from_model` to get them from a model.
        title: the figure's title.
        per_row: boxes per row; longer networks continue on the next row, the arrow
            turning down at the end of a row. Default: all in one row, up to 8.

    Returns:
        The ``Figure``.
    """
    items = [(str(t[0]), t[1], t[2] if len(t) > 2 else "other") for t in layers]
    if not items:
        raise ValueError("pipeline: layers must contain at least one layer, got none")
    bad = [k for _, _, k in items if k not in COLORS]
    if bad:
        raise ValueError(f"pipeline: kind must be one of {sorted(COLORS)}, got {bad[0]!r}")
    n = len(items)
    per_row = min(n, 8) if per_row is None else check_int(per_row, "per_row", "pipeline",
                                                          minimum=1)
    nrows = math.ceil(n / per_row)
    w, gap, vgap, fontsize = 1.55, 0.45, 0.7, 9.5
    width = min(per_row, n) * (w + gap) - gap
    fig_width = min(12.0, max(9.0, 0.8 * width))
    lines = max(name.count("\n") for name, _, _ in items) + 2
    h = (lines * 1.25 * fontsize + 14) / 72 / (fig_width / (width + 0.3))  # points -> units
    fig, ax = _canvas((-0.15, width + 0.15), (-nrows * (h + vgap) + vgap - 0.15, 0.15), title,
                      width=fig_width)
    for i, (name, shape, kind) in enumerate(items):
        row, col = divmod(i, per_row)
        x, y = col * (w + gap) + w / 2, -row * (h + vgap) - h / 2
        _box(ax, x, y, name, shape, kind=kind, w=w, h=h, fontsize=fontsize)
        if i == 0:
            continue
        if col > 0:
            _arrow(ax, (x - w / 2 - gap, y), (x - w / 2, y))
        else:  # wrap: down from the previous row's last box, back left, down into this one
            px = (per_row - 1) * (w + gap) + w / 2
            mid = y + h / 2 + vgap / 2
            _path(ax, [(px, y + h + vgap - h / 2), (px, mid), (x, mid), (x, y + h / 2)])
    return fig


def layers_from_model(model, input_shape, *, names=None,
                      include=("Conv2d", "ConvTranspose2d", "MaxPool2d", "AvgPool2d", "Linear")):
    """The ``(name, shape, kind)`` rows of :func:`pipeline`, read off a forward pass.

    Runs :func:`d2lcnn.summary.summary` (on the ``meta`` device: no memory, no compute) and
    keeps the leaf modules whose class name is in ``include``, in call order, after an
    ``"input"`` row. Each name describes the module (``"conv 5×5"``, ``"max pool 3×3, s2"``,
    ``"FC"``), and each shape is the module's output shape without the batch dimension.

    Args:
        model: an ``nn.Module`` (it is not modified).
        input_shape: ``(C, H, W)`` of one image.
        names: optional labels (e.g. the paper's ``"C1"``), one per kept module, written on
            the line above the description.
        include: class names of the modules to keep.

    Returns:
        A list of ``(name, shape, kind)``.

    Raises:
        ValueError: ``names`` does not have one entry per kept module.
    """
    from d2lcnn.summary import summary

    modules = dict(model.named_modules())
    rows = [r for r in summary(model, tuple(input_shape)) if r.type in include]
    if names is not None and len(names) != len(rows):
        raise ValueError(
            f"layers_from_model: names must have one entry per kept layer ({len(rows)}: "
            f"{[r.type for r in rows]}), got {len(names)}"
        )
    out = [("input", tuple(input_shape), "input")]
    for i, row in enumerate(rows):
        text = _describe(modules[row.name.split("#")[0]])
        if names is not None:
            text = f"{names[i]}\n{text}"
        out.append((text, row.output_shape[1:], _KINDS.get(row.type, "other")))
    return out


def _describe(module) -> str:
    """A short description of a layer: ``"conv 11×11, s4"``, ``"avg pool 2×2, s2"``."""
    kind = type(module).__name__
    if kind == "Linear":
        return "FC"
    k = pair(module.kernel_size, "kernel_size")
    s = pair(module.stride if module.stride is not None else k, "stride")
    stride = f"\nstride {s[0]}" if s[0] > 1 else ""
    what = {"Conv2d": "conv", "ConvTranspose2d": "up-conv", "MaxPool2d": "max pool",
            "AvgPool2d": "avg pool"}[kind]
    return f"{what} {k[0]}{TIMES}{k[1]}{stride}"


def _on_meta(factory):
    """Build a model on the ``meta`` device: shapes without allocating weights."""
    import torch

    with torch.device("meta"):
        return factory()


def lenet5():
    """LeNet-5 as a pipeline, with the shapes :class:`~d2lcnn.torch.models.LeNet5` produces
    on a 1×32×32 image (the paper's layer names C1...F6)."""
    from d2lcnn.torch.models import LeNet5

    layers = layers_from_model(_on_meta(LeNet5), (1, 32, 32),
                               names=["C1", "S2", "C3", "S4", "C5", "F6", "output"])
    return pipeline(layers, "LeNet-5: output shapes of d2lcnn's LeNet5 on a 1\u00d732\u00d732 "
                    "image (channels\u00d7height\u00d7width)")


def alexnet():
    """AlexNet as a pipeline on two rows, with the shapes
    :class:`~d2lcnn.torch.models.AlexNet` produces on a 3×227×227 image (the LRN layers and
    the adaptive pooling, which change no shape, are left out)."""
    from d2lcnn.torch.models import AlexNet

    names = ["CONV1", "POOL1", "CONV2", "POOL2", "CONV3", "CONV4", "CONV5", "POOL3",
             "FC6", "FC7", "FC8"]
    layers = layers_from_model(_on_meta(AlexNet), (3, 227, 227), names=names,
                               include=("Conv2d", "MaxPool2d", "Linear"))
    return pipeline(layers, "AlexNet: output shapes of d2lcnn's AlexNet on a "
                    "3\u00d7227\u00d7227 image", per_row=6)



# --------------------------------------------------------------------------- building blocks


def _rows(model, input_shape):
    """``summary`` rows of ``model`` on one image, and its modules by name."""
    from d2lcnn.summary import summary

    return list(summary(model, tuple(input_shape))), dict(model.named_modules())


def _last(rows, prefix, kind="Conv2d"):
    """Output shape (without batch) of the last ``kind`` row whose name starts with ``prefix``."""
    return [r for r in rows if r.name.startswith(prefix) and r.type == kind][-1].output_shape[1:]


def _layer_text(module) -> str:
    """``"conv 3×3, 64"``, ``"BN"``, ``"ReLU"``: a layer of a residual block."""
    if type(module).__name__ == "Conv2d":
        k, s = module.kernel_size, module.stride
        stride = f", stride {s[0]}" if s[0] > 1 else ""
        return f"conv {k[0]}{TIMES}{k[1]}, {module.out_channels}{stride}"
    return {"BatchNorm2d": "BN"}.get(type(module).__name__, type(module).__name__)


def inception_module(name: str = "3a"):
    """One inception module of :class:`~d2lcnn.torch.models.GoogLeNet` (default ``"3a"``):
    the four parallel branches and their concatenation along the channels, with the shapes a
    224×224 image produces (computed, as is the module's input)."""
    from d2lcnn.torch.models import GoogLeNet

    net = _on_meta(GoogLeNet)
    blocks = [b.removeprefix("inception") for b in net.blocks if b.startswith("inception")]
    if name not in blocks:
        raise ValueError(f"inception_module: name must be one of {blocks}, got {name!r}")
    rows, modules = _rows(net, (3, 224, 224))
    prefix = f"blocks.inception{name}."
    first = next(i for i, r in enumerate(rows) if r.name.startswith(prefix))
    c_in, h, w = rows[first - 1].output_shape[1:]
    fig, ax = _canvas((-0.2, 12.2), (-5.5, 0.6), f"Inception module ({name}) of GoogLeNet: "
                      f"four parallel branches, concatenated along the channels", width=11)
    _box(ax, 6, 0, "previous layer", (c_in, h, w), kind="input", w=2.6, h=0.8)
    _box(ax, 6, -4.7, "filter concatenation",
         (modules[prefix[:-1]].out_channels, h, w), kind="other", w=11.6, h=0.8)
    for col in range(4):
        x = 1.5 + 3 * col
        layers = [r for r in rows if r.name.startswith(f"{prefix}branch{col + 1}.")
                  and r.type != "ReLU"]
        ys = [-3.1] if len(layers) == 1 else [-1.6, -3.1]
        for i, (row, y) in enumerate(zip(layers, ys, strict=True)):
            text = _describe(modules[row.name])
            if text.endswith(f"1{TIMES}1") and i + 1 < len(layers):
                text += " (reduce)"
            elif text.endswith(f"1{TIMES}1") and i > 0:
                text += " (pool proj)"
            _box(ax, x, y, text, row.output_shape[1:], kind=_KINDS[row.type], w=2.6)
            if i > 0:
                _arrow(ax, (x, ys[i - 1] - 0.4), (x, y + 0.4))
        if col in (0, 3):  # the outer branches leave the input box sideways
            side = 6 + (1.3 if col else -1.3)
            _path(ax, [(side, 0), (x, 0), (x, ys[0] + 0.4)])
        else:
            _arrow(ax, (6 + (x - 6) * 0.3, -0.4), (x, ys[0] + 0.4))
        _arrow(ax, (x, -3.5), (x, -4.3))
    _label(ax, 6, -5.25, "every conv is followed by a ReLU; all branches keep the "
           f"{h}{TIMES}{w} size, so their maps can be stacked", fontsize=10)
    return fig


def residual_blocks(channels: int = 64, size: int = 56):
    """The basic, bottleneck and pre-activation residual blocks side by side.

    Each column lists the layers of :class:`~d2lcnn.torch.models.BasicBlock`,
    :class:`~d2lcnn.torch.models.Bottleneck` and
    :class:`~d2lcnn.torch.models.PreActBasicBlock` in the order their forward pass calls
    them (read off a forward pass), the identity shortcut and the addition: before the last
    ReLU in the original blocks, at the very end in the pre-activation block.

    Args:
        channels: the blocks' width (the bottleneck's inner width; its input and output have
            ``4 * channels``). Default: 64 (ResNet's first stage).
        size: height and width of the feature maps. Default: 56.
    """
    from d2lcnn.torch.models import BasicBlock, Bottleneck, PreActBasicBlock

    c = check_int(channels, "channels", "residual_blocks", minimum=1)
    size = check_int(size, "size", "residual_blocks", minimum=1)
    columns = [  # title, block, input channels, True if the addition comes before a last ReLU
        ("basic block\n(ResNet-18/34)", lambda: BasicBlock(c, c), c, True),
        ("bottleneck block\n(ResNet-50/101/152)", lambda: Bottleneck(4 * c, c), 4 * c, True),
        ("pre-activation block\n(ResNet v2)", lambda: PreActBasicBlock(c, c), c, False),
    ]
    dy, top = 0.72, -0.2
    tables = [_rows(_on_meta(factory), (c_in, size, size)) for _, factory, c_in, _ in columns]
    depth = max(len(rows) for rows, _ in tables) + 2  # + the addition and the output
    fig, ax = _canvas((-0.2, 12.2), (top - depth * dy - 0.4, 0.95), "Residual blocks: the "
                      "layers F(x) and the identity shortcut x, added", width=11)
    for col, ((title, _, c_in, post), (rows, modules)) in enumerate(
        zip(columns, tables, strict=True)
    ):
        x, xs = 4 * col + 1.5, 4 * col + 3.3  # main path, shortcut
        _label(ax, x + 0.9, 0.55, title, fontsize=11, fontweight="bold")
        _box(ax, x, top, "input x", (c_in, size, size), kind="input", w=2.0, h=0.55)
        steps = [(_layer_text(modules[r.name.split("#")[0]]), _KINDS[r.type]) for r in rows]
        steps.insert(len(steps) - 1 if post else len(steps), ("+", "add"))
        y, bottom, text_after = top, top - 0.275, None  # bottom: lower edge of the item above
        for text, kind in [*steps, ("output", "input")]:
            y -= dy
            h, into_add = (0.55 if kind == "input" else 0.4), kind == "add"
            _arrow(ax, (x, bottom), (x, y + h / 2), "F(x)" if into_add else text_after,
                   text_offset=(-0.12 if into_add else 0.12, 0),
                   ha="right" if into_add else "left", va="center")
            text_after = "F(x) + x" if kind == "add" else None
            if kind == "add":
                _add(ax, x, y)
                _path(ax, [(x + 1.0, top), (xs, top), (xs, y), (x + 0.2, y)])
                _label(ax, xs + 0.12, (top + y) / 2, "identity x", rotation=90, ha="left")
            else:
                sub = rows[-1].output_shape[1:] if text == "output" else None
                _box(ax, x, y, text, sub, kind=kind, w=2.0, h=h)
            bottom = y - h / 2
    return fig


def unet(depth: int = 4, base_width: int = 64, input_size: int = 572, padding: bool = False):
    """The U-Net: the contracting path down the left, the expanding path up the right, and
    the skip connections that copy (and crop) encoder maps across to the decoder.

    Every box shows the shape :class:`~d2lcnn.torch.models.UNet` ``(1, 2, depth=depth,
    base_width=base_width, padding=padding)`` produces on one ``input_size`` square tile.
    The defaults are the paper's network: a 572×572 tile gives a 388×388 map.
    """
    from d2lcnn.torch.models import UNet, unet_output_size

    depth = check_int(depth, "depth", "unet", minimum=1)
    try:
        unet_output_size(input_size, depth, padding)
    except ValueError as e:
        raise ValueError(str(e).replace("unet_output_size:", "unet:", 1)) from None
    net = _on_meta(lambda: UNet(1, 2, depth=depth, base_width=base_width, padding=padding))
    rows, _ = _rows(net, (1, input_size, input_size))
    pools = [r.output_shape[1:] for r in rows if r.type == "MaxPool2d"]
    dx, dy, w, h = 1.0, 1.5, 2.4, 0.8
    span = 2 * depth * dx + w + 1.2  # from the top encoder box to the top decoder box
    fig, ax = _canvas((-w / 2 - 0.7, span + w / 2 + 0.6), (-depth * dy - 0.5, 2.0),
                      f"U-Net: shapes of d2lcnn's UNet(depth={depth}, base_width={base_width}, "
                      f"padding={padding}) on a {input_size}{TIMES}{input_size} tile", width=12)
    double = f"2{TIMES} conv 3{TIMES}3, ReLU"
    _box(ax, 0, 1.5, "input tile", (1, input_size, input_size), kind="input", w=w, h=h)
    _arrow(ax, (0, 1.1), (0, h / 2))
    _box(ax, span / 2 + 0.0, -depth * dy, double, _last(rows, "bottom."), kind="conv", w=w, h=h)
    for lvl in range(depth):
        x, xd, y = lvl * dx, span - lvl * dx, -lvl * dy
        enc = _last(rows, f"down.{lvl}.")
        up = _last(rows, f"up.{depth - 1 - lvl}", "ConvTranspose2d")
        _box(ax, x, y, double, enc, kind="conv", w=w, h=h)
        _box(ax, xd, y, f"concat, then\n{double}", _last(rows, f"dec.{depth - 1 - lvl}."),
             kind="conv", w=w, h=h + 0.2)
        yb = y - dy + h / 2  # top of the boxes one level down
        if lvl + 1 < depth:
            _arrow(ax, (x, y - h / 2), (x + dx - 0.3, yb))
            _arrow(ax, (xd - dx + 0.3, yb), (xd, y - h / 2 - 0.1))
        else:  # elbows into and out of the bottom box
            _path(ax, [(x, y - h / 2), (x, y - dy), (span / 2 - w / 2, y - dy)])
            _path(ax, [(span / 2 + w / 2, y - dy), (xd, y - dy), (xd, y - h / 2 - 0.1)])
        _label(ax, x - 0.2, y - dy / 2, f"max pool 2{TIMES}2\n\u2192 {_shape(pools[lvl][1:])}",
               ha="right")
        _label(ax, xd + 0.2, y - dy / 2, f"up-conv 2{TIMES}2\n\u2192 {_shape(up)}", ha="left")
        crop = f"copy and crop {enc[1]}\u2192{up[1]}" if enc[1] != up[1] else "copy"
        _arrow(ax, (x + w / 2, y), (xd - w / 2, y), crop, color="0.45", dashed=True,
               text_offset=(0, 0.06))
    _box(ax, span, 1.5, "output: conv 1\u00d71", _last(rows, "head"), kind="conv", w=w, h=h)
    _arrow(ax, (span, h / 2 + 0.1), (span, 1.1))
    return fig


def _hourglass_shape(ax, x, y, name, sub):
    """An hourglass drawn as its silhouette: wide, narrow in the middle, wide again."""
    from matplotlib.patches import Polygon

    pts = [(-1, 0.75), (-0.25, 0.25), (0.25, 0.25), (1, 0.75), (1, -0.75), (0.25, -0.25),
           (-0.25, -0.25), (-1, -0.75)]
    ax.add_patch(Polygon([(x + a, y + b) for a, b in pts], fc=COLORS["up"], ec="0.25", lw=1.2,
                         zorder=2, gid="box"))
    _label(ax, x, y + 0.95, name, fontsize=10, fontweight="bold", style="normal")
    _label(ax, x, y - 0.95, sub, fontsize=9.5)


def hourglass(stacks: int = 2, input_size: int = 256):
    """Stacked hourglass networks with intermediate supervision: after every hourglass a
    head predicts heatmaps that get their own loss, and (except after the last) the
    features and the prediction are mapped back by 1×1 convs and added to the stack's input.

    Shapes are those of :class:`~d2lcnn.torch.models.StackedHourglass` ``(n_stacks=stacks)``
    on a 3×``input_size``×``input_size`` image. ``stacks`` is 1 to 4; the figure widens with it.
    """
    from d2lcnn.torch.models import StackedHourglass

    stacks = check_int(stacks, "stacks", "hourglass", minimum=1)
    if stacks > 4:
        raise ValueError(f"hourglass: stacks must be <= 4 to stay legible, got {stacks}")
    rows, _ = _rows(_on_meta(lambda: StackedHourglass(n_stacks=stacks)),
                    (3, input_size, input_size))
    feat = [r for r in rows if r.name.startswith("stem.")][-1].output_shape[1:]
    low = min(r.output_shape[-1] for r in rows if r.name.startswith("hourglasses.0."))
    step, units = 8.9, 3.9 + 8.9 * (stacks - 1) + 6.5
    plural = "s" if stacks > 1 else ""
    fig, ax = _canvas((0, units), (-2.35, 2.75 if stacks > 1 else 1.3),
                      f"Stacked hourglass ({stacks} stack{plural}) with intermediate "
                      "supervision: a loss after every stack", width=max(10.5, 12 * units / 19.3))
    _box(ax, 0.8, 0, "input", (3, input_size, input_size), kind="input", w=1.5, h=0.8)
    _box(ax, 2.85, 0, f"stem\nconv 7{TIMES}7, pool", feat, kind="conv", w=1.9, h=1.0)
    _arrow(ax, (1.55, 0), (1.9, 0))
    for i in range(stacks):
        x0 = 3.9 + i * step  # where the stack's input enters
        head = _last(rows, f"heads.{i}")
        _arrow(ax, (x0 - 0.1, 0), (x0 + 0.3, 0))
        _hourglass_shape(ax, x0 + 1.3, 0, f"hourglass {i + 1}",
                         f"{feat[-1]}\u2192{low}\u2192{feat[-1]}")
        _box(ax, x0 + 3.4, 0, "features", feat, kind="conv", w=1.5, h=0.8)
        _arrow(ax, (x0 + 2.3, 0), (x0 + 2.65, 0))
        _box(ax, x0 + 5.3, 0, f"head\nconv 1{TIMES}1", head, kind="conv", w=1.6, h=1.0)
        _arrow(ax, (x0 + 4.15, 0), (x0 + 4.5, 0))
        _box(ax, x0 + 5.3, -1.75, f"loss {i + 1}", "MSE vs. target", kind="loss", w=1.9,
             h=0.8, dashed=True)
        _arrow(ax, (x0 + 5.3, -0.5), (x0 + 5.3, -1.35), "heatmaps", text_offset=(0.1, 0),
               ha="left", va="center")
        if i + 1 == stacks:
            break
        add = x0 + 8.45
        _box(ax, x0 + 7.2, 0, f"conv 1{TIMES}1", feat, kind="conv", w=1.4, h=0.8)
        _arrow(ax, (x0 + 6.1, 0), (x0 + 6.5, 0))
        _box(ax, x0 + 7.2, 1.3, f"conv 1{TIMES}1", feat, kind="conv", w=1.4, h=0.8)
        _path(ax, [(x0 + 3.4, 0.4), (x0 + 3.4, 1.3), (x0 + 6.5, 1.3)])
        _arrow(ax, (x0 + 7.9, 1.3), (add - 0.15, 0.15))
        _arrow(ax, (x0 + 7.9, 0), (add - 0.2, 0))
        _path(ax, [(x0 + 0.1, 0), (x0 + 0.1, 2.25), (add, 2.25), (add, 0.2)], color="0.45")
        _label(ax, (x0 + add) / 2, 2.45, f"identity: the stack's input {_shape(feat)}", color="0.3")
        _add(ax, add, 0)
    return fig
