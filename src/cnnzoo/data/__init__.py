"""Datasets, statistics, augmentation and loaders.

``build_data(cfg.data, device=..., seed=...)`` returns a :class:`DataBundle` of batch
iterables; ``prepare_images`` turns image files into a model-ready batch for ``predict``.

The package is in layers (:data:`LAYERS`); a module imports only modules of its own layer or
lower ones, never a higher one, and there is no import circle, not even through an import
inside a function (``tests/data/test_layers.py`` reads every import and checks both):

=====  =============================================  ==========================================
layer  modules                                        job
=====  =============================================  ==========================================
0      ``augment.functional``, ``augment``,           augmentation kernels and ops, the
       ``stats``                                      pipeline; channel statistics
1      ``images``, ``batches``                        files to uint8 tensors (read, decode,
                                                      resize, crops); the one interface of
                                                      every batch path (BatchIterable, seeds)
2      ``splits``                                     Split, Source, DataBundle, the hold-out,
                                                      the trial subset, the no-batch check
3      ``imagefolder``, ``datasets``                  the sources: ImageFolder/ImageNet (and
                                                      their checked cache); MNIST family,
                                                      CIFAR, digits, the registry, data roots
4      ``device_loader``, ``loader``, ``stream``,     the batch paths: on the device, through
       ``shards``                                     DataLoader workers, streamed per sample,
                                                      from tar shards
5      ``build``, ``from_datasets``                   the builders: build_data (every source,
                                                      every path), bundles of one's datasets
6      ``cnnzoo.data``                                the public names
=====  =============================================  ==========================================
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

LAYERS = (
    ("augment.functional", "augment", "stats"),
    ("images", "batches"),
    ("splits",),
    ("imagefolder", "datasets"),
    ("device_loader", "loader", "stream", "shards"),
    ("build", "from_datasets"),
    ("",),  # the package itself
)

__all__ = [
    "DATASETS",
    "OPS",
    "AugContext",
    "BatchIterable",
    "ChannelStats",
    "DataBundle",
    "DeviceBatches",
    "LAYERS",
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
