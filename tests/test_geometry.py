"""Output-size arithmetic agrees with torch, and bad geometry fails with the numbers."""

import pytest
import torch
import torch.nn.functional as F
from hypothesis import assume, given
from hypothesis import strategies as st

from d2lcnn.geometry import (
    conv2d_output_shape,
    conv_transpose2d_output_shape,
    pair,
    pool2d_output_shape,
    receptive_field,
)


# The lecture notes' worked examples.
@pytest.mark.parametrize(
    ("size", "kernel", "kwargs", "expected"),
    [
        (32, 5, {}, (28, 28)),  # 32x32x3 with a 5x5x3 filter
        (28, 5, {}, (24, 24)),  # 32 -> 28 -> 24
        (7, 3, {"stride": 1}, (5, 5)),
        (7, 3, {"stride": 2}, (3, 3)),
        (7, 3, {"padding": 1}, (7, 7)),
        (32, 5, {"padding": 2}, (32, 32)),  # ten 5x5 filters, pad 2
        (227, 11, {"stride": 4}, (55, 55)),  # AlexNet conv1
        (224, 7, {"stride": 2, "padding": 3}, (112, 112)),  # ResNet stem
        ((10, 7), (3, 5), {"stride": (2, 1), "padding": (4, 2), "dilation": (3, 1)}, (6, 7)),
    ],
)
def test_conv_examples(size, kernel, kwargs, expected):
    assert conv2d_output_shape(size, kernel, **kwargs) == expected


@pytest.mark.parametrize("f", [3, 5, 7])
def test_same_padding_preserves_size(f):
    assert conv2d_output_shape(32, f, padding=(f - 1) // 2) == (32, 32)


def test_stride_that_does_not_fit_floors_like_torch_or_raises_when_strict():
    # (7 - 3) / 3 + 1 = 2.33: torch floors to 2 and ignores the last row and column.
    assert conv2d_output_shape(7, 3, stride=3) == (2, 2)
    out = F.conv2d(torch.zeros(1, 1, 7, 7), torch.zeros(1, 1, 3, 3), stride=3)
    assert tuple(out.shape[-2:]) == (2, 2)
    arithmetic = r"stride 3 does not fit along H.*\(7 \+ 2\*0 - 1\*\(3-1\) - 1\)"
    with pytest.raises(ValueError, match=arithmetic):
        conv2d_output_shape(7, 3, stride=3, strict=True)
    assert conv2d_output_shape(7, 3, stride=2, strict=True) == (3, 3)


def test_kernel_larger_than_input_names_the_numbers():
    with pytest.raises(ValueError, match=r"kernel does not fit.*along W.*5 \+ 2\*0 = 5.*spans.*7"):
        conv2d_output_shape((9, 5), 7)


@pytest.mark.parametrize(
    ("kwargs", "message", "error"),
    [
        ({"stride": 0}, "stride must be >= 1", ValueError),
        ({"padding": -1}, "padding must be >= 0", ValueError),
        ({"dilation": 0}, "dilation must be >= 1", ValueError),
        ({"stride": 1.5}, "stride must be an int or a pair of ints", TypeError),
        ({"padding": (1, 2, 3)}, "padding must be an int or a pair", TypeError),
        ({"padding": "same"}, "padding must be an int or a pair", TypeError),
        ({"stride": True}, "stride must be an int or a pair of ints, got bool", TypeError),
    ],
)
def test_bad_arguments(kwargs, message, error):
    with pytest.raises(error, match=message):
        conv2d_output_shape(8, 3, **kwargs)


def test_pair():
    assert pair(3, "k") == (3, 3)
    assert pair((2, 5), "k") == (2, 5)
    assert pair([2, 5], "k") == (2, 5)
    with pytest.raises(ValueError, match="k must be >= 1"):
        pair((2, 0), "k", minimum=1)


@given(
    size=st.integers(1, 40),
    k=st.integers(1, 7),
    s=st.integers(1, 4),
    p=st.integers(0, 4),
    d=st.integers(1, 3),
)
def test_conv_formula_matches_torch(size, k, s, p, d):
    assume(size + 2 * p >= d * (k - 1) + 1)
    out = F.conv2d(torch.zeros(1, 1, size, size + 1), torch.zeros(1, 1, k, k), stride=s,
                   padding=p, dilation=d)
    assert conv2d_output_shape((size, size + 1), k, stride=s, padding=p, dilation=d) == tuple(
        out.shape[-2:]
    )


@given(
    size=st.integers(1, 40),
    k=st.integers(1, 6),
    s=st.integers(1, 4),
    p=st.integers(0, 3),
    d=st.integers(1, 3),
    ceil=st.booleans(),
)
def test_pool_formula_matches_torch(size, k, s, p, d, ceil):
    assume(2 * p <= k)
    try:
        out = F.max_pool2d(torch.zeros(1, 1, size, size), k, stride=s, padding=p, dilation=d,
                           ceil_mode=ceil)
    except RuntimeError:  # torch: "Output size is too small"
        with pytest.raises(ValueError, match="kernel does not fit"):
            pool2d_output_shape(size, k, stride=s, padding=p, dilation=d, ceil_mode=ceil)
        return
    got = pool2d_output_shape(size, k, stride=s, padding=p, dilation=d, ceil_mode=ceil)
    assert got == tuple(out.shape[-2:])


def test_ceil_mode_rounds_a_too_large_kernel_up_to_one_output_like_torch():
    # (2 + 0 - 3) / 2 = -0.5 rounds up to 0, so one window: torch accepts it.
    assert pool2d_output_shape(2, 3, stride=2, ceil_mode=True) == (1, 1)
    with pytest.raises(ValueError, match="kernel does not fit.*= 0 < 1"):
        pool2d_output_shape(2, 3, stride=2)


def test_pool_examples_and_errors():
    assert pool2d_output_shape(224, 2) == (112, 112)  # stride defaults to kernel_size
    assert pool2d_output_shape(55, 3, stride=2) == (27, 27)  # AlexNet pool1
    assert pool2d_output_shape(13, 3, stride=2) == (6, 6)  # AlexNet pool3
    with pytest.raises(ValueError, match="padding should be at most half of kernel_size"):
        pool2d_output_shape(8, 2, padding=2)


@given(
    size=st.integers(1, 12),
    k=st.integers(1, 5),
    s=st.integers(1, 4),
    p=st.integers(0, 3),
    d=st.integers(1, 3),
)
def test_transposed_conv_formula_matches_torch(size, k, s, p, d):
    op = 0 if max(s, d) == 1 else 1
    try:
        expected = tuple(
            F.conv_transpose2d(torch.zeros(1, 1, size, size), torch.zeros(1, 1, k, k),
                               stride=s, padding=p, output_padding=op, dilation=d).shape[-2:]
        )
    except RuntimeError:
        expected = (0, 0)
    if min(expected) < 1:  # torch errors or returns an empty tensor; we always raise
        with pytest.raises(ValueError, match="conv_transpose2d"):
            conv_transpose2d_output_shape(size, k, stride=s, padding=p, output_padding=op,
                                          dilation=d)
        return
    got = conv_transpose2d_output_shape(size, k, stride=s, padding=p, output_padding=op,
                                        dilation=d)
    assert got == expected


def test_transposed_output_padding_must_be_small():
    with pytest.raises(ValueError, match="output_padding along H must be smaller"):
        conv_transpose2d_output_shape(4, 3, stride=2, output_padding=2)


def test_receptive_field():
    assert receptive_field([3]) == 3
    assert receptive_field([3, 3, 3]) == 7
    # Dilations 1, 2, 4 (the dilated-convolution paper's figure): 3, 7, 15.
    assert [receptive_field([(3, 1, d) for d in (1, 2, 4)[:n]]) for n in (1, 2, 3)] == [3, 7, 15]
    # Pooling (2x2, stride 2) doubles the jump: conv3, pool2, conv3 sees 3 + 1 + 2*2 = 8.
    assert receptive_field([3, (2, 2), 3]) == 8
    assert receptive_field([{"kernel_size": 5, "stride": 2}, 3]) == 9
    with pytest.raises(ValueError, match=r"layers\[1\]: stride must be an int >= 1, got 0"):
        receptive_field([3, (3, 0)])


def test_receptive_field_matches_a_gradient_footprint():
    """Backpropagate one output pixel through real convs and measure what it touches."""
    layers = [(3, 1, 1), (3, 2, 1), (3, 1, 2), (5, 1, 1)]
    x = torch.ones(1, 1, 64, 64, dtype=torch.float64, requires_grad=True)
    h = x
    for k, s, d in layers:
        h = F.conv2d(h, torch.ones(1, 1, k, k, dtype=torch.float64), stride=s, dilation=d)
    h[0, 0, h.shape[2] // 2, h.shape[3] // 2].backward()
    rows = torch.nonzero(x.grad[0, 0].abs().sum(1)).flatten()
    assert rows.max() - rows.min() + 1 == receptive_field(layers)


def test_receptive_field_reads_dict_layers_like_tuples():
    layers = [(3, 1, 1), (3, 2, 2), (2, 1, 3)]
    as_dicts = [dict(kernel_size=k, stride=s, dilation=d) for k, s, d in layers]
    # 1 + (3-1)*1 + (3-1)*2*1 + (2-1)*3*2 = 1 + 2 + 4 + 6
    assert receptive_field(layers) == receptive_field(as_dicts) == 13
    assert receptive_field([{"kernel_size": 3, "dilation": 4}]) == 9


@pytest.mark.parametrize("size, axis", [((2, 4), "H"), ((4, 2), "W")])
def test_pool_that_does_not_fit_names_the_axis_and_its_formula(size, axis):
    with pytest.raises(ValueError) as info:
        pool2d_output_shape(size, kernel_size=3)
    message = str(info.value)
    assert message.startswith(f"pool2d: the kernel does not fit in the input along {axis}:")
    assert f"{axis}_out = floor(({axis}_in + 2*padding" in message
