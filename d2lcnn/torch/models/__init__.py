"""CNN architectures as plain ``torch.nn.Module``s built from ``torch.nn`` layers.

Case studies in historical order: :class:`LeNet5`, :class:`AlexNet`, :class:`ZFNet`,
:class:`VGG` (configurations A-E), :class:`GoogLeNet`, :class:`ResNet` (and the
pre-activation and CIFAR variants, with their plain twins), :class:`UNet` and
:class:`StackedHourglass`. Every model takes ``num_classes`` and, where sensible,
``in_channels`` and a width argument, so chapters can train reduced versions on a CPU. Use
:func:`d2lcnn.summary.summary` to tabulate shapes, parameters and multiply-adds.
"""

from d2lcnn.torch.models.alexnet import AlexNet, ZFNet, local_response_norm
from d2lcnn.torch.models.googlenet import INCEPTION_V1, GoogLeNet, Inception, InceptionSpec
from d2lcnn.torch.models.hourglass import Hourglass, HourglassResidual, StackedHourglass
from d2lcnn.torch.models.lenet import LeNet5
from d2lcnn.torch.models.resnet import (
    BasicBlock,
    Bottleneck,
    CifarResNet,
    PreActBasicBlock,
    PreActBottleneck,
    ResNet,
    plain20,
    plain32,
    plain56,
    preact_resnet18,
    preact_resnet50,
    resnet18,
    resnet20,
    resnet32,
    resnet34,
    resnet50,
    resnet56,
    resnet101,
    resnet110,
    resnet152,
)
from d2lcnn.torch.models.unet import UNet, center_crop, crop_amounts, unet_output_size
from d2lcnn.torch.models.vgg import VGG, VGG_CONFIGS, vgg11, vgg13, vgg16, vgg19

__all__ = [
    "LeNet5",
    "AlexNet",
    "ZFNet",
    "local_response_norm",
    "VGG",
    "VGG_CONFIGS",
    "vgg11",
    "vgg13",
    "vgg16",
    "vgg19",
    "GoogLeNet",
    "Inception",
    "InceptionSpec",
    "INCEPTION_V1",
    "ResNet",
    "BasicBlock",
    "Bottleneck",
    "PreActBasicBlock",
    "PreActBottleneck",
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet101",
    "resnet152",
    "preact_resnet18",
    "preact_resnet50",
    "CifarResNet",
    "resnet20",
    "resnet32",
    "resnet56",
    "resnet110",
    "plain20",
    "plain32",
    "plain56",
    "UNet",
    "center_crop",
    "crop_amounts",
    "unet_output_size",
    "Hourglass",
    "HourglassResidual",
    "StackedHourglass",
]
