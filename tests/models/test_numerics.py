"""Every variant, at its default initialisation and in eval mode, is numerically sound: its
float32 outputs agree with the same network in float64, and an image's outputs do not depend
on the other images of the batch.

Both are measured on the pooled features before the classifier (which some papers initialise
to zero), relative to the largest: max |a - b| / max |b|. A network whose activations grow by
orders of magnitude from block to block fails: SE-ResNet-152 without its zero-initialised
branches gives 0.035 at 64x64 (0.44 at 96x96, 0.45 at 224x224), 6e-6 at 32x32, so ImageNet
networks are run at 64x64 at least (CIFAR networks at 16x16, MLP-Mixers built for 64x64), in
batches of 2 (in float64, which is slow on CPU, the first image only). A network that mixes
samples (BatchNorm left in training mode, a reduction over the batch) fails too.
``pytest -s`` prints each variant's two figures.

Variants above 50M parameters are marked ``slow`` (run in CI all the same): building them at
their default init is most of this file's time.
"""

from __future__ import annotations

import pytest
import torch

import cnnzoo

BOUND = 3e-5
# above 50M parameters at their default configuration (MODELS.md)
BIG = {
    *("alexnet", "alexnet_paper", "efficientnet_b7", "mixer_b16_224", "mixer_l16_224"),
    *("preact_resnet152", "resnet152", "resnext101_32x8d", "se_resnet152", "wide_resnet50_2"),
    *("repvgg_b1", "repvgg_b2", "repvgg_b2g4", "repvgg_b3", "repvgg_b3g2", "repvgg_b3g4"),
    *(f"vgg{d}{bn}" for d in (11, 13, 16, 19) for bn in ("", "_bn")),
}
VARIANTS = [
    pytest.param(name, marks=pytest.mark.slow) if name in BIG else name
    for name in cnnzoo.list_models()
]


def relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a.double() - b.double()).abs().max() / b.double().abs().max()).item()


@pytest.mark.parametrize("name", VARIANTS)
def test_float32_agrees_with_float64_and_samples_do_not_mix(name: str):
    kwargs = {"img_size": 64} if name.startswith("mixer") else {}
    model = cnnzoo.create_model(name, num_classes=10, **kwargs).eval()
    least = 64 if model.default_cfg.input_size[1] >= 224 else 16
    h, w = (max(s, least) for s in model.default_cfg.min_input_size)
    x = torch.randn(2, model.in_chans, h, w)

    def pooled(x: torch.Tensor) -> torch.Tensor:
        return model.forward_head(model.forward_features(x), pre_logits=True)

    with torch.no_grad():
        out = pooled(x)
        alone = torch.cat([pooled(sample) for sample in x.split(1)])
        model.double()  # float64 is slow on CPU: one sample
        out64 = pooled(x[:1].double())
    float64_error, batch_error = relative_error(out[:1], out64), relative_error(alone, out)
    print(f"{name}: float32 vs float64 {float64_error:.2e}, batch {batch_error:.2e}")
    assert out.abs().max() > 0
    assert float64_error < BOUND and batch_error < BOUND
