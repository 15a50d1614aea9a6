"""d2lcnn.torch.models: the case-study numbers of the lecture seeds, and output shapes.

Big models are built on the ``meta`` device (shapes, no storage), so their parameter counts
and multiply-adds cost nothing; forward passes on real data use reduced widths and small
inputs.
"""

import importlib.util

import pytest
import torch
from torch import nn

from d2lcnn.summary import summary
from d2lcnn.torch import models as M

HAS_TORCHVISION = importlib.util.find_spec("torchvision") is not None
needs_torchvision = pytest.mark.skipif(
    not HAS_TORCHVISION, reason="torchvision is not installed (optional cross-check)"
)


def on_meta(factory, *args, **kwargs) -> nn.Module:
    with torch.device("meta"):
        return factory(*args, **kwargs)


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def rows_of(table, types):
    return [r for r in table if r.type in types]


# ---------------------------------------------------------------------------- LeNet-5


@pytest.mark.parametrize("activation", [nn.Tanh, nn.ReLU, nn.Sigmoid])
@pytest.mark.parametrize("pool", ["avg", "max"])
def test_lenet5_layers_and_output(activation, pool):
    net = M.LeNet5(10, activation=activation, pool=pool)
    table = summary(net, (1, 1, 32, 32))
    convs_pools = rows_of(table, {"Conv2d", "AvgPool2d", "MaxPool2d"})
    assert [r.output_shape[1:] for r in convs_pools] == [
        (6, 28, 28), (6, 14, 14), (16, 10, 10), (16, 5, 5), (120, 1, 1)
    ]
    assert sum(isinstance(m, activation) for m in net.modules()) == 4
    # 156 + 2,416 + 48,120 + 10,164 + 850
    assert n_params(net) == 61_706
    assert net(torch.randn(2, 1, 32, 32)).shape == (2, 10)
    with pytest.raises(ValueError, match="pool"):
        M.LeNet5(pool="min")


# ---------------------------------------------------------------------------- AlexNet


def test_alexnet_matches_the_slide_table():
    table = summary(on_meta(M.AlexNet), (1, 3, 227, 227))
    conv1 = table[0]
    assert conv1.type == "Conv2d" and conv1.output_shape == (1, 96, 55, 55)
    assert conv1.params == 34_848 + 96  # 96 filters of 11x11x3 weights, plus biases
    shapes = [(r.type, r.output_shape[1:]) for r in rows_of(
        table, {"Conv2d", "MaxPool2d", "LocalResponseNorm", "Linear"})]
    assert shapes == [
        ("Conv2d", (96, 55, 55)),
        ("MaxPool2d", (96, 27, 27)),  # POOL1 3x3 s2, no parameters
        ("LocalResponseNorm", (96, 27, 27)),  # NORM1
        ("Conv2d", (256, 27, 27)),  # CONV2 5x5 p2
        ("MaxPool2d", (256, 13, 13)),
        ("LocalResponseNorm", (256, 13, 13)),
        ("Conv2d", (384, 13, 13)),
        ("Conv2d", (384, 13, 13)),
        ("Conv2d", (256, 13, 13)),
        ("MaxPool2d", (256, 6, 6)),  # 6x6x256 = 9216 before FC6
        ("Linear", (4096,)),
        ("Linear", (4096,)),
        ("Linear", (1000,)),
    ]
    assert all(r.params == 0 for r in table if r.type in ("MaxPool2d", "LocalResponseNorm"))
    fc6 = rows_of(table, {"Linear"})[0]
    assert fc6.params == 9216 * 4096 + 4096
    assert table.total_params == 62_378_344


def test_alexnet_two_towers_is_the_papers_60_million():
    one, two = on_meta(M.AlexNet), on_meta(M.AlexNet, one_tower=False)
    assert n_params(two) == 60_965_224
    assert n_params(one) - n_params(two) == (256 * 96 * 25 + 384 * 384 * 9 + 256 * 384 * 9) // 2
    convs = [m for m in two.modules() if isinstance(m, nn.Conv2d)]
    assert [c.groups for c in convs] == [1, 2, 1, 2, 2]
    t1, t2 = summary(one, (1, 3, 227, 227)), summary(two, (1, 3, 227, 227))
    assert [r.output_shape for r in t1] == [r.output_shape for r in t2]


def test_alexnet_components():
    net = on_meta(M.AlexNet)
    assert sum(isinstance(m, nn.Dropout) and m.p == 0.5 for m in net.modules()) == 2
    lrn = [m for m in net.modules() if isinstance(m, nn.LocalResponseNorm)]
    assert len(lrn) == 2 and lrn[0].size == 5 and lrn[0].alpha / lrn[0].size == 1e-4
    no_lrn = on_meta(M.AlexNet, lrn=False)
    assert not any(isinstance(m, nn.LocalResponseNorm) for m in no_lrn.modules())


def test_alexnet_and_zfnet_reduced_forward():
    net = M.AlexNet(7, width_mult=1 / 16, fc_width=32)
    assert net(torch.randn(2, 3, 227, 227)).shape == (2, 7)
    net = M.ZFNet(7, width_mult=1 / 16, fc_width=32, pool_size=2)
    assert net(torch.randn(2, 3, 64, 64)).shape == (2, 7)


def test_zfnet_changes_conv1_and_conv345():
    net = on_meta(M.ZFNet)
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    assert convs[0].kernel_size == (7, 7) and convs[0].stride == (2, 2)
    assert [c.out_channels for c in convs] == [96, 256, 512, 1024, 512]
    table = summary(net, (1, 3, 224, 224))
    assert [r.output_shape[1:] for r in rows_of(table, {"Conv2d"})] == [
        (96, 110, 110), (256, 26, 26), (512, 13, 13), (1024, 13, 13), (512, 13, 13)
    ]
    assert rows_of(table, {"MaxPool2d"})[-1].output_shape == (1, 512, 6, 6)


# ---------------------------------------------------------------------------- VGG


@pytest.mark.parametrize(
    "config, exact, millions",
    [
        ("A", 132_863_336, 133),
        ("A-LRN", 132_863_336, 133),
        ("B", 133_047_848, 133),
        ("C", 133_638_952, 134),
        ("D", 138_357_544, 138),
        ("E", 143_667_240, 144),
    ],
)
def test_vgg_configuration_parameter_counts(config, exact, millions):
    count = n_params(on_meta(M.VGG, config))
    assert count == exact
    assert round(count / 1e6) == millions  # the paper's Table 2


def test_vgg_named_depths():
    for factory, depth in [(M.vgg11, 11), (M.vgg13, 13), (M.vgg16, 16), (M.vgg19, 19)]:
        net = on_meta(factory)
        assert sum(isinstance(m, (nn.Conv2d, nn.Linear)) for m in net.modules()) == depth
    c = on_meta(M.VGG, "C")
    assert sum(isinstance(m, nn.Conv2d) and m.kernel_size == (1, 1) for m in c.modules()) == 3
    with pytest.raises(ValueError, match="config"):
        M.VGG("F")


def test_vgg16_memory_and_params_table():
    table = summary(on_meta(M.vgg16), (1, 3, 224, 224))
    assert table.total_params == 138_357_544
    # the slide's rows: conv / pool / FC outputs, and weights "not counting biases"
    rows = rows_of(table, {"Conv2d", "MaxPool2d", "Linear"})
    spec = ([(64, 224)] * 2 + [(64, 112)] + [(128, 112)] * 2 + [(128, 56)] + [(256, 56)] * 3
            + [(256, 28)] + [(512, 28)] * 3 + [(512, 14)] * 4 + [(512, 7)])
    assert [r.output_numel for r in rows[:-3]] == [c * s * s for c, s in spec]
    assert [r.output_numel for r in rows[-3:]] == [4096, 4096, 1000]
    weights = [r.params - r.output_shape[1] for r in rows if r.params]
    assert weights == [
        1_728, 36_864, 73_728, 147_456, 294_912, 589_824, 589_824, 1_179_648, 2_359_296,
        2_359_296, 2_359_296, 2_359_296, 2_359_296, 102_760_448, 16_777_216, 4_096_000,
    ]
    # Memory. The slide's rows (input + every conv, pool and FC output) add up to exactly
    # 15,237,608 values = 60,950,432 bytes in float32 (58.1 MiB), not the "24M * 4 bytes
    # ~= 93MB" of its TOTAL line: that total does not follow from its own rows.
    values = table.input_bytes // 4 + sum(r.output_numel for r in rows)
    assert values == 15_237_608
    # Every leaf output (also ReLU, dropout and flatten, none done in place) is 28,701,160
    # values = 114,804,640 bytes, also not 24M; "~x2 for backward" is the slide's estimate.
    assert table.total_activation_bytes == 114_804_640
    # most memory in the early convs, most parameters in the first FC
    assert max(rows, key=lambda r: r.output_numel) is rows[0]
    assert max(table, key=lambda r: r.params) is rows[-3]


def test_vgg_reduced_forward():
    for cfg in M.VGG_CONFIGS:
        net = M.VGG(cfg, 10, width_mult=1 / 16, fc_width=32, pool_size=1)
        assert net(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    net = M.VGG("A", 4, in_channels=1, width_mult=1 / 16, fc_width=16, batch_norm=True)
    assert net(torch.randn(2, 1, 32, 32)).shape == (2, 4)


# ---------------------------------------------------------------------------- GoogLeNet

# the paper's table: output size, params (K), ops (M)
GOOGLENET_TABLE = {
    "3a": ((28, 28, 256), 159, 128),
    "3b": ((28, 28, 480), 380, 304),
    "4a": ((14, 14, 512), 364, 73),
    "4b": ((14, 14, 512), 437, 88),
    "4c": ((14, 14, 512), 463, 100),
    "4d": ((14, 14, 528), 580, 119),
    "4e": ((14, 14, 832), 840, 170),
    "5a": ((7, 7, 832), 1072, 54),
    "5b": ((7, 7, 1024), 1388, 71),
}
# Exact weight counts (biases excluded) and multiply-adds of each inception row.
GOOGLENET_EXACT = {
    "3a": (163_328, 128_049_152),
    "3b": (388_096, 304_267_264),
    "4a": (375_552, 73_608_192),
    "4b": (448_512, 87_908_352),
    "4c": (509_440, 99_850_240),
    "4d": (604_672, 118_515_712),
    "4e": (867_328, 169_996_288),
    "5a": (1_042_432, 51_079_168),
    "5b": (1_442_816, 70_697_984),
}


def test_googlenet_inception_rows():
    net = on_meta(M.GoogLeNet)
    table = summary(net, (1, 3, 224, 224))
    specs = {s.name: s for s in M.INCEPTION_V1 if s != "M"}
    for name, (out, _, ops_m) in GOOGLENET_TABLE.items():
        block = net.blocks[f"inception{name}"]
        rows = [r for r in table if r.name.startswith(f"blocks.inception{name}.")]
        # the block's output is the concatenation of its four branches
        branch_outs = [[r for r in rows if f".branch{k}." in r.name][-1].output_shape
                       for k in (1, 2, 3, 4)]
        h, w, c = out
        assert sum(s[1] for s in branch_outs) == c == specs[name].out_channels
        assert all(s[2:] == (h, w) for s in branch_outs)
        weights = sum(p.numel() for n, p in block.named_parameters() if n.endswith("weight"))
        c_in = block.branch1[0].in_channels
        s = specs[name]
        assert weights == (c_in * (s.n1x1 + s.n3x3red + s.n5x5red + s.pool_proj)
                           + 9 * s.n3x3red * s.n3x3 + 25 * s.n5x5red * s.n5x5)
        macs = sum(r.macs for r in rows)
        assert (weights, macs) == GOOGLENET_EXACT[name]
        assert macs == weights * h * w
        # The ops column is weights x H x W in millions; it rounds to the table for 7 of the
        # 9 rows. 4a: 73.6 M (table 73); 5a: 51.1 M (table 54).
        if name not in ("4a", "5a"):
            assert round(macs / 1e6) == ops_m
    # The params column does not follow from the branch widths for most rows (e.g. 4c has
    # 509,440 weights, the table says 463K); see GOOGLENET_EXACT for the exact counts.
    # The stem's 3x3 row does match, in K = 1024: 64*64 + 9*64*192 = 114,688 = 112K,
    # and 114,688 * 56 * 56 = 359,661,568 = 360M ops.
    stem_convs = [r for r in table if r.name.startswith("stem.") and r.type == "Conv2d"]
    assert [r.output_shape[1:] for r in stem_convs] == [(64, 112, 112), (64, 56, 56),
                                                        (192, 56, 56)]
    reduce_and_3x3 = sum(r.params - r.output_shape[1] for r in stem_convs[1:])
    assert reduce_and_3x3 == 114_688 and reduce_and_3x3 / 1024 == 112
    assert round(sum(r.macs for r in stem_convs[1:]) / 1e6) == 360
    # The first conv has 7*7*3*64 = 9,408 weights and 118 M multiply-adds; the table's
    # 2.7K / 34M does not correspond to a 7x7x3 -> 64 conv.
    assert stem_convs[0].params - 64 == 9_408
    fc = rows_of(table, {"Linear"})[0]
    assert fc.params - 1000 == 1024 * 1000  # "1000K" with K = 1024; ops 1M
    assert round(fc.macs / 1e6) == 1


def test_googlenet_total_and_aux():
    # 6,998,552 parameters without the auxiliary classifiers (~7.0 M). The slide's "~5M" is
    # not a count of this network (the paper's table sums to ~6.8 M; 5M = 60M / 12, its
    # "12x fewer than AlexNet"); chapter 07 shows the measured ratio, 8.7x. torchvision's
    # variant, with BatchNorm and 3x3 instead of 5x5 convs, has ~6.6 M.
    assert n_params(on_meta(M.GoogLeNet)) == 6_998_552
    assert n_params(on_meta(M.GoogLeNet, aux_logits=True)) == 13_378_280
    net = M.GoogLeNet(10, aux_logits=True, width_mult=1 / 8)
    x = torch.randn(2, 3, 64, 64)
    assert [o.shape for o in net.train()(x)] == [(2, 10)] * 3
    assert net.eval()(x).shape == (2, 10)
    assert M.GoogLeNet(10, width_mult=1 / 8)(x).shape == (2, 10)


# ---------------------------------------------------------------------------- ResNet


@pytest.mark.parametrize(
    "factory, exact_macs, paper",
    [
        (M.resnet18, 1_814_073_344, 1.8),
        (M.resnet34, 3_663_761_408, 3.6),
        (M.resnet50, 3_857_973_248, 3.8),
        (M.resnet101, 7_570_194_432, 7.6),
        (M.resnet152, 11_282_415_616, 11.3),
    ],
)
def test_resnet_flops(factory, exact_macs, paper):
    table = summary(on_meta(factory), (1, 3, 224, 224))
    assert table.total_macs == exact_macs  # convs (shortcuts included) + FC, multiply-adds
    if factory in (M.resnet34, M.resnet50):
        # The paper's 3.6 and 3.8 are these 3.66 G and 3.86 G truncated rather than rounded
        # (other depths round: 1.81 -> 1.8, 7.57 -> 7.6, 11.28 -> 11.3); leaving out the
        # projection shortcuts does not explain them either (3.64 G and 3.50 G).
        assert int(exact_macs / 1e8) / 10 == paper
    else:
        assert round(exact_macs / 1e9, 1) == paper


def test_resnet_bottleneck_stride_position():
    # torchvision's "v1.5" strides in the 3x3 conv: 4,089,184,256 multiply-adds for ResNet-50
    v15 = summary(on_meta(M.resnet50, stride_in_1x1=False), (1, 3, 224, 224))
    assert v15.total_macs == 4_089_184_256
    assert v15.total_params == n_params(on_meta(M.resnet50)) == 25_557_032


@pytest.mark.parametrize(
    "factory, count",
    [(M.resnet18, 11_689_512), (M.resnet34, 21_797_672), (M.resnet50, 25_557_032),
     (M.resnet101, 44_549_160), (M.resnet152, 60_192_808)],
)
def test_resnet_parameter_counts(factory, count):
    assert n_params(on_meta(factory)) == count


@pytest.mark.parametrize("c", [1, 4, 16, 64, 512])
def test_basic_block_has_18c2_plus_4c_parameters(c):
    assert n_params(M.BasicBlock(c, c)) == 18 * c * c + 4 * c


def test_resnet_stage_shapes():
    table = summary(on_meta(M.resnet50), (1, 3, 224, 224))
    last = {}
    for r in table:
        last[r.name.split(".")[0]] = r.output_shape[1:]
    assert last["conv1"] == (64, 112, 112) and last["maxpool"] == (64, 56, 56)
    assert [last[f"layer{i}"] for i in (1, 2, 3, 4)] == [
        (256, 56, 56), (512, 28, 28), (1024, 14, 14), (2048, 7, 7)
    ]


@pytest.mark.parametrize(
    "factory", [M.resnet18, M.resnet50, M.preact_resnet18, M.preact_resnet50]
)
def test_resnet_reduced_forward(factory):
    net = factory(num_classes=5, base_width=4, in_channels=1)
    assert net(torch.randn(2, 1, 32, 32)).shape == (2, 5)


def test_preactivation_blocks_can_subtract():
    torch.manual_seed(0)
    x = torch.randn(4, 8, 6, 6)
    post, pre = M.BasicBlock(8, 8).eval(), M.PreActBasicBlock(8, 8).eval()
    assert (post(x) >= 0).all()  # ReLU after the addition
    assert (pre(x) - x < 0).any()  # the residual branch can be negative


def test_plain_resnet_has_no_shortcut():
    net = M.ResNet(M.BasicBlock, (1, 1, 1, 1), 3, base_width=4, residual=False)
    assert all(b.shortcut is None and not b.residual
               for b in net.modules() if isinstance(b, M.BasicBlock))
    with pytest.raises(ValueError, match="layers"):
        M.ResNet(M.BasicBlock, (2, 2, 2))


# ---------------------------------------------------------------------------- CIFAR


@pytest.mark.parametrize(
    "factory, depth, count",
    [(M.resnet20, 20, 269_722), (M.resnet32, 32, 464_154), (M.resnet56, 56, 853_018),
     (M.resnet110, 110, 1_727_962)],
)
def test_cifar_resnet_depth_and_params(factory, depth, count):
    net = factory()
    assert sum(isinstance(m, (nn.Conv2d, nn.Linear)) for m in net.modules()) == depth
    assert n_params(net) == count  # option A: the shortcuts have no parameters
    if depth == 20:
        assert round(count / 1e6, 2) == 0.27  # the paper's 0.27M


def test_cifar_option_b_and_plain_nets():
    assert n_params(M.resnet20(shortcut="B")) == 269_722 + (16 * 32 + 64) + (32 * 64 + 128)
    for plain, res in [(M.plain20, M.resnet20), (M.plain32, M.resnet32),
                       (M.plain56, M.resnet56)]:
        assert n_params(plain()) == n_params(res())
    x = torch.randn(2, 3, 16, 16)
    for net in (M.resnet20(), M.resnet20(shortcut="B"), M.plain20(), M.resnet20(base_width=4)):
        assert net(x).shape == (2, 10)
    with pytest.raises(ValueError, match="6n\\+2"):
        M.CifarResNet(21)
    with pytest.raises(ValueError, match="shortcut"):
        M.CifarResNet(20, shortcut="C")


def test_option_a_shortcut_is_identity_plus_zeros():
    block = M.resnet20().layer2[0].shortcut
    x = torch.randn(1, 16, 8, 8)
    y = block(x)
    assert y.shape == (1, 32, 4, 4)
    assert torch.equal(y[:, 8:24], x[:, :, ::2, ::2])
    assert not y[:, :8].any() and not y[:, 24:].any()


# ---------------------------------------------------------------------------- U-Net


def test_crop_amounts_and_center_crop_with_odd_differences():
    assert M.crop_amounts(8, 4) == (2, 2)
    assert M.crop_amounts(7, 4) == (1, 2)  # the extra pixel comes off the bottom / right
    x = torch.arange(7 * 9).reshape(1, 1, 7, 9)
    y = M.center_crop(x, (4, 6))
    assert torch.equal(y, x[..., 1:5, 1:7])  # top 1, bottom 2; left 1, right 2
    assert torch.equal(M.center_crop(x, (7, 9)), x)
    with pytest.raises(ValueError, match="target"):
        M.crop_amounts(3, 4)


def test_unet_paper_geometry():
    assert M.unet_output_size(572, 4, padding=False) == 388
    table = summary(on_meta(M.UNet, padding=False), (1, 1, 572, 572))
    assert table[-1].output_shape == (1, 2, 388, 388)
    # 18,842,048 (contracting path + bottom) + 2,786,240 (up-convs) + 9,402,240
    # (expanding path) + 130 (1x1 head)
    assert n_params(on_meta(M.UNet, padding=False)) == 31_030_658


@pytest.mark.parametrize("upsample", ["transpose", "bilinear"])
@pytest.mark.parametrize("depth", [1, 2, 3])
def test_unet_shapes(upsample, depth):
    net = M.UNet(3, 4, depth=depth, base_width=4, upsample=upsample)
    assert net(torch.randn(2, 3, 32, 48)).shape == (2, 4, 32, 48)
    net = M.UNet(3, 4, depth=depth, base_width=4, padding=False, upsample=upsample)
    size = M.unet_output_size(140, depth, padding=False)
    assert net(torch.randn(1, 3, 140, 140)).shape == (1, 4, size, size)


def test_unet_odd_sizes_crop_and_errors():
    # an odd map before a pool: the skip is cropped with the extra pixel off bottom / right
    net = M.UNet(1, 2, depth=2, base_width=4, padding=False)
    assert net(torch.randn(1, 1, 45, 45)).shape[-1] == M.unet_output_size(45, 2, False)
    with pytest.raises(ValueError, match="too small"):
        M.unet_output_size(60, 3, padding=False)
    with pytest.raises(ValueError, match="upsample"):
        M.UNet(upsample="nearest")
    with pytest.raises(ValueError, match="depth"):
        M.UNet(depth=0)


# ---------------------------------------------------------------------------- hourglass


@pytest.mark.parametrize("n_stacks", [1, 2, 3])
def test_stacked_hourglass_returns_one_prediction_per_stack(n_stacks):
    net = M.StackedHourglass(5, n_stacks=n_stacks, channels=16, order=2)
    preds = net(torch.randn(2, 3, 32, 32))
    assert isinstance(preds, list) and len(preds) == n_stacks
    assert all(p.shape == (2, 5, 8, 8) for p in preds)


def test_hourglass_keeps_shape_and_paper_size():
    hg = M.Hourglass(3, 8)
    assert hg(torch.randn(1, 8, 16, 16)).shape == (1, 8, 16, 16)
    table = summary(on_meta(M.StackedHourglass, 16, n_stacks=8), (1, 3, 256, 256))
    heads = [r for r in table if r.name.startswith("heads.")]
    assert [r.output_shape for r in heads] == [(1, 16, 64, 64)] * 8
    assert table.total_params == 25_434_112


# ---------------------------------------------------------------------------- torchvision


@needs_torchvision
@pytest.mark.parametrize(
    "ours, theirs",
    [("vgg11", "vgg11"), ("vgg13", "vgg13"), ("vgg16", "vgg16"), ("vgg19", "vgg19"),
     ("resnet18", "resnet18"), ("resnet34", "resnet34"), ("resnet50", "resnet50"),
     ("resnet101", "resnet101"), ("resnet152", "resnet152")],
)
def test_parameter_counts_match_torchvision(ours, theirs):
    import torchvision

    theirs_net = on_meta(getattr(torchvision.models, theirs))
    assert n_params(on_meta(getattr(M, ours))) == n_params(theirs_net)


@needs_torchvision
def test_torchvision_googlenet_is_a_different_variant():
    import torchvision

    theirs = on_meta(torchvision.models.googlenet, aux_logits=False, init_weights=False)
    # BatchNorm and 3x3 (not 5x5) convs in the "5x5" branch: ~6.6 M, not our 7.0 M
    assert round(n_params(theirs) / 1e6, 1) == 6.6


@pytest.mark.parametrize(
    "block, in_channels, last",
    [
        (M.BasicBlock, 8, "bn2"),
        (M.Bottleneck, 8, "bn3"),  # 4 * 2 channels in and out: the identity shortcut
        (M.PreActBasicBlock, 8, "conv2"),
        (M.PreActBottleneck, 8, "conv3"),
    ],
)
def test_identity_shortcut_adds_the_input(block, in_channels, last):
    """out = relu(branch(x) + x) (post-activation) or branch(x) + x (pre-activation), with
    the branch read off its last layer by a hook; a branch zeroed at its last layer leaves
    relu(x) or x itself, and the plain block (residual=False) leaves relu(0) or 0."""
    torch.manual_seed(0)
    x = torch.randn(2, in_channels, 5, 5, dtype=torch.float64)
    channels = in_channels // block.expansion
    net = block(in_channels, channels).double().eval()
    assert net.shortcut is None and net.residual
    branch = []
    getattr(net, last).register_forward_hook(lambda m, i, out: branch.append(out))
    preact = block in (M.PreActBasicBlock, M.PreActBottleneck)
    finish = (lambda t: t) if preact else torch.relu
    torch.testing.assert_close(net(x), finish(branch[0] + x), rtol=1e-14, atol=1e-14)
    assert branch[0].abs().max() > 0.1  # the branch is not zero here
    with torch.no_grad():  # zero the branch at its last layer
        for p in getattr(net, last).parameters():
            p.zero_()
    torch.testing.assert_close(net(x), finish(x), rtol=0, atol=0)
    plain = block(in_channels, channels, residual=False).double().eval()
    plain.load_state_dict(net.state_dict())
    assert (plain(x) == 0).all()
