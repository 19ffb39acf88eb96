"""Where a training step's time goes, and how close its arithmetic comes to the CPU's peak.

The step is the engine's own: ``cnnzoo.train`` on a config (default the CIFAR-10 speedrun)
over ``(warmup + steps + profiled) * batch`` training images, with a callback that times
``--steps`` steps after ``--warmup``, then records ``--profiled`` more with torch.profiler.

- FLOPs: the forward of one image counted by cnnzoo's counter (``analysis.flops.count_flops``,
  convolutions and matrix products, 2 FLOPs per multiply-add), and the forward + backward of
  a batch counted by the same torch counter (``FlopCounterMode``) around a real backward, which
  leaves out the gradients nobody needs (the input's, a frozen layer's weights).
- Peak: cores x clock x FLOPs per cycle per core, from ``--flops-per-cycle`` (Zen 4/5 and other
  AVX-512 CPUs: 2 FMA pipes x 16 fp32 lanes x 2 = 64 fp32 FLOPs per cycle; VDPBF16PS does 32
  bf16 pairs, 64 FLOPs, per instruction, on the same 2 pipes: 128 bf16 FLOPs per cycle) and the
  clock ``/proc/cpuinfo`` reports (``--ghz`` to give another); and, measured, the FLOP/s of a
  large matrix product in the step's dtype (what oneDNN reaches on this machine).
- Time: the profiled steps split into the batch (fetch, augmentation, normalisation: the
  data path's ``finish``), the optimizer step, and the operators of forward and backward by
  kind (convolutions, batch norm, matrix products, element-wise and the rest); what no
  operator accounts for is Python and the engine around them.

    python benchmarks/step_profile.py [CONFIG] --data DIR [--steps 8] [--profiled 4]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time

import torch
from _report import save_report
from torch.profiler import ProfilerActivity, profile, record_function
from torch.utils.flop_counter import FlopCounterMode

import cnnzoo
from cnnzoo.analysis.flops import count_flops
from cnnzoo.analysis.report import cpu_name
from cnnzoo.data.batches import BatchIterable
from cnnzoo.models import create_model

BATCH_REGION = "batch: fetch, augment, normalise"
KINDS = (  # operator name fragment -> kind, first match wins
    ("conv", "convolutions"),
    ("batch_norm", "batch norm"),
    ("addmm", "matrix products"),
    ("aten::mm", "matrix products"),
    ("linear", "matrix products"),
    ("bmm", "matrix products"),
)


class StepTimer(cnnzoo.Callback):
    """Times ``steps`` optimizer steps after ``warmup``, then profiles ``profiled`` more."""

    def __init__(self, warmup: int, steps: int, profiled: int) -> None:
        self.warmup, self.steps, self.profiled = warmup, steps, profiled
        self.count = 0
        self.times: list[float] = []
        self.last = 0.0
        self.prof = None
        self.profile_start = 0.0
        self.profiled_s = 0.0

    def on_train_batch_end(self, run, info):
        now = time.perf_counter()
        self.count += 1
        if self.warmup < self.count <= self.warmup + self.steps:
            self.times.append(now - self.last)  # from the end of the step before
        if self.count == self.warmup + self.steps:
            self.prof = profile(activities=[ProfilerActivity.CPU])
            self.prof.__enter__()
            self.profile_start = time.perf_counter()
        elif self.count == self.warmup + self.steps + self.profiled and self.prof is not None:
            self.profiled_s = now - self.profile_start
            self.prof.__exit__(None, None, None)
        self.last = time.perf_counter()


def _region(event) -> str | None:
    """The batch or optimizer region an operator ran in, if any."""
    while event is not None:
        if event.name == BATCH_REGION:
            return "batch"
        if event.name.startswith("Optimizer.step#"):
            return "optimizer step"
        event = event.cpu_parent
    return None


OTHER = "element-wise and other ops"


def breakdown(prof, wall_s: float) -> tuple[dict[str, float], dict[str, float]]:
    """Seconds by kind (the batch, the optimizer step, forward/backward operators by kind,
    Python and the engine): the self time of every operator on the main thread, once; and the
    seconds of each operator of the "other" kind by name."""
    out: dict[str, float] = {}
    others: dict[str, float] = {}
    for e in prof.events():
        if e.name in (BATCH_REGION,) or e.name.startswith(("Optimizer.", "ProfilerStep")):
            continue
        kind = _region(e)
        if kind is None:
            kind = next((k for frag, k in KINDS if frag in e.name), OTHER)
        out[kind] = out.get(kind, 0.0) + e.self_cpu_time_total / 1e6
        if kind == OTHER:
            others[e.name] = others.get(e.name, 0.0) + e.self_cpu_time_total / 1e6
    out["Python and the engine (no operator)"] = max(0.0, wall_s - sum(out.values()))
    return out, others


def training_flops(model_name: str, model_kwargs: dict, size, batch: int) -> int:
    """FLOPs of one forward + backward of ``batch`` images (torch's counter around a real
    backward, so a frozen layer's weight gradients and the input's are not counted)."""
    model = create_model(model_name, **model_kwargs)
    x = torch.randn(batch, *size)
    y = torch.randint(0, model.num_classes, (batch,))
    counter = FlopCounterMode(display=False)
    with counter:
        torch.nn.functional.cross_entropy(model(x), y).backward()
    return int(counter.get_total_flops())


def matmul_flops_per_s(dtype: torch.dtype, n: int = 2048, repeats: int = 5) -> float:
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best


def clock_ghz() -> float | None:
    try:
        with open("/proc/cpuinfo", encoding="ascii") as f:
            mhz = [float(line.split(":")[1]) for line in f if line.startswith("cpu MHz")]
    except (OSError, ValueError):
        return None
    return max(mhz) / 1000 if mhz else None


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("config", nargs="?", default="configs/speedrun/cifar10_94.py")
    p.add_argument("--data", required=True, help="the folder $CNNZOO_DATA names")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--profiled", type=int, default=4)
    p.add_argument("--input", default="3x32x32", help="C x H x W of the training images")
    p.add_argument("--ghz", type=float, default=None, help="the clock (default /proc/cpuinfo)")
    p.add_argument("--flops-per-cycle", type=float, default=None, help="default 128 bf16, 64 fp32")
    p.add_argument("--cfg-options", nargs="*", default=[])
    p.add_argument("--output", default=None)
    args = p.parse_args()
    os.environ["CNNZOO_DATA"] = args.data
    probe = cnnzoo.load_config(args.config)
    batch = int(probe["data"]["train"]["batch_size"])
    images = (args.warmup + args.steps + args.profiled + 1) * batch
    options = dict(o.split("=", 1) for o in args.cfg_options)
    overrides = {
        "data.train_subset": images,
        "train_cfg.max_epochs": 1,
        "log.tensorboard": False,
        "log.charts": False,
        **options,
    }
    cfg = cnnzoo.load_config(args.config, overrides)
    timer = StepTimer(args.warmup, args.steps, args.profiled)
    finish = BatchIterable.finish

    def labelled_finish(self, *a, **k):
        with record_function(BATCH_REGION):
            return finish(self, *a, **k)

    BatchIterable.finish = labelled_finish
    with tempfile.TemporaryDirectory() as work:
        cfg["work_dir"] = work
        cnnzoo.train(cfg, callbacks=[timer], quiet=True)
    BatchIterable.finish = finish

    step_s = statistics.median(timer.times)
    model_cfg = {k: v for k, v in cfg["model"].items() if k != "type"}
    size = tuple(int(s) for s in args.input.split("x"))
    forward = count_flops(create_model(cfg["model"]["type"], **model_cfg), size)["flops"]
    train_per_image = training_flops(cfg["model"]["type"], model_cfg, size, 8) / 8
    bf16 = bool(cfg["amp"]["enabled"])
    cores = torch.get_num_threads()
    ghz = args.ghz or clock_ghz() or float("nan")
    per_cycle = args.flops_per_cycle or (128.0 if bf16 else 64.0)
    peak = cores * ghz * 1e9 * per_cycle
    dtype = torch.bfloat16 if bf16 else torch.float32
    matmul = matmul_flops_per_s(dtype)
    achieved = train_per_image * batch / step_s
    parts, others = breakdown(timer.prof, timer.profiled_s)
    total = sum(parts.values())
    argv = " ".join(sys.argv[1:])
    lines = [
        f"## Training step of `{args.config}`: FLOP/s against the peak, and where the time goes",
        "",
        f"- benchmark: `python benchmarks/step_profile.py {argv}`",
        f"- machine: {cpu_name()}, {platform.platform()}, {cores} torch threads; "
        f"1-min load average {os.getloadavg()[0]:.2f}",
        f"- step: batch {batch}, {'bf16 autocast' if bf16 else 'fp32'}, "
        f"channels_last {cfg['channels_last']}; median of {len(timer.times)} steps after "
        f"{args.warmup} warm-up: **{step_s * 1000:.0f} ms** "
        f"(min {min(timer.times) * 1000:.0f}, max {max(timer.times) * 1000:.0f})",
        f"- FLOPs: forward {forward / 1e9:.3f} GFLOP per image (cnnzoo's counter); "
        f"forward + backward {train_per_image / 1e9:.3f} GFLOP per image "
        f"({train_per_image / forward:.2f}x the forward)",
        f"- achieved: **{achieved / 1e9:.0f} GFLOP/s**",
        f"- peak: {cores} cores x {ghz:.2f} GHz x {per_cycle:.0f} FLOPs per cycle = "
        f"**{peak / 1e9:.0f} GFLOP/s** ({'bf16' if bf16 else 'fp32'}); a {dtype} 2048x2048 "
        f"matrix product reaches {matmul / 1e9:.0f} GFLOP/s here",
        f"- the step reaches **{achieved / peak:.0%} of the peak** and "
        f"{achieved / matmul:.0%} of the matrix product's rate",
        "",
        f"Where {args.profiled} profiled steps' time goes (torch.profiler, main thread, "
        f"{timer.profiled_s / args.profiled * 1000:.0f} ms per step with the profiler on):",
        "",
        "| part | ms per step | share |",
        "|---|---:|---:|",
    ]
    for kind, seconds in sorted(parts.items(), key=lambda kv: -kv[1]):
        lines.append(f"| {kind} | {seconds / args.profiled * 1000:.1f} | {seconds / total:.0%} |")
    top = sorted(others.items(), key=lambda kv: -kv[1])[:6]
    named = ", ".join(f"{name} {sec / args.profiled * 1000:.1f} ms" for name, sec in top)
    lines += ["", f"The largest of the {OTHER}, per step: {named}."]
    print("\n".join(lines))
    save_report(args.output, lines)


if __name__ == "__main__":
    main()
