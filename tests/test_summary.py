"""d2lcnn.summary: per-layer shapes, parameters, activation bytes and multiply-adds."""

import pytest
import torch
from torch import nn

from d2lcnn.summary import LayerRow, Summary, count_macs, summary


def small_net() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),  # (N, 8, 10, 10)
        nn.ReLU(),
        nn.Conv2d(8, 8, 3, stride=2, groups=4),  # (N, 8, 4, 4)
        nn.Flatten(),
        nn.Linear(128, 5),
    )


def test_rows_follow_the_formulas():
    table = summary(small_net(), (2, 3, 10, 10))
    assert isinstance(table, Summary) and all(isinstance(r, LayerRow) for r in table)
    assert [r.name for r in table] == ["0", "1", "2", "3", "4"]
    assert [r.type for r in table] == ["Conv2d", "ReLU", "Conv2d", "Flatten", "Linear"]
    assert [r.output_shape for r in table] == [
        (2, 8, 10, 10), (2, 8, 10, 10), (2, 8, 4, 4), (2, 128), (2, 5)
    ]
    assert [r.params for r in table] == [3 * 8 * 9 + 8, 0, 8 * 2 * 9 + 8, 0, 128 * 5 + 5]
    # conv: N * C_out * H_out * W_out * (C_in / groups) * kH * kW; linear: rows * in * out
    assert [r.macs for r in table] == [
        2 * 8 * 10 * 10 * 3 * 9, 0, 2 * 8 * 4 * 4 * 2 * 9, 0, 2 * 128 * 5
    ]
    assert [r.activation_bytes for r in table] == [4 * r.output_numel for r in table]
    # Totals by hand and from torch, not re-derived from the rows above.
    assert table.total_params == 224 + 152 + 645 == sum(p.numel() for p in small_net().parameters())
    assert table.total_macs == 43_200 + 4_608 + 1_280
    assert table.total_activation_bytes == 4 * 2 * (800 + 800 + 128 + 128 + 5)
    assert table.input_bytes == 2 * 3 * 10 * 10 * 4


def test_totals_of_a_nested_model_count_each_parameter_once():
    net = nn.Sequential(nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU()), nn.Flatten(),
                        nn.Sequential(nn.Linear(4 * 8 * 8, 2)))
    table = summary(net, (1, 3, 10, 10))
    assert table.total_params == sum(p.numel() for p in net.parameters()) == 112 + 514
    assert table.total_macs == 4 * 8 * 8 * 3 * 9 + 256 * 2


def test_dtype_sets_bytes_per_element():
    t32 = summary(small_net(), (1, 3, 10, 10))
    t64 = summary(small_net(), (1, 3, 10, 10), dtype=torch.float64)
    t16 = summary(small_net(), (1, 3, 10, 10), dtype=torch.float16)
    assert t64.total_activation_bytes == 2 * t32.total_activation_bytes
    assert t16.total_activation_bytes * 2 == t32.total_activation_bytes
    assert t64.param_bytes == 8 * t64.total_params


def test_transposed_conv_macs():
    m = nn.ConvTranspose2d(4, 6, 2, stride=2)
    x = torch.zeros(1, 4, 5, 5)
    assert count_macs(m, (x,), m(x)) == 4 * 5 * 5 * 6 * 2 * 2
    (row,) = summary(m, (1, 4, 5, 5))
    assert row.output_shape == (1, 6, 10, 10) and row.macs == 4 * 5 * 5 * 6 * 4


def test_meta_and_cpu_agree_and_the_model_is_untouched():
    net = small_net().train()
    before = [p.detach().clone() for p in net.parameters()]
    meta = summary(net, (2, 3, 10, 10))
    cpu = summary(net, (2, 3, 10, 10), device="cpu")
    assert list(meta) == list(cpu)
    assert net.training and all(m.training for m in net.modules())
    assert all(p.device.type == "cpu" for p in net.parameters())
    assert all(torch.equal(a, b) for a, b in zip(before, net.parameters(), strict=True))
    assert not any(m._forward_hooks for m in net.modules())


def test_shared_module_counted_once_but_listed_per_call():
    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(2, 2, 1)

        def forward(self, x):
            return self.conv(self.conv(x))

    table = summary(Twice(), (1, 2, 3, 3))
    assert [r.name for r in table] == ["conv", "conv#2"]
    assert table.total_params == 6
    assert table.total_macs == 2 * (2 * 3 * 3 * 2)


def test_leaf_model_and_tuple_outputs():
    (row,) = summary(nn.Linear(4, 3), (5, 4))
    assert row.name == "Linear" and row.macs == 5 * 4 * 3

    class Split(nn.Module):
        def forward(self, x):
            return x.chunk(2, dim=1)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.split = Split()

        def forward(self, x):
            return self.split(x)

    (row,) = summary(Net(), (1, 4, 2, 2))
    assert row.output_shape == (1, 2, 2, 2)  # the first tensor
    assert row.activation_bytes == 4 * 16  # all returned tensors


def test_printing():
    table = summary(small_net(), (1, 3, 10, 10))
    text = str(table)
    assert "Conv2d" in text and "Total" in text and f"{table.total_params:,}" in text
    html = table._repr_html_()
    assert html.startswith("<table>") and html.count("<tr>") == len(table) + 2
    assert "Summary(5 rows" in repr(table)


def test_bad_arguments():
    with pytest.raises(ValueError, match="input_shape"):
        summary(small_net(), (1, 0, 10, 10))
    with pytest.raises(TypeError, match="dtype"):
        summary(small_net(), (1, 3, 10, 10), dtype=torch.int64)


def test_a_three_tuple_is_one_image():
    # torchsummary's habit: summary(model, (C, H, W)) means a batch of one (C, H, W) image
    one = summary(small_net(), (3, 10, 10))
    assert one.input_shape == (1, 3, 10, 10)
    assert list(one) == list(summary(small_net(), (1, 3, 10, 10)))
    assert one[0].output_shape == (1, 8, 10, 10)
    # a 4-tuple is the full shape, batch included, and is used as given
    two = summary(small_net(), (2, 3, 10, 10))
    assert two.input_shape == (2, 3, 10, 10) and two.total_macs == 2 * one.total_macs


def test_a_model_with_3d_input_is_told_how_the_shape_was_read():
    with pytest.raises(RuntimeError) as info:
        summary(nn.Conv1d(2, 3, 3), (5, 2, 7))
    assert any("(5, 2, 7) as one (C, H, W) image, (1, 5, 2, 7)" in n
               for n in info.value.__notes__)


def test_macs_of_an_unbatched_conv_count_one_image():
    conv, up = nn.Conv2d(3, 4, 3), nn.ConvTranspose2d(4, 2, 2, stride=2)
    x = torch.zeros(3, 6, 6)  # torch takes an unbatched (C, H, W) input
    assert count_macs(conv, (x,), conv(x)) == count_macs(conv, (x[None],), conv(x[None]))
    y = conv(x)
    assert count_macs(up, (y,), up(y)) == 4 * 4 * 4 * 2 * 2 * 2
