import pytest
import timm
import torch

import cnnzoo
from cnnzoo.errors import ConfigError, InputShapeError
from zoo_helpers import assert_loads_reference

# Paper Table 1, parameters in millions; they match the networks without the 1000-way head.
PAPER_PARAMS_M = {"mixer_s16_224": 18, "mixer_b16_224": 59, "mixer_l16_224": 207}


def _count(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


@pytest.mark.parametrize("name", sorted(PAPER_PARAMS_M))
def test_param_counts_match_timm_and_paper(name):
    with torch.device("meta"):
        ours = cnnzoo.create_model(name)
        theirs = timm.create_model(name)
        body = cnnzoo.create_model(name, num_classes=0)
    assert _count(ours) == _count(theirs)
    assert round(_count(body) / 1e6) == PAPER_PARAMS_M[name]


def check_same_outputs_as_timm(size: int = 64) -> None:
    ref = timm.create_model("mixer_s16_224", img_size=size, num_classes=10)
    x = torch.randn(2, 3, size, size)
    assert_loads_reference("mixer_s16_224", ref, x, img_size=size, num_classes=10)


def test_loads_timm_state_dict_and_matches_outputs():
    check_same_outputs_as_timm()


def test_input_size_is_fixed_by_img_size():
    m = cnnzoo.create_model("mixer_s16_224", img_size=32, num_classes=3).eval()
    assert m.default_cfg.min_input_size == (32, 32) == m.default_cfg.input_size[1:]
    assert m(torch.randn(1, 3, 32, 32)).shape == (1, 3)
    with pytest.raises(InputShapeError, match="img_size=32"):
        m(torch.randn(1, 3, 48, 48))
    with pytest.raises(InputShapeError, match="at least 32x32"):
        m(torch.randn(1, 3, 16, 16))


def test_default_cfg_min_input_size_is_true():
    entry = cnnzoo.get_model_entry("mixer_s16_224")
    assert entry.cfg.min_input_size == entry.cfg.input_size[1:] == (224, 224)


def test_img_size_must_tile_into_patches():
    with pytest.raises(ConfigError, match="multiple of 16"):
        cnnzoo.create_model("mixer_s16_224", img_size=40)


def test_token_mixing_mixes_patches_and_channel_mixing_does_not():
    m = cnnzoo.create_model("mixer_s16_224", img_size=32, num_classes=0).eval()
    block = m.blocks[0]
    x = torch.randn(1, 4, 512)
    y = x.clone()
    y[:, 0] += 1.0  # change one patch only
    with torch.no_grad():
        channel_only = block.channel_mlp(block.channel_norm(x)) - block.channel_mlp(
            block.channel_norm(y)
        )
        assert channel_only[:, 1:].abs().max() == 0  # per-patch MLP: other patches untouched
        full = block(x) - block(y)
        assert full[:, 1:].abs().max() > 0  # token mixing spreads the change to the other patches


def test_interface():
    m = cnnzoo.create_model("mixer_s16_224", img_size=32, in_chans=1, num_classes=5).eval()
    x = torch.randn(2, 1, 32, 32)
    feats = m.forward_features(x)
    assert feats.shape == (2, 4, 512)
    assert m.forward_head(feats, pre_logits=True).shape == (2, 512)
    m.reset_classifier(7)
    assert m(x).shape == (2, 7) and m.get_classifier().out_features == 7
    with pytest.raises(ConfigError, match="features_only"):
        cnnzoo.create_model("mixer_s16_224", img_size=32, features_only=True)


def test_init_is_the_papers():
    """big_vision / timm: zero classifier, LeCun-normal patch projection, Xavier MLPs with
    biases of N(0, 1e-6)."""
    m = cnnzoo.create_model("mixer_s16_224", img_size=32)
    assert not m.head.weight.any() and not m.head.bias.any()
    assert m.patch_embed.weight.std().item() == pytest.approx((3 * 16 * 16) ** -0.5, rel=0.02)
    fc1 = m.blocks[0].channel_mlp.fc1
    assert fc1.bias.abs().max() < 1e-5 and fc1.bias.any()
    assert fc1.weight.std().item() == pytest.approx((2 / (512 + 2048)) ** 0.5, rel=0.02)
