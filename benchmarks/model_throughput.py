"""Training and inference throughput of cnnzoo's models against torchvision's or timm's
implementation of the same network.

For each model the reference is built with random weights, its state_dict is loaded into
cnnzoo's model (``create_model(name, pretrained=path)``), so both are the same network with
the same weights, and the two are timed in turns (A, B, then B, A, ...) on the same batch of
random images so that changes in machine load hit both alike. Inference: eval mode under
``torch.inference_mode``; training: train mode, forward, cross-entropy (summed over GoogLeNet's
aux heads), backward and an SGD step. A ratio is the median over the pairs of
``reference time / cnnzoo time``, so > 1 means cnnzoo is faster. cnnzoo's models are timed as
``create_model`` returns them, input-check pre-hook included; the hook's own cost per call is
printed beside them.

    python benchmarks/model_throughput.py [--models resnet18 vgg11] [--input 64]
        [--batch-size 16] [--repeats 10] [--device auto] [--threads N] [--output FILE]
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from _report import save_report

import cnnzoo
from cnnzoo.analysis.report import cpu_name
from cnnzoo.analysis.speed import resolve_device
from cnnzoo.errors import CnnzooError, ConfigError

CLOCKS: dict[str, Callable[[], float]] = {"wall": time.perf_counter, "cpu": time.process_time}

# one variant per family that has a torchvision or timm counterpart (LeNet-5, ShuffleNet v1
# and airbench have none)
DEFAULT_MODELS = [
    "alexnet",
    "vgg11",
    "googlenet",
    "resnet18",
    "resnet50",
    "resnext50_32x4d",
    "preact_resnet18",
    "densenet121",
    "mobilenet_v2",
    "shufflenet_v2_x1_0",
    "squeezenet1_1",
    "efficientnet_b0",
    "se_resnet50",
    "xception",
    "mobilenetv1_100",
    "repvgg_a0",
    "mixer_s16_224",
]

# per family, (cnnzoo kwargs, reference kwargs) that make the two the same network: GoogLeNet
# with torchvision's aux heads and dropout, MobileNetV1 with timm's ReLU6
_SAME_NETWORK: dict[str, tuple[dict, dict]] = {
    "googlenet": (dict(aux_logits=True, drop_rate=0.2), dict(aux_logits=True, init_weights=True)),
    "mobilenetv1": (dict(act="relu6"), {}),
}


def reference_of(name: str) -> tuple[str, str]:
    """(library, name) of the same network in torchvision (preferred) or timm."""
    cfg = cnnzoo.get_model_entry(name).cfg
    if cfg.torchvision:
        return "torchvision", cfg.torchvision
    if cfg.timm:
        return "timm", cfg.timm
    raise SystemExit(f"{name} has no torchvision or timm counterpart to compare with")


def build_pair(name: str, size: int, workdir: Path) -> tuple[nn.Module, nn.Module, str]:
    """cnnzoo's ``name`` and its reference, holding the same weights."""
    library, ref_name = reference_of(name)
    family = cnnzoo.get_model_entry(name).family
    ours_kw, ref_kw = _SAME_NETWORK.get(family, ({}, {}))
    if family == "mlp_mixer":  # built for one input size
        ours_kw, ref_kw = dict(ours_kw, img_size=size), dict(ref_kw, img_size=size)
    torch.manual_seed(0)
    if library == "torchvision":
        import torchvision

        reference = torchvision.models.get_model(ref_name, weights=None, **ref_kw)
    else:
        import timm

        reference = timm.create_model(ref_name, pretrained=False, **ref_kw)
    path = workdir / f"{name}.pt"
    torch.save(reference.state_dict(), path)
    ours = cnnzoo.create_model(name, pretrained=str(path), **ours_kw)
    path.unlink()
    return ours, reference, f"{library} `{ref_name}`"


def input_side(name: str, requested: int) -> int:
    """``requested``, raised to the variant's minimum; MLP-Mixer is built for the size itself."""
    entry = cnnzoo.get_model_entry(name)
    if entry.family == "mlp_mixer":
        return requested
    return max(requested, *entry.cfg.min_input_size)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _inference_step(model: nn.Module, x: torch.Tensor) -> Callable[[], None]:
    def step() -> None:
        with torch.inference_mode():
            model(x)

    return step


def _train_step(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> Callable[[], None]:
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)

    def step() -> None:
        out = model(x)
        outs = out if isinstance(out, tuple) else (out,)
        loss = sum(F.cross_entropy(o, y) for o in outs)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def time_in_turns(
    steps: tuple[Callable[[], None], Callable[[], None]],
    device: torch.device,
    repeats: int,
    warmup: int,
    clock: Callable[[], float] = time.perf_counter,
) -> tuple[list[float], list[float]]:
    """Seconds per call of each step, the two taking turns; the order flips every round."""
    for _ in range(warmup):
        for step in steps:
            step()
    times: tuple[list[float], list[float]] = ([], [])
    for r in range(repeats):
        order = (0, 1) if r % 2 == 0 else (1, 0)
        for i in order:
            _sync(device)
            t0 = clock()
            steps[i]()
            _sync(device)
            times[i].append(clock() - t0)
    return times


def hook_cost_s(model: nn.Module, x: torch.Tensor, calls: int = 2000) -> float:
    """Seconds per call that the forward pre-hooks ``create_model`` attached add: the hooks
    themselves plus the slower module-call path they force, measured on an ``nn.Identity``
    carrying the same hooks against a bare one (min of 5 rounds)."""
    bare, hooked = nn.Identity(), nn.Identity()
    for hook in model._forward_pre_hooks.values():
        hooked.register_forward_pre_hook(hook)

    def per_call(module: nn.Module) -> float:
        rounds = []
        for _ in range(5):
            t0 = time.perf_counter()
            for _ in range(calls):
                module(x)
            rounds.append((time.perf_counter() - t0) / calls)
        return min(rounds)

    return max(per_call(hooked) - per_call(bare), 0.0)


def _quartiles(values: list[float]) -> tuple[float, float, float]:
    if len(values) < 2:
        return values[0], values[0], values[0]
    q1, q2, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return q1, q2, q3


def compare(
    name: str,
    size: int,
    batch: int,
    device: torch.device,
    repeats: int,
    warmup: int,
    workdir: Path,
    clock: Callable[[], float] = time.perf_counter,
) -> dict:
    ours, reference, ref_label = build_pair(name, size, workdir)
    ours.to(device)
    reference.to(device)
    x = torch.randn(batch, 3, size, size, device=device)
    y = torch.randint(0, ours.num_classes, (batch,), device=device)
    ours.eval()
    reference.eval()
    with torch.inference_mode():
        diff = (ours(x) - reference(x)).abs().max().item()
    inf = time_in_turns(
        (_inference_step(ours, x), _inference_step(reference, x)), device, repeats, warmup, clock
    )
    hook = hook_cost_s(ours, x)
    ours.train()
    reference.train()
    train = time_in_turns(
        (_train_step(ours, x, y), _train_step(reference, x, y)), device, repeats, warmup, clock
    )
    row = dict(model=name, reference=ref_label, size=size, diff=diff, hook_us=hook * 1e6)
    for mode, (t_ours, t_ref) in (("inf", inf), ("train", train)):
        row[f"{mode}_ours"] = batch / statistics.median(t_ours)
        row[f"{mode}_ref"] = batch / statistics.median(t_ref)
        row[f"{mode}_ratio"] = _quartiles([r / o for o, r in zip(t_ours, t_ref, strict=True)])
        if mode == "inf":
            row["hook_pct"] = 100 * hook / statistics.median(t_ours)
    del ours, reference
    gc.collect()
    return row


def _ratio(q: tuple[float, float, float]) -> str:
    flag = " **<0.95**" if q[1] < 0.95 else ""
    return f"{q[1]:.2f} ({q[0]:.2f}-{q[2]:.2f}){flag}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=DEFAULT_MODELS)
    parser.add_argument(
        "--input", type=int, default=64, help="image side; raised to a model's minimum"
    )
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=10, help="timed pairs per mode (median)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--device", default="auto", help="auto (cuda when available) | cpu | cuda")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument(
        "--clock",
        choices=CLOCKS,
        default="wall",
        help="wall: elapsed time; cpu: this process's CPU time, steadier on a shared machine "
        "(use with --threads 1; CPU only)",
    )
    parser.add_argument("--output", type=Path, help="also write the report to this markdown file")
    args = parser.parse_args()

    try:
        device = resolve_device(args.device)
    except ConfigError as e:
        raise SystemExit(f"error: {e}") from None
    if args.clock == "cpu" and device.type != "cpu":
        raise SystemExit(
            "error: --clock cpu measures CPU time; it cannot time a GPU, use --clock wall"
        )
    torch.set_num_threads(args.threads)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    for name in args.models:
        try:
            reference_of(name)
        except CnnzooError as e:
            raise SystemExit(f"error: {e}") from None

    lines = []
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)

    def out(text: str = "") -> None:
        """Print a report line; with --output, rewrite the file so far (a cut run keeps its rows)."""
        print(text, flush=True)
        lines.append(text)
        save_report(args.output, lines)

    accel = f", {torch.cuda.get_device_name(device)}" if device.type == "cuda" else ""
    out(f"- machine: {platform.platform()}; CPU: {cpu_name()}, {os.cpu_count()} cores{accel}")
    out(f"- torch {torch.__version__}; device {device}; threads {torch.get_num_threads()}")
    out(f"- command: `python {' '.join(sys.argv)}`")
    out(f"- load average at start: {os.getloadavg()[0]:.2f} (other processes share the CPU)")
    out(
        f"- batch {args.batch_size}, input {args.input}x{args.input} (or the model's minimum), "
        f"{args.warmup} warm-up + {args.repeats} timed pairs per mode, {args.clock} clock; ratio = median over pairs "
        f"of reference time / cnnzoo time (interquartile range in brackets), > 1: cnnzoo faster"
    )
    out()
    out(
        "| model | reference | input | inference img/s cnnzoo / ref | inference ratio | "
        "train img/s cnnzoo / ref | train ratio | max abs diff | input hook |"
    )
    out("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models:
            size = input_side(name, args.input)
            r = compare(
                name,
                size,
                args.batch_size,
                device,
                args.repeats,
                args.warmup,
                Path(tmp),
                CLOCKS[args.clock],
            )
            out(
                f"| {r['model']} | {r['reference']} | {size} | "
                f"{r['inf_ours']:.1f} / {r['inf_ref']:.1f} | {_ratio(r['inf_ratio'])} | "
                f"{r['train_ours']:.1f} / {r['train_ref']:.1f} | {_ratio(r['train_ratio'])} | "
                f"{r['diff']:.1e} | {r['hook_us']:.1f} us ({r['hook_pct']:.3f}%) |"
            )
    out()
    out(
        f"- total {time.perf_counter() - start:.0f} s; load average at end: {os.getloadavg()[0]:.2f}; "
        "input hook: time of cnnzoo's input-check pre-hook per call (share of one inference batch)"
    )


if __name__ == "__main__":
    main()
