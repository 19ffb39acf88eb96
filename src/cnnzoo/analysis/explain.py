"""Seeing inside a trained model, in pictures: where the evidence for a class lies, what the
first layer looks for, and what each stage responds to.

Two attribution methods, both from captum (so no hand-rolled gradient hooks):

- Grad-CAM (Selvaraju et al. 2017): the feature map weighted by the class score's average
  gradient per channel, ReLU, upsampled to the image. It reads the last feature map of
  ``forward_features`` through :class:`CamModel`, which every family has (RepVGG fused or not,
  GoogLeNet with aux heads, MLP-Mixer's tokens laid out on their patch grid). When that map
  is smaller than ``MIN_CAM_SIDE`` pixels a side (a small input through a deep network), the
  deepest stage of ``feature_info`` that is large enough is read instead.
- Occlusion (Zeiler & Fergus 2014), gradient-free: the drop of the class score when a
  window of the image (an eighth of its side) is set to the dataset mean (0 after
  normalisation), for each cell of an 8x8 grid.

The pictures are drawn by :mod:`cnnzoo.analysis.plots` at fixed sizes, and written
atomically; this module computes what they show.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
from torch import Tensor

from cnnzoo.errors import ConfigError

PANEL = 2.4  # inches per overlay panel
MAP_CELL = 1.2  # inches per feature map
FILTER_CELL = 0.6  # inches per first-layer filter
MAPS_PER_STAGE = 8
MAX_FILTERS = 64
MIN_CAM_SIDE = 4
OCCLUSION_GRID = 8  # windows a side: 64 forward passes per image and class
METHODS = ("Grad-CAM", "occlusion")


class CamModel(nn.Module):
    """``model`` as ``forward_head(feature_map(forward_features(x)))``, where ``feature_map``
    is an identity whose output is the last feature map as (N, C, H, W): the layer Grad-CAM
    targets in every family. A token sequence (N, L, C) is laid out on the model's patch
    ``grid`` (square when it has none) and flattened back for the head."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.feature_map = nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        f = self.model.forward_features(x)
        if f.dim() == 3:
            n, length, c = f.shape
            side = math.isqrt(length)
            h, w = getattr(self.model, "grid", (side, length // side))
            f = self.feature_map(f.transpose(1, 2).reshape(n, c, h, w))
            return self.model.forward_head(f.flatten(2).transpose(1, 2))
        return self.model.forward_head(self.feature_map(f))


def stage_layers(cam: CamModel) -> list[tuple[str, nn.Module]]:
    """The stages of ``feature_info`` (name, module), shallow to deep, then the last map."""
    info = getattr(cam.model, "feature_info", None) or []
    stages = [(f["module"], cam.model.get_submodule(f["module"])) for f in info]
    return [*stages, ("features", cam.feature_map)]


def stage_maps(cam: CamModel, x: Tensor) -> list[tuple[str, Tensor]]:
    """Each stage's output for ``x`` (only 4-D maps), through captum's LayerActivation."""
    from captum.attr import LayerActivation

    names, layers = zip(*stage_layers(cam), strict=True)
    with torch.no_grad():
        outputs = LayerActivation(cam, list(layers)).attribute(x)
    maps = [(n, o) for n, o in zip(names, outputs, strict=True) if o.dim() == 4]
    if len(maps) > 1 and maps[-2][1].shape == maps[-1][1].shape:
        if torch.equal(maps[-2][1], maps[-1][1]):  # the last stage is the last map
            maps.pop()
    return maps


def cam_layer(maps: Sequence[tuple[str, Tensor]]) -> str:
    """The map Grad-CAM reads: the deepest at least ``MIN_CAM_SIDE`` a side, else the largest."""
    big = [name for name, m in maps if min(m.shape[-2:]) >= MIN_CAM_SIDE]
    if big:
        return big[-1]
    return max(maps, key=lambda nm: min(nm[1].shape[-2:]))[0]


def _unit(maps: Tensor) -> Tensor:
    """(N, H, W) evidence -> its positive part scaled to [0, 1] per image (zero stays zero)."""
    maps = maps.clamp(min=0)
    top = maps.flatten(1).amax(dim=1).clamp(min=1e-12).view(-1, 1, 1)
    return maps / top


def attribution_maps(
    cam: CamModel, x: Tensor, target: Tensor, layer: str | None = None
) -> dict[str, Tensor]:
    """Grad-CAM and occlusion maps (N, H, W) in [0, 1] of the classes ``target`` (N,) for
    images ``x`` (normalised, as the model takes them). ``layer``: the stage Grad-CAM reads
    (by default as :func:`cam_layer` chooses)."""
    from captum.attr import LayerAttribution, LayerGradCam, Occlusion

    layers = dict(stage_layers(cam))
    layer = layer or cam_layer(stage_maps(cam, x))
    grad_cam = LayerGradCam(cam, layers[layer]).attribute(x, target=target, relu_attributions=True)
    grad_cam = LayerAttribution.interpolate(grad_cam, tuple(x.shape[-2:]), "bilinear")
    window = max(2, min(x.shape[-2:]) // OCCLUSION_GRID)
    with torch.no_grad():
        occlusion = Occlusion(cam).attribute(
            x,
            sliding_window_shapes=(x.shape[1], window, window),
            strides=(x.shape[1], window, window),
            baselines=0.0,
            target=target,
            perturbations_per_eval=32,
        )
    return {"Grad-CAM": _unit(grad_cam[:, 0].detach()), "occlusion": _unit(occlusion.sum(1))}


def first_conv(model: nn.Module) -> nn.Conv2d | None:
    """The stem conv named by the model's ``default_cfg['first_conv']``, else its first conv."""
    prefixes = (getattr(model, "default_cfg", None) or {}).get("first_conv") or ()
    for prefix in (prefixes,) if isinstance(prefixes, str) else prefixes:
        try:
            module = model.get_submodule(prefix)
        except AttributeError:
            continue
        if isinstance(module, nn.Conv2d):
            return module
    return next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)


@dataclass(frozen=True)
class Target:
    """A class to explain: its index and a label for titles."""

    index: int
    label: str


def resolve_class(spec: str, class_names: Sequence[str]) -> Target:
    """``--class NAME|INDEX`` -> a :class:`Target`; an unknown one lists the valid choices."""
    if spec in class_names:
        return Target(list(class_names).index(spec), spec)
    if re.fullmatch(r"\d+", spec) and int(spec) < len(class_names):
        return Target(int(spec), class_names[int(spec)])
    shown = ", ".join(class_names[:12]) + (", ..." if len(class_names) > 12 else "")
    raise ConfigError(
        f"--class {spec!r} is neither a class name nor an index 0..{len(class_names) - 1} of "
        f"this model; its classes: {shown}"
    )


def _display(x: Tensor, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """A normalised (C, H, W) image back in [0, 1]: (H, W, 3) for RGB, else (H, W) grey."""
    m = torch.tensor(mean, dtype=x.dtype).view(-1, 1, 1)
    s = torch.tensor(std, dtype=x.dtype).view(-1, 1, 1)
    img = (x.detach().cpu() * s + m).clamp(0, 1)
    return img.permute(1, 2, 0).numpy() if img.shape[0] == 3 else img.mean(0).numpy()


def filter_images(conv: nn.Conv2d) -> tuple[list[np.ndarray], str]:
    """Up to ``MAX_FILTERS`` first-layer filters, each scaled to [0, 1]: (kH, kW, 3) in
    colour for RGB inputs, else their channels' mean (kH, kW) in grey; and what they are."""
    w = conv.weight.detach().float().cpu()[:MAX_FILTERS]
    w = w if w.shape[1] == 3 else w.mean(1, keepdim=True)
    lo = w.flatten(1).amin(1).view(-1, 1, 1, 1)
    hi = w.flatten(1).amax(1).view(-1, 1, 1, 1)
    w = (w - lo) / (hi - lo).clamp(min=1e-12)
    images = [f.permute(1, 2, 0).numpy() for f in w]
    kh, kw = conv.kernel_size
    what = (
        f"{min(conv.out_channels, MAX_FILTERS)} of {conv.out_channels} filters, "
        f"{kh}x{kw}x{conv.in_channels}"
    )
    return [i if i.shape[2] == 3 else i[:, :, 0] for i in images], what


def strongest_channels(m: Tensor) -> list[np.ndarray]:
    """The ``MAPS_PER_STAGE`` most active channels of one image's map (C, H, W), each scaled
    to [0, 1]."""
    order = m.flatten(1).mean(1).argsort(descending=True)[:MAPS_PER_STAGE]
    channels = []
    for c in order:
        ch = m[c].float().cpu()
        channels.append(((ch - ch.min()) / (ch.max() - ch.min()).clamp(min=1e-12)).numpy())
    return channels


def explain(
    model: nn.Module,
    images: Tensor,
    *,
    names: Sequence[str],
    class_names: Sequence[str],
    mean: Sequence[float],
    std: Sequence[float],
    out_dir: str | Path,
    target: Target | None = None,
) -> list[Path]:
    """Write the pictures of ``images`` (normalised (N, C, H, W), named ``names``) into
    ``out_dir``: ``NAME.cam.png`` (Grad-CAM and occlusion overlays for the predicted class,
    and for ``target`` when given), ``NAME.stages.png`` (per-stage feature maps) and
    ``filters.png`` (the first layer's filters). Returns the paths written."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    cam = CamModel(model.eval())
    with torch.no_grad():
        logits = cam(images).float()
    if logits.shape[1] != len(class_names):
        raise ConfigError(
            f"the model gives {logits.shape[1]} output(s) for {len(class_names)} classes: "
            f"explain takes a classifier (not a regression run)"
        )
    probs = logits.softmax(1)
    maps = stage_maps(cam, images)
    layer = cam_layer(maps)
    predicted = probs.argmax(1)
    wanted = [("predicted", predicted)]
    if target is not None:
        wanted.append((f"class {target.label}", torch.full_like(predicted, target.index)))
    found = {label: attribution_maps(cam, images, t, layer) for label, t in wanted}
    from cnnzoo.analysis import plots  # matplotlib only when pictures are drawn

    written = []
    conv = first_conv(model)
    if conv is not None:
        conv_name = next(n for n, m in model.named_modules() if m is conv)
        filters, what = filter_images(conv)
        written.append(
            plots.plot_filters(
                filters,
                f"first layer {conv_name}: {what}",
                out_dir / "filters.png",
                cell=FILTER_CELL,
            )
        )
    for i, name in enumerate(names):
        image = _display(images[i], mean, std)
        p = int(predicted[i])
        panels = [
            (f"{method}: {label}" if label != "predicted" else f"{method}: {class_names[p]}", m[i])
            for label, by_method in found.items()
            for method, m in ((k, v.cpu().numpy()) for k, v in by_method.items())
        ]
        title = f"{name}: predicted {class_names[p]} ({probs[i, p]:.2f}); Grad-CAM on {layer}"
        written.append(
            plots.plot_overlays(image, panels, title, out_dir / f"{name}.cam.png", panel=PANEL)
        )
        stages = [
            (f"{n} ({m.shape[1]}x{m.shape[2]}x{m.shape[3]})", strongest_channels(m[i]))
            for n, m in maps
        ]
        written.append(
            plots.plot_stage_maps(
                stages,
                f"{name}: feature maps",
                out_dir / f"{name}.stages.png",
                columns=MAPS_PER_STAGE,
                cell=MAP_CELL,
            )
        )
    return written
