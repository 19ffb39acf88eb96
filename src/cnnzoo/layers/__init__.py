"""Blocks shared by several model families."""

from cnnzoo.layers.activations import Tanh
from cnnzoo.layers.classifier import ClassifierHead
from cnnzoo.layers.conv_norm_act import ConvNormAct
from cnnzoo.layers.drop import DropPath, drop_path
from cnnzoo.layers.helpers import channel_shuffle, init_conv_fan_out, make_divisible
from cnnzoo.layers.squeeze_excite import SqueezeExcite

__all__ = [
    "ClassifierHead",
    "ConvNormAct",
    "DropPath",
    "SqueezeExcite",
    "Tanh",
    "channel_shuffle",
    "drop_path",
    "init_conv_fan_out",
    "make_divisible",
]
