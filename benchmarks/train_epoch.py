"""One training epoch end to end: cnnzoo's engine against the usual torchvision pipeline with
the same model, batch, optimizer and augmentation (benchmark 1 of issue 4).

cnnzoo: ``cnnzoo.engine.train`` on the shipped config (data held in memory as uint8 and
augmented a whole batch at a time), one epoch, no validation; the time is the engine's own
epoch time. torchvision: ``datasets.MNIST`` / ``datasets.ImageFolder`` with per-sample PIL
transforms (``RandomCrop`` with padding, ``RandomHorizontalFlip`` for CIFAR, ``ToTensor``,
``Normalize``), a shuffling ``DataLoader`` with ``--tv-workers`` worker processes and the plain
loop (forward, cross-entropy, zero_grad, backward, step, running accuracy). Both train the same
cnnzoo model from the same initial weights on the full training set. The two are run in turns
(A, B, B, A, ...) so that changes in machine load hit both alike; the ratio is the median over
the pairs of ``torchvision time / cnnzoo time`` (> 1: cnnzoo is faster).

``--options`` instead measures the speed options of the engine one at a time on the cnnzoo side
(threads, channels_last, bf16 autocast, torch.compile, fused/foreach optimizer steps,
zero_grad(set_to_none)), each as the median time of ``--steps`` training steps against the
plain step, interleaved the same way.

    python benchmarks/train_epoch.py --mnist-root DIR \\
        --cifar-root DIR/cifar10-jpeg [--cases lenet5_mnist resnet14_cifar10] \\
        [--repeats 3] [--tv-workers 2] [--output benchmarks/results/train_epoch.md]
        [--cfg-options amp.enabled=True]   # overrides for the cnnzoo side only
    python benchmarks/train_epoch.py --options [--steps 100] [--repeats 3] ...
"""

from __future__ import annotations

import argparse
import contextlib
import io
import itertools
import os
import platform
import shlex
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from _report import save_report

import cnnzoo
from cnnzoo.analysis.report import cpu_name
from cnnzoo.config import load_config, parse_cfg_options
from cnnzoo.data import build_data
from cnnzoo.engine import train
from cnnzoo.engine.optim import build_optimizer

CASES = {
    # case: (config, dataset override); the configs are the shipped ones
    "lenet5_mnist": ("lenet5_b128_20e_mnist.py", "mnist"),
    "resnet14_cifar10": ("resnet14_adam-plateau_b64_es5_cifar10.py", "cifar_jpeg"),
    # --options only: the network of the CIFAR-10 speedrun
    "airbench94_cifar10": ("speedrun/cifar10_94.py", "cifar_jpeg"),
}
EPOCH_CASES = ["lenet5_mnist", "resnet14_cifar10"]


def case_config(case: str, args: argparse.Namespace, **extra):
    """The shipped config of ``case``, trained one epoch on the whole training set, no
    validation, nothing written but the run directory in a temporary folder."""
    config, data = CASES[case]
    options = {
        "train_cfg.max_epochs": 1,
        "data.val_split": 0.0,
        "workflow": [("train", 1)],
        "checkpoint.monitor": "train/loss",
        "checkpoint.mode": "min",
        "early_stopping": None,
        "log.tensorboard": False,
        "device": "cpu",
    }
    if data == "mnist":
        options.update({"data.root": args.mnist_root, "data.download": False})
    else:
        options.update(
            {"data.type": "imagefolder", "data.root": args.cifar_root, "data.download": False,
             "data.in_chans": 3, "data.loader": "device"}
        )  # fmt: skip
    options.update(dict(parse_cfg_options(args.cfg_options)))
    options.update(extra)
    return load_config(config, options)


# ---- benchmark 1: one epoch each way --------------------------------------------------------


def cnnzoo_epoch(case: str, args: argparse.Namespace, work_dir: str) -> tuple[float, float]:
    """(epoch seconds, whole ``train`` call seconds) of one engine run of one epoch."""
    cfg = case_config(case, args, work_dir=work_dir)
    times: list[float] = []
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        train(cfg, quiet=True, callbacks=[lambda event, info: times.append(info.get("time", 0.0))
                                      if event == "epoch" else None])  # fmt: skip
    return times[-1], time.perf_counter() - start


def torchvision_dataset(case: str, args: argparse.Namespace, mean, std):
    import torchvision.datasets as tvd
    import torchvision.transforms as T

    if CASES[case][1] == "mnist":
        tf = T.Compose([T.RandomCrop(28, padding=2), T.ToTensor(), T.Normalize(mean, std)])
        return tvd.MNIST(args.mnist_root, train=True, download=False, transform=tf)
    tf = T.Compose(
        [
            T.RandomCrop(32, padding=4),
            T.RandomHorizontalFlip(),
            T.ToTensor(),
            T.Normalize(mean, std),
        ]
    )
    return tvd.ImageFolder(os.path.join(args.cifar_root, "train"), transform=tf)


def torchvision_optimizer(model: torch.nn.Module, cfg: dict) -> torch.optim.Optimizer:
    """The config's optimizer written the usual way (one parameter group)."""
    kwargs = {k: v for k, v in cfg.items() if k not in ("type", "decay_norm_and_bias")}
    return getattr(torch.optim, cfg["type"])(model.parameters(), **kwargs)


def torchvision_epoch(case: str, args: argparse.Namespace, dataset, cfg) -> float:
    torch.manual_seed(cfg.seed)
    model = cnnzoo.create_model(cfg.model.type, num_classes=10, in_chans=cfg.model.in_chans)
    optimizer = torchvision_optimizer(model, dict(cfg.optimizer))
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=cfg.data.train.batch_size, shuffle=True, num_workers=args.tv_workers
    )
    smoothing = float(cfg.loss.get("label_smoothing", 0.0))
    model.train()
    start = time.perf_counter()
    correct = seen = 0
    for images, targets in loader:
        output = model(images)
        loss = F.cross_entropy(output, targets, label_smoothing=smoothing)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        correct += (output.argmax(1) == targets).sum().item()
        seen += len(targets)
    return time.perf_counter() - start


def run_epochs(case: str, args: argparse.Namespace, out: Callable[[str], None]) -> None:
    cfg = case_config(case, args)
    bundle = build_data(cfg.data, device=torch.device("cpu"), seed=0)  # fills the caches
    dataset = torchvision_dataset(case, args, bundle.mean, bundle.std)
    default_threads = args.tv_threads or torch.get_num_threads()
    ours, whole, theirs = [], [], []
    with tempfile.TemporaryDirectory() as work_dir:
        for r in range(args.repeats):
            for side in ("cnnzoo", "tv") if r % 2 == 0 else ("tv", "cnnzoo"):
                if side == "cnnzoo":
                    epoch_s, call_s = cnnzoo_epoch(case, args, work_dir)
                    ours.append(epoch_s)
                    whole.append(call_s)
                else:
                    torch.set_num_threads(default_threads)
                    theirs.append(torchvision_epoch(case, args, dataset, cfg))
                print(f"  {case} repeat {r + 1} {side}: {(ours if side == 'cnnzoo' else theirs)[-1]:.2f} s",
                      file=sys.stderr, flush=True)  # fmt: skip
    ratios = [t / o for o, t in zip(ours, theirs, strict=True)]
    n = bundle.train.num_samples
    mo, mt = statistics.median(ours), statistics.median(theirs)
    out(
        f"| {case} | {n} | {cfg.data.train.batch_size} | {cfg.optimizer.type} | "
        f"{mo:.2f} ({n / mo:.0f} img/s) | {statistics.median(whole):.2f} | "
        f"{mt:.2f} ({n / mt:.0f} img/s) | **{statistics.median(ratios):.2f}x** "
        f"[{min(ratios):.2f}-{max(ratios):.2f}] |"
    )


# ---- --options: each speed option against a plain step --------------------------------------

OPTIONS: dict[str, dict] = {
    "plain step (fp32, NCHW, all cores, for-loop optimizer)": {},
    "1 thread": dict(threads=1),
    "channels_last": dict(channels_last=True),
    "bf16 autocast": dict(bf16=True),
    "bf16 autocast + channels_last": dict(bf16=True, channels_last=True),
    "fused optimizer step": dict(fused=True),
    "foreach optimizer step": dict(foreach=True),
    "zero_grad(set_to_none=False)": dict(set_to_none=False),
    "torch.compile": dict(compile=True),
}


def make_steps(case: str, args: argparse.Namespace, bundle, option: dict) -> Callable[[int], float]:
    """A function timing ``n`` training steps of the engine's loop body under ``option``."""
    cfg = case_config(case, args)
    torch.manual_seed(0)
    model = cnnzoo.create_model(cfg.model.type, num_classes=10, in_chans=cfg.model.in_chans)
    channels_last = option.get("channels_last", False)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    opt_cfg = dict(cfg.optimizer)
    if "fused" in option:
        opt_cfg["fused"] = option["fused"]
    optimizer = build_optimizer(model, opt_cfg)
    if "foreach" in option:
        for group in optimizer.param_groups:
            group["foreach"] = option["foreach"]
    forward = torch.compile(model) if option.get("compile") else model
    set_to_none = option.get("set_to_none", True)
    batches = itertools.cycle(list(itertools.islice(iter(bundle.train), 20)))
    model.train()

    def steps(n: int) -> float:
        torch.set_num_threads(option.get("threads", args.threads))
        start = time.perf_counter()
        for _ in range(n):
            images, targets = next(batches)
            if channels_last:
                images = images.contiguous(memory_format=torch.channels_last)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=option.get("bf16", False)):
                loss = F.cross_entropy(forward(images).float(), targets)
            optimizer.zero_grad(set_to_none=set_to_none)
            loss.backward()
            optimizer.step()
        return (time.perf_counter() - start) / n

    return steps


def run_options(case: str, args: argparse.Namespace, out: Callable[[str], None]) -> None:
    cfg = case_config(case, args)
    bundle = build_data(cfg.data, device=torch.device("cpu"), seed=0)
    bundle.train.set_epoch(1)
    names = [n for n in OPTIONS if args.compile or "compile" not in n]
    steppers, warm = {}, {}
    for name in names:
        steppers[name] = make_steps(case, args, bundle, OPTIONS[name])
        start = time.perf_counter()
        steppers[name](3)  # warm-up (and compilation)
        warm[name] = time.perf_counter() - start
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(args.repeats):
        for name in names if r % 2 == 0 else names[::-1]:
            times[name].append(steppers[name](args.steps))
    base = names[0]
    for name in names:
        ratios = [b / t for b, t in zip(times[base], times[name], strict=True)]
        out(
            f"| {case} | {name} | {statistics.median(times[name]) * 1000:.1f} | "
            f"{statistics.median(ratios):.2f}x [{min(ratios):.2f}-{max(ratios):.2f}] | {warm[name]:.1f} |"
        )


# ---- report ---------------------------------------------------------------------------------


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--cases",
        nargs="+",
        default=None,
        choices=list(CASES),
        help=f"default: {' '.join(EPOCH_CASES)}; with --options all",
    )
    data = os.path.expanduser(os.environ.get("CNNZOO_DATA") or "~/.cache/cnnzoo/data")
    p.add_argument("--mnist-root", default=data, help="holds MNIST/raw/ (default: $CNNZOO_DATA)")
    p.add_argument(
        "--cifar-root",
        default=os.path.join(data, "cifar10-jpeg"),
        help="the CIFAR-10 JPEG ImageFolder (default: $CNNZOO_DATA/cifar10-jpeg)",
    )
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--tv-workers", type=int, default=2, help="torchvision DataLoader workers")
    p.add_argument(
        "--tv-threads",
        type=int,
        default=None,
        help="torch threads of the torchvision side (default: torch's)",
    )
    p.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    p.add_argument("--options", action="store_true", help="measure the speed options instead")
    p.add_argument("--steps", type=int, default=100, help="--options: timed steps per repeat")
    p.add_argument("--compile", action="store_true", help="--options: include torch.compile")
    p.add_argument(
        "--cfg-options",
        nargs="*",
        default=[],
        help="overrides of the cnnzoo side's config, e.g. amp.enabled=True",
    )
    p.add_argument("--output", default=None, help="also write the report to this file")
    args = p.parse_args()
    args.cases = args.cases or (list(CASES) if args.options else EPOCH_CASES)

    lines: list[str] = []

    def out(line: str) -> None:
        print(line, flush=True)
        lines.append(line)

    start = time.perf_counter()
    title = (
        "Speed options, cnnzoo training steps"
        if args.options
        else "One training epoch: cnnzoo vs torchvision"
    )
    out(f"## {title}\n")
    out(f"- command: `python {' '.join(shlex.quote(a) for a in sys.argv)}`")
    out(f"- machine: {platform.platform()}; CPU: {cpu_name()}, {os.cpu_count()} cores; "
        f"torch {torch.__version__}; bf16 in hardware: {'avx512_bf16' in Path('/proc/cpuinfo').read_text()}")  # fmt: skip
    out(f"- load average at start: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    if args.options:
        out(f"- median over {args.repeats} interleaved repeats of the mean time of {args.steps} steps; "
            "speed-up = plain time / option time (> 1: the option is faster)\n")  # fmt: skip
        out("| case | option | ms/step | speed-up [range] | warm-up s |")
        out("|---|---|---|---|---|")
        for case in args.cases:
            run_options(case, args, out)
    else:
        out(f"- median of {args.repeats} interleaved repeats; torchvision: {args.tv_workers} DataLoader "
            f"workers, {args.tv_threads or torch.get_num_threads()} torch threads; cnnzoo: the engine's defaults "
            f"({args.threads} threads) {' '.join(args.cfg_options)}\n")  # fmt: skip
        out("| case | images | batch | optimizer | cnnzoo epoch s | cnnzoo whole `train` s | torchvision epoch s | speed-up [range] |")  # fmt: skip
        out("|---|---|---|---|---|---|---|---|")
        for case in args.cases:
            run_epochs(case, args, out)
    out(f"\n- load average at end: {' '.join(f'{v:.2f}' for v in os.getloadavg())}; "
        f"total {time.perf_counter() - start:.0f} s")  # fmt: skip
    save_report(args.output, lines)


if __name__ == "__main__":
    main()
