"""The equivalence and paper tests, proved: each wiring error below, applied in memory one at a
time (a block's ``forward`` replaced, or a constructor argument forced), must make the check
that guards it fail with an AssertionError. A check that still passes with the error in place
could not have caught it: it is this test that fails then.

The checks are the ones the family tests run (``check_*`` functions and test bodies, called
directly): comparisons with torchvision/timm whose every tensor is random
(:func:`zoo_helpers.randomize_all`), and, for networks with no reference, the network written
out from its paper. Each mutant uses the smallest variant its check covers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
import test_airbench
import test_alexnet
import test_densenet
import test_efficientnet
import test_googlenet
import test_lenet
import test_mlp_mixer
import test_mobilenetv2
import test_repvgg
import test_resnet
import test_senet
import test_shufflenetv1
import test_shufflenetv2
import test_xception
import torch
import torch.nn as nn
import torch.nn.functional as F

from cnnzoo.layers import channel_shuffle
from cnnzoo.models import (
    airbench,
    alexnet,
    densenet,
    googlenet,
    lenet,
    mlp_mixer,
    mobilenetv2,
    repvgg,
    resnet,
    shufflenetv1,
    shufflenetv2,
    xception,
)


@dataclass(frozen=True)
class Mutant:
    name: str
    apply: Callable[[pytest.MonkeyPatch], None]
    check: Callable[[], None]


def _forward(cls: type, fn: Callable) -> Callable[[pytest.MonkeyPatch], None]:
    return lambda mp: mp.setattr(cls, "forward", fn)


def _forcing(cls: type, **forced) -> Callable[[pytest.MonkeyPatch], None]:
    """Build ``cls`` with ``forced`` keyword arguments whatever the variant asks for."""
    init = cls.__init__
    return lambda mp: mp.setattr(
        cls, "__init__", lambda self, *a, **kw: init(self, *a, **kw | forced)
    )


def _after_init(
    cls: type, edit: Callable[[nn.Module], None]
) -> Callable[[pytest.MonkeyPatch], None]:
    init = cls.__init__

    def patched(self, *args, **kwargs):
        init(self, *args, **kwargs)
        edit(self)

    return lambda mp: mp.setattr(cls, "__init__", patched)


# ResNet family: each mutant forward is the block's own with one thing changed.


def basic_swapped_norms(self, x):
    y = self.bn1(self.conv2(self.relu(self.bn2(self.conv1(x)))))
    return self.relu(y + (x if self.downsample is None else self.downsample(x)))


def basic_no_shortcut(self, x):
    return self.relu(self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x))))))


def bottleneck_branch(self, x, bn1, bn2, se_first=False, shuffle=False, se=True):
    y = self.relu(bn1(self.conv1(x)))
    y = self.relu(bn2(self.conv2(channel_shuffle(y, self.conv2.groups) if shuffle else y)))
    y = self.conv3(y)
    y = self.bn3(self.se(y)) if se_first else self.se(self.bn3(y)) if se else self.bn3(y)
    return self.relu(y + (x if self.downsample is None else self.downsample(x)))


def preact_projection_from_x(self, x):
    y = self.conv1(self.relu(self.bn1(x)))
    y = self.conv2(self.relu(self.bn2(y)))
    return y + (x if self.downsample is None else self.downsample(x))


def pad_zero_channels_first(self, x):
    return F.pad(x[:, :, :: self.stride, :: self.stride], (0, 0, 0, 0, self.extra_chs, 0))


def conv3x3_ungrouped(in_chs, out_chs, stride=1, groups=1):
    return nn.Conv2d(in_chs, out_chs, 3, stride, padding=1, bias=False)


# Other families.


def shufflev2_halves_swapped(self, x):
    if self.stride == 1:
        x1, x2 = x.chunk(2, dim=1)
        return channel_shuffle(torch.cat((self.branch2(x1), x2), 1), 2)
    return channel_shuffle(torch.cat((self.branch1(x), self.branch2(x)), 1), 2)


def inverted_residual_no_skip(self, x):
    return self.conv_pwl(self.se(self.conv_dw(self.conv_pw(x))))


def inverted_residual_no_se(self, x):
    y = self.conv_pwl(self.conv_dw(self.conv_pw(x)))
    return x + self.drop_path(y) if self.has_skip else y


def share_middle_flow(model):
    model.middle_flow = nn.Sequential(*[model.middle_flow[0]] * len(model.middle_flow))


def transition_pool_first(self, x):
    return self.conv(self.relu(self.norm(self.pool(x))))


def dense_newest_first(self, features):
    x = torch.cat(features[::-1], 1)
    x = self.conv1(self.relu1(self.norm1(x)))
    return self.conv2(self.relu2(self.norm2(x)))


def mixer_norms_swapped(self, x):
    x = x + self.token_mlp(self.channel_norm(x).transpose(1, 2)).transpose(1, 2)
    return x + self.channel_mlp(self.token_norm(x))


def lenet_max_pool(model):
    model.s2 = nn.MaxPool2d(2)


def aux_no_relu_after_fc1(self, x):
    return self.fc2(self.fc1(self.conv(self.pool(x)).flatten(1)))


def airbench_gelu_before_bn(self, x):
    x = self.bn1(self.act(self.pool(self.conv1(x))))
    return self.act(self.bn2(self.conv2(x)))


def repvgg_no_identity(self, x):
    return self.act(self.conv3x3(x) + self.conv1x1(x))


MUTANTS = [
    Mutant(
        "ResNet BasicBlock: bn1 and bn2 swapped",
        _forward(resnet.BasicBlock, basic_swapped_norms),
        lambda: test_resnet.check_same_outputs_as_torchvision("resnet18"),
    ),
    Mutant(
        "ResNet Bottleneck: bn1 and bn2 swapped",
        _forward(resnet.Bottleneck, lambda s, x: bottleneck_branch(s, x, s.bn2, s.bn1)),
        lambda: test_resnet.check_same_outputs_as_torchvision("resnet50"),
    ),
    Mutant(
        "SE-ResNet: SE unit dropped",
        _forward(resnet.Bottleneck, lambda s, x: bottleneck_branch(s, x, s.bn1, s.bn2, se=False)),
        lambda: test_senet.check_same_outputs_as_timm("se_resnet50"),
    ),
    Mutant(
        "SE-ResNet: SE unit before bn3",
        _forward(
            resnet.Bottleneck, lambda s, x: bottleneck_branch(s, x, s.bn1, s.bn2, se_first=True)
        ),
        lambda: test_senet.check_same_outputs_as_timm("se_resnet50"),
    ),
    Mutant(
        "ResNeXt: grouped 3x3 fed interleaved channel groups",
        _forward(
            resnet.Bottleneck, lambda s, x: bottleneck_branch(s, x, s.bn1, s.bn2, shuffle=True)
        ),
        lambda: test_resnet.check_same_outputs_as_torchvision("resnext50_32x4d"),
    ),
    Mutant(
        "ResNeXt: 3x3 not grouped (groups=1)",
        lambda mp: mp.setattr(resnet, "conv3x3", conv3x3_ungrouped),
        lambda: test_resnet.test_parameter_count_equals_torchvision_or_timm("resnext50_32x4d"),
    ),
    Mutant(
        "CIFAR ResNet: BasicBlock without its shortcut",
        _forward(resnet.BasicBlock, basic_no_shortcut),
        lambda: test_resnet.check_cifar_forward_by_hand("resnet20"),
    ),
    Mutant(
        "CIFAR ResNet: option-A shortcut pads the zero channels first",
        _forward(resnet.PadShortcut, pad_zero_channels_first),
        lambda: test_resnet.check_cifar_forward_by_hand("resnet20"),
    ),
    Mutant(
        "pre-activation ResNet: projection shortcut from x, not BN-ReLU(x)",
        _forward(resnet.PreActBasicBlock, preact_projection_from_x),
        lambda: test_resnet.check_same_outputs_as_timm("preact_resnet18"),
    ),
    Mutant(
        "ShuffleNet V1: channel shuffle is the identity",
        lambda mp: mp.setattr(shufflenetv1, "channel_shuffle", lambda x, groups: x),
        lambda: test_shufflenetv1.check_forward_by_hand(3),
    ),
    Mutant(
        "ShuffleNet V2: channel shuffle is the identity",
        lambda mp: mp.setattr(shufflenetv2, "channel_shuffle", lambda x, groups: x),
        lambda: test_shufflenetv2.check_same_outputs_as_torchvision("shufflenet_v2_x0_5"),
    ),
    Mutant(
        "ShuffleNet V2: the split halves swap roles",
        _forward(shufflenetv2.ShuffleV2Block, shufflev2_halves_swapped),
        lambda: test_shufflenetv2.check_same_outputs_as_torchvision("shufflenet_v2_x0_5"),
    ),
    Mutant(
        "MobileNetV2: ReLU instead of ReLU6",
        _forcing(mobilenetv2.InvertedResidual, act_layer=nn.ReLU),
        lambda: test_mobilenetv2.check_same_outputs_as_torchvision("mobilenet_v2"),
    ),
    Mutant(
        "MobileNetV2: inverted residual without its skip",
        _forward(mobilenetv2.InvertedResidual, inverted_residual_no_skip),
        lambda: test_mobilenetv2.check_same_outputs_as_torchvision("mobilenet_v2"),
    ),
    Mutant(
        "EfficientNet: MBConv without its SE unit",
        _forward(mobilenetv2.InvertedResidual, inverted_residual_no_se),
        lambda: test_efficientnet.check_same_outputs_as_torchvision("efficientnet_b0"),
    ),
    Mutant(
        "Xception: the middle flow's eight blocks share one block's weights",
        _after_init(xception.Xception, share_middle_flow),
        test_xception.check_same_outputs_as_timm,
    ),
    Mutant(
        "DenseNet: transition pools before BN-ReLU-conv",
        _forward(densenet.Transition, transition_pool_first),
        test_densenet.check_densenet_bc_forward_by_hand,
    ),
    Mutant(
        "DenseNet: a layer concatenates the earlier maps newest first",
        _forward(densenet.DenseLayer, dense_newest_first),
        lambda: test_densenet.check_same_outputs_as_torchvision("densenet121"),
    ),
    Mutant(
        "MLP-Mixer: token-mixing and channel-mixing LayerNorms swapped",
        _forward(mlp_mixer.MixerBlock, mixer_norms_swapped),
        lambda: test_mlp_mixer.check_same_outputs_as_timm(32),
    ),
    Mutant(
        "RepVGG: identity branch dropped",
        _forward(repvgg.RepVGGBlock, repvgg_no_identity),
        lambda: test_repvgg.test_loads_timm_state_dict_and_matches_outputs("repvgg_a0"),
    ),
    Mutant(
        "LeNet-5: ReLU instead of tanh",
        lambda mp: mp.setattr(lenet, "Tanh", nn.ReLU),
        test_lenet.check_forward_by_hand,
    ),
    Mutant(
        "LeNet-5: S2 max-pools instead of averaging",
        _after_init(lenet.LeNet5, lenet_max_pool),
        test_lenet.check_forward_by_hand,
    ),
    Mutant(
        "AlexNet paper form: dropout on the inputs of fc6 and fc7",
        _forcing(alexnet.AlexNet, dropout_after_fc=False),
        test_alexnet.check_paper_form_by_hand,
    ),
    Mutant(
        "AlexNet paper form: LRN alpha 1e-4 in PyTorch's convention",
        _forcing(alexnet.AlexNet, lrn_alpha=1e-4),
        test_alexnet.check_paper_form_by_hand,
    ),
    Mutant(
        "GoogLeNet: aux head without the ReLU after fc1",
        _forward(googlenet.InceptionAux, aux_no_relu_after_fc1),
        test_googlenet.check_aux_heads_by_hand,
    ),
    Mutant(
        "airbench94: GELU before BN in each block",
        _forward(airbench.ConvGroup, airbench_gelu_before_bn),
        test_airbench.check_forward_by_hand,
    ),
]


@pytest.mark.parametrize("mutant", MUTANTS, ids=[m.name for m in MUTANTS])
def test_the_checks_catch_the_wiring_error(mutant: Mutant, monkeypatch: pytest.MonkeyPatch):
    mutant.apply(monkeypatch)
    with pytest.raises(AssertionError):
        mutant.check()
