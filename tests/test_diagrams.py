"""d2lcnn.diagrams: every figure has a title, renders, and says what the models really do.

The shapes a diagram shows are checked against a forward pass run here with forward hooks
(on the ``meta`` device: shapes without weights), independent of :mod:`d2lcnn.summary`; the
conv window's cells against ``torch.nn.functional.conv2d``.
"""

import io
import subprocess
import sys

import matplotlib
import matplotlib.pyplot as plt
import pytest
import torch
import torch.nn.functional as F
from matplotlib.text import Text
from torch import nn

from d2lcnn import diagrams
from d2lcnn.torch import models

X = "\u00d7"


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def texts(fig) -> list[str]:
    """Every string drawn in the figure, in drawing order."""
    return [t.get_text() for t in fig.findobj(Text) if t.get_text()]


def parts(ax, gid: str) -> list:
    return [p for p in ax.patches if p.get_gid() == gid]


def shape_text(shape) -> str:
    return X.join(str(s) for s in shape[1:])  # without the batch dimension


def hooked_shapes(model, x, types) -> list[str]:
    """Output shapes of the modules of ``types``, in call order, from a real forward pass."""
    shapes = []
    handles = [m.register_forward_hook(lambda m, i, o: shapes.append(shape_text(o.shape)))
               for m in model.modules() if isinstance(m, types)]
    with torch.no_grad():
        model(x)
    for h in handles:
        h.remove()
    return shapes


def on_meta(factory):
    with torch.device("meta"):
        return factory().eval()


def is_subsequence(items, sequence) -> bool:
    it = iter(sequence)
    return all(any(item == s for s in it) for item in items)


DIAGRAMS = {
    "conv_window": lambda: diagrams.conv_window(),
    "conv_window_padded": lambda: diagrams.conv_window(7, 3, stride=2, padding=1, dilation=2),
    "lenet5": diagrams.lenet5,
    "alexnet": diagrams.alexnet,
    "inception_module": diagrams.inception_module,
    "residual_blocks": diagrams.residual_blocks,
    "unet": diagrams.unet,
    "hourglass": diagrams.hourglass,
}


@pytest.mark.parametrize("name", DIAGRAMS)
def test_every_diagram_has_a_title_is_book_sized_and_renders_to_png(name):
    fig = DIAGRAMS[name]()
    assert isinstance(fig, matplotlib.figure.Figure)
    assert fig._suptitle is not None and len(fig._suptitle.get_text()) > 10
    width, height = fig.get_size_inches()
    assert 9 <= width <= 12.5 and 1 < height < 12, (width, height)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=60)
    assert buf.getvalue().startswith(b"\x89PNG")
    ax = fig.axes[0]
    assert parts(ax, "box") or parts(ax, "output-cell"), "nothing drawn"


def test_diagrams_are_deterministic_and_leave_rcparams_alone():
    before = dict(matplotlib.rcParams)
    images = []
    for _ in range(2):
        buf = io.BytesIO()
        diagrams.conv_window(5, 3, padding=1).savefig(buf, format="png", dpi=50)
        images.append(buf.getvalue())
    assert images[0] == images[1]
    assert dict(matplotlib.rcParams) == before


def test_importing_diagrams_imports_neither_torch_nor_matplotlib():
    code = (
        "import sys, d2lcnn, d2lcnn.diagrams\n"
        "assert 'torch' not in sys.modules, 'd2lcnn.diagrams imported torch'\n"
        "assert 'matplotlib' not in sys.modules, 'd2lcnn.diagrams imported matplotlib'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# ---------------------------------------------------------------------------- conv window

GEOMETRIES = [  # input_size, kernel_size, stride, padding, dilation
    (5, 3, 1, 0, 1),
    (5, 3, 2, 1, 1),
    (7, 3, 1, 1, 2),
    ((5, 6), (3, 2), (2, 1), (1, 0), 1),
]


@pytest.mark.parametrize("geometry", GEOMETRIES, ids=str)
def test_conv_window_draws_the_cells_conv2d_produces(geometry):
    size, kernel, stride, padding, dilation = geometry
    pair = [g if isinstance(g, tuple) else (g, g) for g in geometry]
    (h, w), (kh, kw), (sh, sw), (ph, pw), (dh, dw) = pair
    out = F.conv2d(torch.zeros(1, 1, h, w), torch.zeros(1, 1, kh, kw), stride=stride,
                   padding=padding, dilation=dilation).shape[-2:]
    fig = diagrams.conv_window(size, kernel, stride, padding, dilation, steps=3)
    assert len(fig.axes) == min(3, out[0] * out[1])
    for step, ax in enumerate(fig.axes):
        assert len(parts(ax, "output-cell")) == out[0] * out[1]
        assert len(parts(ax, "input-cell")) == h * w
        assert len(parts(ax, "padding-cell")) == (h + 2 * ph) * (w + 2 * pw) - h * w
        # the taps sit where the loops of conv2d read, dilation gaps included
        i, j = divmod(step, out[1])
        taps = {(round(-p.get_y() - 1), round(p.get_x())) for p in parts(ax, "kernel-tap")}
        assert taps == {(i * sh + a * dh, j * sw + b * dw) for a in range(kh) for b in range(kw)}
        # every tap lies on the padded grid, and this step's output cell is highlighted
        assert all(0 <= r < h + 2 * ph and 0 <= c < w + 2 * pw for r, c in taps)
        colours = [p.get_facecolor() for p in parts(ax, "output-cell")]
        assert colours[step] == parts(ax, "kernel-tap")[0].get_facecolor()
        assert f"output {out[0]}{X}{out[1]}" in texts(fig)


def test_conv_window_steps_none_shows_every_position():
    fig = diagrams.conv_window(4, 2, steps=None)
    assert len(fig.axes) == 9
    assert [ax.get_title() for ax in fig.axes][-1] == "step 9: output[2, 2]"


@pytest.mark.parametrize("kwargs, message", [
    (dict(input_size=3, kernel_size=5), r"conv_window: the kernel does not fit"),
    (dict(input_size=5, kernel_size=3, dilation=3), r"dilation\*\(kernel_size-1\)\+1"),
    (dict(input_size=5, kernel_size=3, stride=0), "conv_window: stride must be >= 1"),
    (dict(input_size=5, kernel_size=3, padding=-1), "conv_window: padding must be >= 0"),
    (dict(steps=0), "steps"),
])
def test_conv_window_rejects_geometry_that_does_not_fit(kwargs, message):
    with pytest.raises(ValueError, match=message):
        diagrams.conv_window(**kwargs)


def test_conv_window_animation_has_one_frame_per_output_position():
    anim = diagrams.conv_window_animation(3, 2)
    assert list(anim.new_frame_seq()) == [0, 1, 2, 3]
    html = anim.to_jshtml()
    assert html.count("data:image/png;base64") == 4
    with pytest.raises(ValueError, match="conv_window_animation"):
        diagrams.conv_window_animation(3, 4)


# ---------------------------------------------------------------------------- pipelines

def test_lenet5_shows_the_shapes_the_model_produces():
    expected = hooked_shapes(on_meta(models.LeNet5), torch.zeros(1, 1, 32, 32, device="meta"),
                             (nn.Conv2d, nn.AvgPool2d, nn.Linear))
    assert expected == [f"6{X}28{X}28", f"6{X}14{X}14", f"16{X}10{X}10", f"16{X}5{X}5",
                        f"120{X}1{X}1", "84", "10"]
    fig = diagrams.lenet5()
    assert is_subsequence([f"1{X}32{X}32", *expected], texts(fig))
    assert {"C1", "S2", "C3", "S4", "C5", "F6"} <= set(texts(fig))
    ax = fig.axes[0]
    assert len(parts(ax, "box")) == 8 and len(parts(ax, "arrow")) == 7


def test_alexnet_shows_the_shapes_the_model_produces_on_two_rows():
    expected = hooked_shapes(on_meta(models.AlexNet), torch.zeros(1, 3, 227, 227, device="meta"),
                             (nn.Conv2d, nn.MaxPool2d, nn.Linear))
    assert expected[0] == f"96{X}55{X}55" and expected[-1] == "1000"
    fig = diagrams.alexnet()
    assert is_subsequence(expected, texts(fig))
    ys = {round(p.get_y(), 3) for p in parts(fig.axes[0], "box")}
    assert len(ys) == 2  # two rows of boxes


def test_pipeline_wraps_rows_and_checks_its_arguments():
    layers = [(f"layer {i}", (i, 4, 4), "conv") for i in range(10)]
    ax = diagrams.pipeline(layers, "ten layers", per_row=4).axes[0]
    assert len(parts(ax, "box")) == 10 and len(parts(ax, "arrow")) == 9
    assert len({round(p.get_y(), 3) for p in parts(ax, "box")}) == 3
    with pytest.raises(ValueError, match="at least one layer"):
        diagrams.pipeline([], "empty")
    with pytest.raises(ValueError, match="kind must be one of"):
        diagrams.pipeline([("x", (1,), "bogus")], "bad kind")
    with pytest.raises(ValueError, match="names must have one entry per kept layer"):
        diagrams.layers_from_model(models.LeNet5(), (1, 32, 32), names=["C1"])


# ---------------------------------------------------------------------------- blocks

def test_inception_module_shows_googlenets_3a_channels():
    spec = models.INCEPTION_V1[0]
    block = on_meta(lambda: models.Inception(192, spec))
    x = torch.zeros(1, 192, 28, 28, device="meta")
    branch_shapes = hooked_shapes(block, x, (nn.Conv2d, nn.MaxPool2d))
    fig = diagrams.inception_module()
    found = texts(fig)
    assert set(branch_shapes) <= set(found)
    assert f"{spec.n3x3red}{X}28{X}28" in found and f"{spec.n5x5red}{X}28{X}28" in found
    assert f"192{X}28{X}28" in found  # the input, as GoogLeNet's stem produces it
    assert shape_text(block(x).shape) == f"256{X}28{X}28" in found
    assert "filter concatenation" in found
    assert sum("(reduce)" in t for t in found) == 2 and sum("(pool proj)" in t for t in found) == 1
    assert len(branch_shapes) == 7 and len(parts(fig.axes[0], "box")) == 1 + 7 + 1
    with pytest.raises(ValueError, match="name must be one of"):
        diagrams.inception_module("9z")


def _column_of(patch):
    return round((patch.get_x() + patch.get_width() / 2) / 4)  # columns are 4 units apart


def test_residual_blocks_put_the_addition_where_the_models_do():
    fig = diagrams.residual_blocks()
    ax, found = fig.axes[0], texts(fig)
    adds = parts(ax, "add")
    assert len(adds) == 3 and found.count("identity x") == 3
    below = []
    for add in sorted(adds, key=lambda c: c.center[0]):
        col = round(add.center[0] / 4)
        below.append(sum(1 for b in parts(ax, "box")
                         if _column_of(b) == col and b.get_y() + b.get_height() < add.center[1]))
    assert below == [2, 2, 1]  # ReLU and output after the sum; pre-activation: output only
    assert found.count("BN") == 2 + 3 + 2 and found.count("ReLU") == 2 + 3 + 2
    assert f"conv 1{X}1, 256" in found and f"256{X}56{X}56" in found


def test_unet_shows_the_papers_shapes_and_crops():
    net = on_meta(lambda: models.UNet(1, 2, depth=4, base_width=64, padding=False))
    x = torch.zeros(1, 1, 572, 572, device="meta")
    shapes = {}
    for name in ("down", "up"):
        for i, m in enumerate(getattr(net, name)):
            m.register_forward_hook(lambda m, a, o, k=(name, i): shapes.__setitem__(k, o.shape))
    net.head.register_forward_hook(lambda m, a, o: shapes.__setitem__("head", o.shape))
    with torch.no_grad():
        net(x)
    found = texts(diagrams.unet())
    assert shape_text(shapes["head"]) == f"2{X}388{X}388" in found
    for i in range(4):
        e, u = shapes["down", i], shapes["up", 3 - i]
        assert shape_text(e) in found
        assert f"copy and crop {e[-1]}\u2192{u[-1]}" in found
    padded = texts(diagrams.unet(depth=2, base_width=8, input_size=32, padding=True))
    assert padded.count("copy") == 2 and f"2{X}32{X}32" in padded
    with pytest.raises(ValueError, match="unet: input size 100 is too small"):
        diagrams.unet(input_size=100)


@pytest.mark.parametrize("stacks", [1, 2, 3])
def test_hourglass_has_a_head_and_a_loss_per_stack(stacks):
    net = on_meta(lambda: models.StackedHourglass(n_stacks=stacks))
    with torch.no_grad():
        preds = net(torch.zeros(1, 3, 256, 256, device="meta"))
    fig = diagrams.hourglass(stacks)
    found = texts(fig)
    assert shape_text(preds[-1].shape) == f"16{X}64{X}64" in found
    assert [t for t in found if t.startswith("loss ")] == [f"loss {i + 1}" for i in range(stacks)]
    assert sum(t.startswith("hourglass ") for t in found) == stacks
    assert len(parts(fig.axes[0], "add")) == stacks - 1


def test_hourglass_rejects_too_many_stacks():
    with pytest.raises(ValueError, match="stacks must be <= 4"):
        diagrams.hourglass(5)
