"""Datasets, statistics, augmentation and loaders.

``build_data(cfg.data, device=..., seed=...)`` returns a :class:`DataBundle` of batch
iterables; ``prepare_images`` turns image files into a model-ready batch for ``predict``.
"""

from cnnzoo.data.augment import OPS, AugContext, Pipeline, build_pipeline, check_pipeline
from cnnzoo.data.batches import BatchIterable
from cnnzoo.data.build import build_data, describe
from cnnzoo.data.datasets import (
    READERS,
    data_root,
    dataset_root,
    read_cifar_batch,
    read_dataset,
    read_idx,
)
from cnnzoo.data.device_loader import DeviceBatches
from cnnzoo.data.from_datasets import from_datasets
from cnnzoo.data.images import decode_image, normalize, prepare_images
from cnnzoo.data.loader import LoaderBatches
from cnnzoo.data.splits import DataBundle, Source, Split, split_train_val
from cnnzoo.data.stats import ChannelStats, channel_stats
from cnnzoo.machine import cache_dir

DATASETS = tuple(READERS)

__all__ = [
    "DATASETS",
    "OPS",
    "AugContext",
    "BatchIterable",
    "ChannelStats",
    "DataBundle",
    "DeviceBatches",
    "LoaderBatches",
    "Pipeline",
    "READERS",
    "Source",
    "Split",
    "build_data",
    "from_datasets",
    "build_pipeline",
    "cache_dir",
    "channel_stats",
    "check_pipeline",
    "data_root",
    "dataset_root",
    "decode_image",
    "describe",
    "normalize",
    "prepare_images",
    "read_cifar_batch",
    "read_dataset",
    "read_idx",
    "split_train_val",
]
