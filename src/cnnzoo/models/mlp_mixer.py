"""MLP-Mixer (Tolstikhin, Houlsby, Kolesnikov, Beyer, Zhai, Unterthiner, Yung, Steiner, Keysers,
Uszkoreit, Lucic and Dosovitskiy, "MLP-Mixer: An all-MLP Architecture for Vision",
NeurIPS 2021).

The image is cut into non-overlapping P x P patches, each projected linearly to C channels
(a P x P conv with stride P), giving a table of S patches x C channels. Every Mixer layer
then applies two MLPs (two linear layers with a GELU between), each after a LayerNorm and
with a skip connection: the token-mixing MLP acts on the columns (mixing the S patches, hidden
width D_S, shared across channels), the channel-mixing MLP on the rows (mixing the C channels,
hidden width D_C, shared across patches). A final LayerNorm, global average pooling over
patches and a linear layer classify. Paper Table 1: S/16 (8 layers, C=512, D_S=256,
D_C=2048, 18M params), B/16 (12, 768, 384, 3072, 59M), L/16 (24, 1024, 512, 4096, 207M).

The token-mixing MLP's width is the number of patches, so the input size is fixed when the
model is built (``img_size``); any other size raises :class:`InputShapeError`. For the same
reason there is no ``features_only``: every layer outputs an S x C token table at one
resolution, not a pyramid of feature maps.

Initialisation follows the paper's code (big_vision / Flax) as timm ports it: the classifier
zero (weights and bias), the patch projection LeCun-normal, the MLPs' linear layers
Xavier-uniform with biases N(0, 1e-6), LayerNorms at scale 1 and shift 0.
"""

from __future__ import annotations

import torch.nn as nn
from torch import Tensor

from cnnzoo.errors import ConfigError, InputShapeError
from cnnzoo.layers import DropPath
from cnnzoo.models._base import ClassifierModel
from cnnzoo.models._registry import ModelCfg, register_model

PAPER = "Tolstikhin et al., MLP-Mixer: An all-MLP Architecture for Vision, NeurIPS 2021"


class MlpBlock(nn.Module):
    """Two linear layers with a GELU between: ``fc2(gelu(fc1(x)))`` over the last axis."""

    def __init__(self, dim: int, hidden: int, drop: float = 0.0) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)
        self.drop = nn.Dropout(drop)

    def forward(self, x: Tensor) -> Tensor:
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))


class MixerBlock(nn.Module):
    """Mixer layer (Tolstikhin et al., NeurIPS 2021): a token-mixing MLP across patches, then a
    channel-mixing MLP across channels, each with pre-LayerNorm and a skip connection."""

    def __init__(
        self,
        num_patches: int,
        dim: int,
        token_hidden: int,
        channel_hidden: int,
        drop: float = 0.0,
        drop_path: float = 0.0,
    ) -> None:
        super().__init__()
        self.token_norm = nn.LayerNorm(dim, eps=1e-6)
        self.token_mlp = MlpBlock(num_patches, token_hidden, drop)
        self.channel_norm = nn.LayerNorm(dim, eps=1e-6)
        self.channel_mlp = MlpBlock(dim, channel_hidden, drop)
        self.drop_path = DropPath(drop_path)

    def forward(self, x: Tensor) -> Tensor:  # x: (batch, patches, channels)
        x = x + self.drop_path(self.token_mlp(self.token_norm(x).transpose(1, 2)).transpose(1, 2))
        return x + self.drop_path(self.channel_mlp(self.channel_norm(x)))


class MlpMixer(ClassifierModel):
    """MLP-Mixer (Tolstikhin et al., NeurIPS 2021): patch embedding, then layers that alternate
    MLPs mixing across patches and across channels; no convolutions or attention beyond the
    patch projection."""

    def __init__(
        self,
        patch_size: int = 16,
        num_blocks: int = 8,
        embed_dim: int = 512,
        token_hidden: int = 256,
        channel_hidden: int = 2048,
        img_size: int | tuple[int, int] = 224,
        num_classes: int = 1000,
        in_chans: int = 3,
        drop_rate: float = 0.0,
        drop_path_rate: float = 0.0,
    ) -> None:
        super().__init__()
        img_hw = (img_size, img_size) if isinstance(img_size, int) else tuple(img_size)
        if len(img_hw) != 2 or any(s < patch_size or s % patch_size for s in img_hw):
            raise ConfigError(
                f"img_size {img_size} does not tile into {patch_size}x{patch_size} patches; "
                f"use a multiple of {patch_size}"
            )
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.num_features = embed_dim
        self.fixed_input_size = img_hw
        self.feature_info: list[dict] = []
        self.grid = (img_hw[0] // patch_size, img_hw[1] // patch_size)
        num_patches = self.grid[0] * self.grid[1]
        self.patch_embed = nn.Conv2d(in_chans, embed_dim, patch_size, stride=patch_size)
        rates = [drop_path_rate * i / max(num_blocks - 1, 1) for i in range(num_blocks)]
        self.blocks = nn.Sequential(
            *(
                MixerBlock(num_patches, embed_dim, token_hidden, channel_hidden, drop_rate, r)
                for r in rates
            )
        )
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)
        self.head_drop = nn.Dropout(drop_rate)
        self.head = nn.Linear(embed_dim, num_classes) if num_classes > 0 else nn.Identity()
        # LeCun normal as Flax draws it: truncated at 2 std, rescaled by that truncation's std
        fan_in = in_chans * patch_size**2
        lecun_std = (1 / fan_in) ** 0.5 / 0.87962566103423978
        nn.init.trunc_normal_(
            self.patch_embed.weight, std=lecun_std, a=-2 * lecun_std, b=2 * lecun_std
        )
        nn.init.zeros_(self.patch_embed.bias)
        for m in self.blocks.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.normal_(m.bias, std=1e-6)
        if num_classes > 0:
            nn.init.zeros_(self.head.weight)
            nn.init.zeros_(self.head.bias)

    def forward_features(self, x: Tensor) -> Tensor:
        if tuple(x.shape[-2:]) != self.fixed_input_size:
            h, w = self.fixed_input_size
            raise InputShapeError(
                f"this MLP-Mixer was built for {h}x{w} inputs (img_size={h if h == w else (h, w)}) "
                f"but got {x.shape[-2]}x{x.shape[-1]}; its token-mixing MLP is sized to the patch "
                f"count, so resize the images or build the model with img_size={x.shape[-2]}"
            )
        x = self.patch_embed(x).flatten(2).transpose(1, 2)  # (batch, patches, channels)
        return self.norm(self.blocks(x))

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        x = self.head_drop(x.mean(dim=1))
        return x if pre_logits else self.head(x)

    def get_classifier(self) -> nn.Module:
        return self.head

    def reset_classifier(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.head = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()


_TIMM_KEYS = (
    ("stem.proj.", "patch_embed."),
    (".norm1.", ".token_norm."),
    (".mlp_tokens.", ".token_mlp."),
    (".norm2.", ".channel_norm."),
    (".mlp_channels.", ".channel_mlp."),
)


def checkpoint_filter_fn(state_dict: dict[str, Tensor], model: nn.Module) -> dict[str, Tensor]:
    """Map timm's MLP-Mixer keys (``stem.proj``, ``norm1``/``mlp_tokens``, ``norm2``/``mlp_channels``)
    to ours."""
    out = {}
    for key, value in state_dict.items():
        for old, new in _TIMM_KEYS:
            key = key.replace(old, new)
        out[key] = value
    return out


def _cfg(timm: str) -> ModelCfg:
    return ModelCfg(
        paper=PAPER,
        min_input_size=(224, 224),
        mean=(0.5, 0.5, 0.5),
        std=(0.5, 0.5, 0.5),
        first_conv="patch_embed",
        classifier="head",
        timm=timm,
        features_only=False,
    )


def _args(patch: int, depth: int, dim: int, token_hidden: int, channel_hidden: int) -> dict:
    return dict(
        patch_size=patch,
        num_blocks=depth,
        embed_dim=dim,
        token_hidden=token_hidden,
        channel_hidden=channel_hidden,
    )


@register_model(_cfg("mixer_s16_224"))
def mixer_s16_224(**kwargs) -> MlpMixer:
    return MlpMixer(**(_args(16, 8, 512, 256, 2048) | kwargs))


@register_model(_cfg("mixer_b16_224"))
def mixer_b16_224(**kwargs) -> MlpMixer:
    return MlpMixer(**(_args(16, 12, 768, 384, 3072) | kwargs))


@register_model(_cfg("mixer_l16_224"))
def mixer_l16_224(**kwargs) -> MlpMixer:
    return MlpMixer(**(_args(16, 24, 1024, 512, 4096) | kwargs))
