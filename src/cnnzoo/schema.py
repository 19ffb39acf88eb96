"""The one schema of cnnzoo's configs: every key's default, accepted values and help.

Each section of a config (the runtime keys at the top level, ``log``, ``checkpoint``,
``amp``, ``data`` and its splits, ``loss``, ``optimizer``, ...) is one :class:`Section` of
:class:`Key` entries here, and nowhere else. The config loader fills in defaults and checks
values from these tables; the engine, the data side and the commands read the completed
section as it is, without defaults of their own (``cfg.seed``, never
``cfg.get("seed", 0)``). Adding a key is one line here plus the code that uses it.

Sections whose keys depend on a ``type`` (``optimizer``, ``param_scheduler``, ``loss``)
list, per type, the keys that type takes; the builders in :mod:`cnnzoo.engine` pass every
one of them on, so a key cannot be accepted and then ignored. Optional sections
(``early_stopping``, ``clip_grad``, ``lookahead``, ``ema``) are ``None`` until a config or
an override sets one of their keys; the rest then take their defaults.

This module is a leaf: it imports nothing of cnnzoo but its errors, so every layer may read it.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cnnzoo import rundir
from cnnzoo.errors import ConfigError, closest
from cnnzoo.plaindata import is_int

REQUIRED = object()  # the default of a key that every config must set itself
LIBRARY = object()  # no default here: a key left out is left to torch's own default

MAX_SEED = 2**32 - 1  # a seed must fit numpy's and torch's generators
MAX_EPOCHS = 100_000
MAX_STEPS = 10_000_000
MAX_BATCH = 1 << 20
MAX_CLASSES = 1_000_000
MAX_WORKERS = 256
MAX_IMAGE_SIZE = 4096  # larger sizes only exhaust memory (a 32-image batch at 4096^2 is 6 GB)


def is_number(x: Any) -> bool:
    """A finite int or float (not a bool, not inf or nan)."""
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


# --- what a key accepts ---------------------------------------------------------------------


class Accepts(abc.ABC):
    """What values a key takes: :meth:`check` raises one :class:`ConfigError` naming the key,
    the value and what to write instead; :meth:`describe` says it in a few words."""

    def check(self, name: str, value: Any) -> None:
        if not self.accepts(value):
            raise ConfigError(f"{name} must be {self.describe()}, got {value!r}")

    @abc.abstractmethod
    def accepts(self, value: Any) -> bool:
        """Whether ``value`` is one of the values this kind takes."""

    @abc.abstractmethod
    def describe(self) -> str:
        """The values this kind takes, as words that follow 'must be'."""


@dataclass(frozen=True)
class Bool(Accepts):
    def accepts(self, value):
        return isinstance(value, bool)

    def describe(self):
        return "True or False"


@dataclass(frozen=True)
class Int(Accepts):
    lo: int
    hi: int

    def accepts(self, value):
        return is_int(value) and self.lo <= value <= self.hi

    def describe(self):
        return f"an integer in [{self.lo}, {self.hi:,}]"


@dataclass(frozen=True)
class Number(Accepts):
    """A finite number in a range; ``lo_open``/``hi_open`` leave the ends out."""

    lo: float
    hi: float = math.inf
    lo_open: bool = False
    hi_open: bool = False
    example: str = ""

    def accepts(self, value):
        if not is_number(value):
            return False
        above = value > self.lo if self.lo_open else value >= self.lo
        below = value < self.hi if self.hi_open else value <= self.hi
        return above and below

    def describe(self):
        if math.isinf(self.hi) and not math.isinf(self.lo):
            text = f"a number {'>' if self.lo_open else '>='} {self.lo:g}"
        else:
            left, right = "(" if self.lo_open else "[", ")" if self.hi_open else "]"
            text = f"a number in {left}{self.lo:g}, {self.hi:g}{right}"
        return text + (f", e.g. {self.example}" if self.example else "")


@dataclass(frozen=True)
class Choice(Accepts):
    values: tuple

    def check(self, name, value):
        if not self.accepts(value):
            choices = ", ".join(map(repr, self.values))
            raise ConfigError(f"{name} must be one of {choices}; got {value!r}")

    def accepts(self, value):
        return any(type(value) is type(v) and value == v for v in self.values)

    def describe(self):
        return "one of " + ", ".join(map(repr, self.values))


@dataclass(frozen=True)
class Text(Accepts):
    what: str = "a string"

    def accepts(self, value):
        return isinstance(value, str) and value != ""

    def describe(self):
        return self.what


@dataclass(frozen=True)
class Maybe(Accepts):
    """``None`` or what ``inner`` accepts."""

    inner: Accepts

    def accepts(self, value):
        return value is None or self.inner.accepts(value)

    def describe(self):
        return f"None or {self.inner.describe()}"


@dataclass(frozen=True)
class Numbers(Accepts):
    """A non-empty list of numbers that ``each`` accepts (``length``: exactly that many)."""

    each: Accepts
    length: int | None = None
    what: str = ""

    def accepts(self, value):
        return (
            isinstance(value, list | tuple)
            and len(value) > 0
            and (self.length is None or len(value) == self.length)
            and all(self.each.accepts(v) for v in value)
        )

    def describe(self):
        return self.what or f"a list of {self.each.describe()}"


@dataclass(frozen=True)
class Check(Accepts):
    """A rule too particular for the kinds above: a predicate and the words for it."""

    test: Any
    what: str

    def accepts(self, value):
        return bool(self.test(value))

    def describe(self):
        return self.what


# --- keys and sections ----------------------------------------------------------------------


@dataclass(frozen=True)
class Key:
    """One config key: its default (:data:`REQUIRED`: the config must set it; :data:`LIBRARY`:
    torch's own when left out), what it accepts and one line of help."""

    default: Any
    accepts: Accepts
    help: str


@dataclass(frozen=True)
class Section:
    """The keys of one section, by name; ``optional``: the section is ``None`` unless set."""

    name: str
    keys: Mapping[str, Key]
    help: str
    optional: bool = False
    extra: tuple[str, ...] = field(default=())  # keys checked elsewhere (a model's arguments)

    def defaults(self) -> dict[str, Any]:
        """The keys that have a default, with it (a fresh copy each time)."""
        return {k: _copy(key.default) for k, key in self.keys.items() if _has_default(key)}

    def dotted(self, key: str) -> str:
        return f"{self.name}.{key}" if self.name else key


def _has_default(key: Key) -> bool:
    return key.default is not REQUIRED and key.default is not LIBRARY


def copy_default(value: Any) -> Any:
    """A fresh copy of a key's default (dicts and lists copied all the way down)."""
    return _copy(value)


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def _workflow_ok(value: Any) -> bool:
    return (
        isinstance(value, list | tuple)
        and any(isinstance(s, list | tuple) and s and s[0] == "train" for s in value)
        and all(
            isinstance(s, list | tuple)
            and len(s) == 2
            and s[0] in ("train", "val")
            and is_int(s[1])
            and 0 < s[1] <= MAX_EPOCHS
            for s in value
        )
    )


def _device_ok(value: Any) -> bool:
    return value in ("auto", "cpu", "cuda") or (
        isinstance(value, str) and value.startswith("cuda:") and value[5:].isdigit()
    )


def _image_size_ok(value: Any) -> bool:
    sizes = [value] if is_int(value) else value if isinstance(value, list | tuple) else None
    if sizes is None or (not is_int(value) and len(sizes) != 2):
        return False
    return all(is_int(s) and 0 < s <= MAX_IMAGE_SIZE for s in sizes)


def _train_subset_ok(value: Any) -> bool:
    return (is_int(value) and value >= 1) or (isinstance(value, float) and 0 < value <= 1)


def _folder_ok(value: Any) -> bool:
    return isinstance(value, str) and value not in ("", ".", "..") and not set("/\\") & set(value)


def _pipeline_ok(value: Any) -> bool:
    return isinstance(value, list | tuple) and all(
        isinstance(op, Mapping) and "type" in op for op in value
    )


def _positive_lrs(value: Any) -> bool:
    values = value if isinstance(value, list | tuple) and value else [value]
    return all(is_number(v) and v > 0 for v in values)


def _weights_ok(value: Any) -> bool:
    return value in (None, False, True) or (isinstance(value, str) and value != "")


PROBABILITY = Number(0.0, 1.0)
UNIT_OPEN = Number(0.0, 1.0, lo_open=True, hi_open=True)
POSITIVE = Number(0.0, math.inf, lo_open=True)
NON_NEGATIVE = Number(0.0)
MODE = Choice(("min", "max"))
METRIC = Text("a metric name such as 'val/top1' or 'val/loss'")
WEIGHTS = Check(
    _weights_ok, "None, 'torchvision', 'timm', 'hf-hub:OWNER/NAME' or the path of a checkpoint file"
)

RUNTIME = Section(
    "",
    dict(
        seed=Key(
            0, Int(0, MAX_SEED), "seed of every random generator (weights, order, augmentation)"
        ),
        deterministic=Key(False, Bool(), "torch.use_deterministic_algorithms and cudnn settings"),
        device=Key(
            "auto", Check(_device_ok, "'auto', 'cpu', 'cuda' or 'cuda:N'"), "where to train"
        ),
        work_dir=Key(
            "runs", Text("a folder path"), "parent of run directories: WORK_DIR/CONFIG/TIME/"
        ),
        workflow=Key(
            [("train", 1), ("val", 1)],
            Check(
                _workflow_ok,
                "a list of (phase, epochs) with phase 'train' or 'val', a 'train' among them, e.g. [('train', 1), ('val', 1)]",
            ),
            "validate after every N training epochs",
        ),
        channels_last=Key(True, Bool(), "NHWC memory format (faster conv steps on CPUs and GPUs)"),
        compile=Key(False, Bool(), "torch.compile the model"),
        nan_policy=Key(
            "stop",
            Choice(("stop", "skip")),
            "on a non-finite loss: stop, or skip the step and halve the LR",
        ),
        sync_bn=Key(False, Bool(), "DDP on GPUs: BatchNorm statistics over the global batch"),
        sync_every=Key(
            1, Int(1, MAX_STEPS), "optimizer steps between syncs (finite-loss check, stop signals)"
        ),
        load_from=Key(None, WEIGHTS, "weights to start from, as model.pretrained takes them"),
    ),
    "runtime settings shared by every experiment",
)

LOG = Section(
    "log",
    dict(
        interval=Key(50, Int(1, MAX_STEPS), "steps between progress lines and TensorBoard points"),
        tensorboard=Key(True, Bool(), "write TensorBoard events to RUN/tb/"),
        charts=Key(
            True,
            Bool(),
            "draw the run charts (learning curves, confusion matrix) at the end (False: no matplotlib)",
        ),
    ),
    "progress output",
)

CHECKPOINT = Section(
    "checkpoint",
    dict(
        monitor=Key("val/top1", METRIC, f"the metric that decides the best epoch ({rundir.BEST})"),
        mode=Key("max", MODE, "whether a larger or a smaller monitor value is better"),
    ),
    f"which epoch is kept as {rundir.BEST}",
)

EARLY_STOPPING = Section(
    "early_stopping",
    dict(
        monitor=Key("val/loss", METRIC, "the metric watched"),
        mode=Key("min", MODE, "whether a larger or a smaller value is better"),
        patience=Key(5, Int(0, MAX_EPOCHS), "validations without improvement before stopping"),
        min_delta=Key(0.0, NON_NEGATIVE, "the least change that counts as an improvement"),
    ),
    "stop when the monitored metric stops improving",
    optional=True,
)

AMP = Section(
    "amp",
    dict(
        enabled=Key(False, Bool(), "autocast mixed precision"),
        dtype=Key(
            "bfloat16",
            Choice(("bfloat16", "float16")),
            "autocast dtype (float16 scales the loss on CUDA)",
        ),
    ),
    "mixed precision",
)

AUTO_SCALE_LR = Section(
    "auto_scale_lr",
    dict(
        enable=Key(False, Bool(), "scale learning rates by global batch / base_batch_size"),
        base_batch_size=Key(
            None,
            Maybe(Int(1, MAX_BATCH * 1024)),
            "the batch the LR was tuned for (None: the config's own)",
        ),
    ),
    "the linear scaling rule",
)

LOOKAHEAD = Section(
    "lookahead",
    dict(
        k=Key(5, Int(1, MAX_STEPS), "fast steps between slow-weight updates"),
        alpha=Key(0.5, Number(0.0, 1.0, lo_open=True), "slow-weight step size"),
        ramp=Key(
            False,
            Bool(),
            "airbench's schedule: the step size falls from 1 to alpha over the run, cubically",
        ),
    ),
    "Lookahead weight averaging (airbench's EMA)",
    optional=True,
)

EMA = Section(
    "ema",
    dict(
        decay=Key(
            0.9998,
            Number(0.0, 1.0, lo_open=True, hi_open=True, example="0.9998"),
            "EMA decay per update",
        ),
        every=Key(1, Int(1, MAX_STEPS), "optimizer steps between EMA updates"),
        warmup=Key(False, Bool(), "ramp the decay up as (1 + t) / (10 + t) (timm's warm-up)"),
    ),
    "model EMA, validated and tested beside the raw weights (val_ema/, test_ema/)",
    optional=True,
)

CLIP_GRAD = Section(
    "clip_grad",
    dict(
        max_norm=Key(1.0, POSITIVE, "the largest gradient norm"),
        norm_type=Key(2.0, POSITIVE, "the p of the p-norm"),
    ),
    "gradient norm clipping",
    optional=True,
)

TRAIN_CFG = Section(
    "train_cfg",
    dict(
        max_epochs=Key(REQUIRED, Int(1, MAX_EPOCHS), "epochs to train"),
        accumulate=Key(1, Int(1, MAX_STEPS), "batches per optimizer step (gradient accumulation)"),
    ),
    "the length of training",
)

# Built-in datasets: number of classes, native channels and native (H, W).
DATASETS: dict[str, tuple[int | None, int | None, tuple[int, int] | None]] = dict(
    digits=(10, 1, (8, 8)),
    mnist=(10, 1, (28, 28)),
    fashion_mnist=(10, 1, (28, 28)),
    cifar10=(10, 3, (32, 32)),
    cifar100=(100, 3, (32, 32)),
    imagefolder=(None, None, None),
    imagenet=(1000, 3, None),
)
LOADERS = ("auto", "device", "dataloader", "stream")
DATA_FORMATS = ("folder", "shards")
DECODERS = ("workers", "device")

DATA = Section(
    "data",
    dict(
        type=Key(REQUIRED, Choice(tuple(DATASETS)), "the dataset"),
        root=Key(
            None,
            Maybe(Text("a folder path")),
            "where it is (None: $CNNZOO_DATA or ~/.cache/cnnzoo/data)",
        ),
        download=Key(True, Bool(), "download a built-in dataset that is missing"),
        val_split=Key(0.1, Number(0.0, 1.0, hi_open=True), "fraction of the training set held out"),
        split_seed=Key(0, Int(0, MAX_SEED), "seed of the validation split and of train_subset"),
        image_size=Key(
            None,
            Maybe(
                Check(
                    _image_size_ok, f"an integer or (height, width), each at most {MAX_IMAGE_SIZE}"
                )
            ),
            "resize images to this (None: native size)",
        ),
        in_chans=Key(
            None, Choice((None, 1, 3)), "convert images to 1 or 3 channels (None: native)"
        ),
        mean=Key(
            None,
            Maybe(Numbers(Number(-math.inf), what="a list of numbers, one per channel")),
            "normalisation mean (None: computed)",
        ),
        std=Key(
            None,
            Maybe(Numbers(POSITIVE, what="a list of positive numbers, one per channel")),
            "normalisation std (None: computed)",
        ),
        loader=Key(
            "auto", Choice(LOADERS), "how batches are made (auto: on the device when it fits)"
        ),
        num_workers=Key(2, Int(0, MAX_WORKERS), "DataLoader / stream worker processes"),
        skip_bad=Key(False, Bool(), "leave out unreadable images instead of stopping"),
        train_subset=Key(
            None,
            Maybe(
                Check(
                    _train_subset_ok,
                    "a fraction in (0, 1] (e.g. 0.1) or a number of training images (e.g. 5000)",
                )
            ),
            "train on part of the training set",
        ),
        folder=Key(
            None,
            Maybe(Check(_folder_ok, "the name of one subfolder of $CNNZOO_DATA")),
            "an ImageFolder's subfolder of $CNNZOO_DATA",
        ),
        format=Key(
            "folder", Choice(DATA_FORMATS), "image folders, or tar shards made by `cnnzoo shards`"
        ),
        resize=Key(
            None, Maybe(Int(1, MAX_IMAGE_SIZE)), "streaming: shorter side before the centre crop"
        ),
        decode=Key(
            "workers", Choice(DECODERS), "streaming: decode JPEGs in the workers or on the device"
        ),
    ),
    "the dataset and how it is read",
    extra=("train", "val", "test"),
)
SPLITS = dict(
    train=Section(
        "data.train",
        dict(
            batch_size=Key(128, Int(1, MAX_BATCH), "images per batch and process"),
            pipeline=Key(
                [],
                Check(_pipeline_ok, "a list of dict(type=..., ...)"),
                "augmentation ops, in order",
            ),
            drop_last=Key(False, Bool(), "drop the last partial batch"),
        ),
        "the training split",
    ),
    val=Section(
        "data.val",
        dict(
            batch_size=Key(512, Int(1, MAX_BATCH), "images per batch and process"),
            drop_last=Key(False, Bool(), "drop the last partial batch"),
        ),
        "the validation split",
    ),
    test=Section(
        "data.test",
        dict(
            batch_size=Key(512, Int(1, MAX_BATCH), "images per batch and process"),
            drop_last=Key(False, Bool(), "drop the last partial batch"),
            tta_flip=Key(False, Bool(), "test-time augmentation: average with the mirrored image"),
            tta_translate=Key(
                0, Int(0, MAX_IMAGE_SIZE), "test-time augmentation: also shifted by N pixels"
            ),
            tta_fraction=Key(
                1.0,
                PROBABILITY,
                "share of each batch, least confident first, that gets the test-time views",
            ),
        ),
        "the test split",
    ),
)

MODEL = Section(
    "model",
    dict(
        type=Key(REQUIRED, Text("a registered model name (see `cnnzoo models`)"), "the network"),
        num_classes=Key(REQUIRED, Int(1, MAX_CLASSES), "outputs of the classifier (1: regression)"),
        in_chans=Key(REQUIRED, Int(1, MAX_CLASSES), "input channels"),
        pretrained=Key(None, WEIGHTS, "weights to start from, adapted to the model"),
        pretrained_strict=Key(
            True, Bool(), "refuse weights that do not fit (False: load what fits)"
        ),
    ),
    "the network and its architecture arguments",
)


# --- sections whose keys depend on their type -----------------------------------------------


@dataclass(frozen=True)
class Typed:
    """A section whose ``type`` decides its keys: ``types`` maps each type to its keys."""

    name: str
    types: Mapping[str, tuple[str, ...]]
    keys: Mapping[str, Key]
    help: str

    def keys_of(self, kind: str) -> tuple[str, ...]:
        return ("type", *self.types[kind])

    def defaults(self, kind: str) -> dict[str, Any]:
        return {
            k: _copy(self.keys[k].default) for k in self.types[kind] if _has_default(self.keys[k])
        }


REGRESSION_LOSSES = ("mae", "mse", "rmse", "huber")
LOSS = Typed(
    "loss",
    dict(
        cross_entropy=("label_smoothing", "aux_weight"),
        mae=("aux_weight",),
        mse=("aux_weight",),
        rmse=("aux_weight",),
        huber=("aux_weight", "delta"),
    ),
    dict(
        label_smoothing=Key(
            0.0, Number(0.0, 1.0, hi_open=True), "soft targets: 1 - e on the label"
        ),
        aux_weight=Key(0.3, NON_NEGATIVE, "weight of auxiliary heads' losses (GoogLeNet)"),
        delta=Key(1.0, POSITIVE, "Huber's threshold between the quadratic and linear parts"),
    ),
    "the training criterion",
)

# Each optimizer's keys besides ``type``; the values are torch's defaults, left to torch
# (only the keys a config sets are passed on). The keys of the biases and norm layers
# (``_PARAMWISE_KEYS``, mmengine's paramwise_cfg names) are cnnzoo's own.
_PARAMWISE_KEYS = ("decay_norm_and_bias", "norm_lr_mult", "norm_decay_mult")
OPTIMIZER = Typed(
    "optimizer",
    dict(
        SGD=(
            "lr",
            "momentum",
            "dampening",
            "nesterov",
            "weight_decay",
            "fused",
            *_PARAMWISE_KEYS,
        ),
        Adam=("lr", "betas", "eps", "weight_decay", "amsgrad", "fused", *_PARAMWISE_KEYS),
        AdamW=("lr", "betas", "eps", "weight_decay", "amsgrad", "fused", *_PARAMWISE_KEYS),
        Adadelta=("lr", "rho", "eps", "weight_decay", *_PARAMWISE_KEYS),
        # PyTorch's RMSprop adds eps outside the square root, TensorFlow's inside: TF's eps=1e-3
        # (MobileNetV3, EfficientNet) is about eps=0.0316 here, as torchvision's recipes use
        RMSprop=(
            "lr",
            "alpha",
            "eps",
            "weight_decay",
            "momentum",
            "centered",
            *_PARAMWISE_KEYS,
        ),
        # Muon on weight matrices and conv filters, ``aux`` (MUON_AUX) on the rest
        Muon=("lr", "momentum", "nesterov", "weight_decay", "ns_steps", "adjust_lr", "aux"),
    ),
    dict(
        lr=Key(REQUIRED, POSITIVE, "the learning rate"),
        # 5e-4 (SGD) to 0.05 (AdamW) in the papers
        weight_decay=Key(0.0, PROBABILITY, "L2 penalty (decoupled for AdamW)"),
        momentum=Key(LIBRARY, Number(0.0, 1.0, hi_open=True), "momentum factor"),
        dampening=Key(LIBRARY, PROBABILITY, "dampening of the momentum"),
        nesterov=Key(LIBRARY, Bool(), "Nesterov momentum"),
        betas=Key(
            LIBRARY,
            Numbers(Number(0.0, 1.0, hi_open=True), 2, "two numbers in [0, 1), e.g. (0.9, 0.999)"),
            "Adam's running-average coefficients",
        ),
        eps=Key(LIBRARY, UNIT_OPEN, "term added to the denominator"),
        rho=Key(LIBRARY, PROBABILITY, "Adadelta's running-average coefficient"),
        alpha=Key(LIBRARY, Number(0.0, 1.0, lo_open=True), "RMSprop's smoothing constant"),
        amsgrad=Key(LIBRARY, Bool(), "the AMSGrad variant"),
        centered=Key(LIBRARY, Bool(), "centred RMSprop"),
        fused=Key(None, Maybe(Bool()), "fused kernels (None: on CUDA, where torch has them)"),
        decay_norm_and_bias=Key(
            True, Bool(), "weight decay on norm layers and biases too (False: on weights only)"
        ),
        # airbench94 trains its BN shifts 64x faster with the same shrink per step:
        # norm_lr_mult=64, norm_decay_mult=1/64
        norm_lr_mult=Key(1.0, POSITIVE, "learning-rate factor of the normalisation layers"),
        norm_decay_mult=Key(1.0, NON_NEGATIVE, "weight-decay factor of the normalisation layers"),
        ns_steps=Key(5, Int(1, 20), "Muon's Newton-Schulz iterations"),
        adjust_lr=Key(
            "original",
            Maybe(Choice(("original", "match_rms_adamw"))),
            "Muon's lr factor by shape: 'original' sqrt(max(1, rows/cols)), "
            "'match_rms_adamw' 0.2*sqrt(max(rows, cols)), None: 1",
        ),
        aux=Key(
            dict(type="SGD"),
            Check(lambda v: isinstance(v, Mapping), "a dict, e.g. dict(type='SGD', lr=0.05)"),
            "Muon's optimizer for biases, norms, embeddings and the head (keys: optimizer.aux.*)",
        ),
    ),
    "the optimizer",
)

# ``optimizer.aux`` of Muon: the update of the parameters that are not weight matrices.
# cnnzoo implements both updates itself (engine/muon.py), so every default is concrete.
MUON_AUX = Typed(
    "optimizer.aux",
    dict(
        SGD=("lr", "momentum", "dampening", "nesterov", "weight_decay"),
        AdamW=("lr", "betas", "eps", "weight_decay"),
    ),
    dict(
        lr=Key(None, Maybe(POSITIVE), "the learning rate (None: optimizer.lr)"),
        momentum=Key(0.9, Number(0.0, 1.0, hi_open=True), "momentum factor"),
        dampening=Key(0.0, PROBABILITY, "dampening of the momentum"),
        nesterov=Key(True, Bool(), "Nesterov momentum"),
        betas=Key(
            (0.9, 0.999),
            Numbers(Number(0.0, 1.0, hi_open=True), 2, "two numbers in [0, 1), e.g. (0.9, 0.999)"),
            "AdamW's running-average coefficients",
        ),
        eps=Key(1e-8, UNIT_OPEN, "term added to the denominator"),
        weight_decay=Key(0.0, PROBABILITY, "L2 penalty (decoupled for AdamW)"),
    ),
    "Muon's auxiliary optimizer",
)

SCHEDULER = Typed(
    "param_scheduler",
    dict(
        StepLR=("step_size", "gamma", "warmup_epochs"),
        MultiStepLR=("milestones", "gamma", "warmup_epochs"),
        CosineAnnealingLR=("min_lr", "warmup_epochs"),
        # warms up by its own pct_start
        OneCycleLR=("max_lr", "pct_start", "anneal_strategy", "div_factor", "final_div_factor"),
        ReduceLROnPlateau=("monitor", "mode", "factor", "patience"),
    ),
    dict(
        step_size=Key(REQUIRED, Int(1, MAX_EPOCHS), "epochs between LR drops"),
        milestones=Key(
            REQUIRED,
            Check(
                lambda m: (
                    isinstance(m, list | tuple)
                    and all(is_int(x) and 0 < x <= MAX_EPOCHS for x in m)
                    and list(m) == sorted(m)
                ),
                "increasing epoch numbers, e.g. [8, 11]",
            ),
            "epochs after which the LR drops",
        ),
        gamma=Key(0.1, Number(0.0, 1.0, lo_open=True), "factor of each drop"),
        warmup_epochs=Key(0, Int(0, MAX_EPOCHS), "epochs of linear warm-up"),
        min_lr=Key(0.0, NON_NEGATIVE, "the LR that the cosine anneals to"),
        max_lr=Key(
            None,
            Maybe(Check(_positive_lrs, "a number > 0, or one per parameter group")),
            "OneCycle's peak LR (None: optimizer.lr)",
        ),
        pct_start=Key(0.3, UNIT_OPEN, "OneCycle's share of steps spent warming up"),
        # airbench94's triangle (straight up from 0.2 of the peak, then straight down):
        # anneal_strategy='linear', div_factor=5
        anneal_strategy=Key(
            LIBRARY, Choice(("cos", "linear")), "OneCycle's curve up and down (torch: 'cos')"
        ),
        div_factor=Key(LIBRARY, Number(1.0, math.inf), "OneCycle's peak / starting LR (torch: 25)"),
        final_div_factor=Key(LIBRARY, POSITIVE, "OneCycle's starting / final LR (torch: 1e4)"),
        monitor=Key("val/loss", METRIC, "ReduceLROnPlateau's metric"),
        mode=Key("min", MODE, "whether a larger or a smaller metric is better"),
        factor=Key(0.1, UNIT_OPEN, "ReduceLROnPlateau's factor"),
        patience=Key(10, Int(0, MAX_EPOCHS), "validations without improvement before a drop"),
    ),
    "the learning-rate schedule (None: constant)",
)

# the runtime's own sections, which every config has (optional ones as None)
SECTIONS: dict[str, Section] = {
    s.name: s
    for s in (LOG, CHECKPOINT, EARLY_STOPPING, AMP, AUTO_SCALE_LR, LOOKAHEAD, EMA, CLIP_GRAD)
}
TYPED: dict[str, Typed] = {s.name: s for s in (LOSS, OPTIMIZER, SCHEDULER)}
TOP_LEVEL = (
    *RUNTIME.keys,
    *SECTIONS,
    "model",
    "data",
    "optimizer",
    "train_cfg",
    "loss",
    "param_scheduler",
)
NEEDED = ("model", "data", "optimizer", "train_cfg")  # sections every config sets itself
DEFAULT_LOSS = "cross_entropy"


# --- completing a config --------------------------------------------------------------------


def complete(cfg: dict[str, Any]) -> dict[str, Any]:
    """Fill in every default the schema has, in place, and return ``cfg``: runtime keys,
    the sections that are set (an optional section that is None stays None), the data
    section and its splits, and the keys of each typed section's type. Values already
    there are kept as they are (they are checked afterwards, not here)."""
    for key, value in RUNTIME.defaults().items():
        cfg.setdefault(key, value)
    for name, section in SECTIONS.items():
        if name not in cfg:
            cfg[name] = None if section.optional else {}
        if isinstance(cfg[name], dict):
            _fill(cfg[name], section.defaults())
    cfg.setdefault("loss", {"type": DEFAULT_LOSS})
    cfg.setdefault("param_scheduler", None)
    for name, typed in TYPED.items():
        part = cfg.get(name)
        if (
            isinstance(part, dict)
            and isinstance(part.get("type"), str)
            and part["type"] in typed.types
        ):
            _fill(part, typed.defaults(part["type"]))
    if isinstance(cfg.get("model"), dict):
        _fill(cfg["model"], MODEL.defaults())
    if isinstance(cfg.get("train_cfg"), dict):
        _fill(cfg["train_cfg"], TRAIN_CFG.defaults())
    if isinstance(cfg.get("data"), dict):
        complete_data(cfg["data"])
    return cfg


def complete_data(data: dict[str, Any]) -> dict[str, Any]:
    """The data section with every default filled in (in place), its splits included."""
    _fill(data, DATA.defaults())
    for split, section in SPLITS.items():
        data.setdefault(split, {})
        if isinstance(data[split], dict):
            _fill(data[split], section.defaults())
    return data


def _fill(part: dict[str, Any], defaults: Mapping[str, Any]) -> None:
    for key, value in defaults.items():
        part.setdefault(key, value)


def check_section(section: Section, values: Mapping[str, Any], extra: Iterable[str] = ()) -> None:
    """Check the keys of ``values`` against ``section``: unknown keys (with the closest names),
    missing required keys and every value."""
    check_keys(section.name, values, (*section.keys, *section.extra, *extra))
    for key, spec in section.keys.items():
        if key in values:
            spec.accepts.check(section.dotted(key), values[key])
        elif spec.default is REQUIRED:
            raise ConfigError(f"{section.dotted(key)} is missing: {spec.help}")


def check_keys(name: str, values: Mapping[str, Any], allowed: Iterable[str]) -> None:
    """Refuse a key of ``values`` that ``allowed`` does not name (``name``: the section's)."""
    allowed = set(allowed)
    for key in values:
        if key not in allowed:
            dotted = [f"{name}.{k}" if name else k for k in sorted(allowed)]
            raise unknown_key(f"{name}.{key}" if name else key, dotted)


def unknown_key(key: str, valid: Iterable[str]) -> ConfigError:
    """``unknown config key 'KEY'; did you mean: ...?`` with the closest of ``valid``."""
    hint = closest(key, list(valid), n=3)
    return ConfigError(
        f"unknown config key {key!r}" + (f"; did you mean: {', '.join(hint)}?" if hint else "")
    )


def describe_keys() -> list[str]:
    """Every key of the schema as ``key = default  # help`` lines, section by section."""
    lines = [f"# {RUNTIME.help}"]
    lines += [_describe(RUNTIME.dotted(k), key) for k, key in RUNTIME.keys.items()]
    sections = [*SECTIONS.values(), TRAIN_CFG, MODEL, DATA, *SPLITS.values()]
    for section in sections:
        optional = " (None unless set; setting a key turns it on)" if section.optional else ""
        lines += ["", f"# {section.name}: {section.help}{optional}"]
        lines += [_describe(section.dotted(k), key) for k, key in section.keys.items()]
    for typed in TYPED.values():
        lines += ["", f"# {typed.name}: {typed.help}; its type decides its keys"]
        lines += [f"#   {kind}: {', '.join(keys)}" for kind, keys in typed.types.items()]
        lines += [_describe(f"{typed.name}.{k}", key) for k, key in typed.keys.items()]
    lines += ["", f"# {MUON_AUX.name}: {MUON_AUX.help}; its type decides its keys"]
    lines += [f"#   {kind}: {', '.join(keys)}" for kind, keys in MUON_AUX.types.items()]
    lines += [_describe(f"{MUON_AUX.name}.{k}", key) for k, key in MUON_AUX.keys.items()]
    return lines


def _describe(name: str, key: Key) -> str:
    if key.default is REQUIRED:
        default = "(required)"
    elif key.default is LIBRARY:
        default = "(torch's default)"
    else:
        default = repr(key.default)
    return f"{name} = {default}  # {key.help}; {key.accepts.describe()}"
