"""A :class:`~cnnzoo.data.DataBundle` from torch datasets of one's own, for ``train(data=...)``.

The datasets are read once into memory as uint8 images, and then served as the built-in data
sets are (augmented on the device, seeded, resumable)::

    bundle = cnnzoo.from_datasets(train_set, test=test_set, class_names=train_set.classes)
    cnnzoo.train(cfg, data=bundle)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from cnnzoo.data.augment import AugContext, build_pipeline
from cnnzoo.data.device_loader import DeviceBatches
from cnnzoo.data.splits import DataBundle
from cnnzoo.data.stats import channel_stats
from cnnzoo.errors import DataError


def from_datasets(
    train: Dataset,
    val: Dataset | None = None,
    test: Dataset | None = None,
    *,
    class_names: Sequence[str] | None = None,
    batch_size: int = 128,
    eval_batch_size: int = 512,
    pipeline: Sequence[Mapping[str, Any]] = (),
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    device: torch.device | str = "cpu",
    seed: int = 0,
    name: str = "custom",
) -> DataBundle:
    """A data bundle of ``train`` (and ``val``, ``test``): datasets whose items are
    ``(image, label)``, the image a PIL image, a uint8 tensor (C, H, W) or a float tensor in
    [0, 1] (torchvision's ``ToTensor``), all of one size, the label an int. ``pipeline`` is a
    list of augmentation ops as in configs (``[dict(type="RandomHorizontalFlip")]``); mean and
    std default to the training images'. Without ``class_names`` the classes are 0..K-1 for
    the largest label K-1. Pass ``device`` and ``seed`` as the config's (``cfg.device``,
    ``cfg.seed``)."""
    device = torch.device(device)
    given = {"train": train, "val": val, "test": test}
    splits = {part: _read(ds, part) for part, ds in given.items() if ds is not None}
    images, labels = splits["train"]
    shape = tuple(images.shape[1:])
    for part, (other, _) in splits.items():
        if tuple(other.shape[1:]) != shape:
            raise DataError(
                f"the {part} images are {tuple(other.shape[1:])}, the train images {shape}"
            )
    num_classes = max(int(y.max()) for _, y in splits.values()) + 1
    names = [str(i) for i in range(num_classes)] if class_names is None else list(class_names)
    if len(names) < num_classes:
        raise DataError(f"{len(names)} class names for labels up to {num_classes - 1}")
    stats = channel_stats(images) if mean is None or std is None else None
    mean = tuple(float(v) for v in (stats.mean if mean is None else mean))
    std = tuple(max(float(v), 1e-6) for v in (stats.std if std is None else std))
    eigvals, eigvecs = stats.eig() if stats is not None else (None, None)
    augment = build_pipeline(list(pipeline), AugContext(len(names), mean, eigvals, eigvecs))
    out_size = augment.out_size(shape[1:])

    def batches(part: str) -> DeviceBatches | None:
        if part not in splits:
            return None
        training = part == "train"
        return DeviceBatches(
            *splits[part],
            batch_size=batch_size if training else eval_batch_size,
            device=device,
            mean=mean,
            std=std,
            out_size=out_size,
            pipeline=augment if training else None,
            shuffle=training,
            seed=seed,
        )

    return DataBundle(
        train=batches("train"),
        val=batches("val"),
        test=batches("test"),
        dataset=name,
        num_classes=len(names),
        in_chans=shape[0],
        image_size=tuple(out_size),
        class_names=names,
        mean=mean,
        std=std,
        loader="device",
    )


def _read(dataset: Dataset, part: str) -> tuple[Tensor, Tensor]:
    """Every item of ``dataset`` as uint8 images (N, C, H, W) and int64 labels (N,)."""
    try:
        count = len(dataset)
    except TypeError:
        raise DataError(f"the {part} dataset has no len(): give a map-style Dataset") from None
    if count == 0:
        raise DataError(f"the {part} dataset is empty")
    images, labels = [], []
    for i in range(count):
        image, label = dataset[i]
        images.append(_uint8(image, part, i))
        labels.append(int(label))
    try:
        return torch.stack(images), torch.tensor(labels, dtype=torch.int64)
    except RuntimeError:
        sizes = sorted({tuple(x.shape) for x in images})[:3]
        raise DataError(
            f"the {part} images differ in size ({sizes}, ...): resize them to one"
        ) from None


def _uint8(image: Any, part: str, index: int) -> Tensor:
    """One image as a uint8 tensor (C, H, W)."""
    if not isinstance(image, Tensor):  # a PIL image, or an array (H, W[, C])
        array = np.asarray(image)
        image = torch.from_numpy(array.copy())
        image = image[None] if image.dim() == 2 else image.permute(2, 0, 1)
    if image.dim() != 3:
        raise DataError(f"{part} item {index}: an image (C, H, W), got shape {tuple(image.shape)}")
    if image.dtype == torch.uint8:
        return image.contiguous()
    if image.is_floating_point():
        return (image * 255).round().clamp(0, 255).to(torch.uint8)
    raise DataError(f"{part} item {index}: images are uint8 or float in [0, 1], got {image.dtype}")
