"""A busy machine: a ``cnnzoo`` command timed while other CPU-bound processes run, with
cnnzoo's default thread policy against fixed thread settings, in turns.

The spinners are ``python -c "while True: pass"`` processes, started before the first run
and stopped after the last. Settings: ``default`` (nothing set: cnnzoo picks the threads
from the load, and sets OMP_WAIT_POLICY=PASSIVE before torch loads when other processes
run), ``threads=N`` (``OMP_NUM_THREADS=N``), ``old default`` (every core, spinning waits:
``OMP_NUM_THREADS=<cores> OMP_WAIT_POLICY=ACTIVE``) and ``planned threads, always passive``
(``OMP_WAIT_POLICY=PASSIVE`` whatever the load). ``--spinners 0`` is the quiet machine.

    python benchmarks/busy_machine.py --spinners 2 --repeats 3 -- train --cfg-options ...
    python benchmarks/busy_machine.py --settings default threads=1 threads=2 -- train CONFIG
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time

from _report import save_report

from cnnzoo import machine


def settings(cores: int) -> dict[str, dict[str, str]]:
    fixed = {f"threads={n}": {"OMP_NUM_THREADS": str(n)} for n in range(1, cores + 1)}
    old = {"OMP_NUM_THREADS": str(cores), "OMP_WAIT_POLICY": "ACTIVE"}
    passive = {"OMP_WAIT_POLICY": "PASSIVE"}  # sleeping waits whatever the load, threads planned
    return {"default": {}, **fixed, "old default": old, "planned threads, always passive": passive}


def timed(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "cnnzoo", *argv], env=env, capture_output=True)
    if proc.returncode != 0:
        raise SystemExit(f"`cnnzoo {shlex.join(argv)}` failed:\n{proc.stderr.decode()[-2000:]}")
    return time.perf_counter() - start


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--spinners", type=int, default=2, help="other CPU-bound processes")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument(
        "--settings",
        nargs="+",
        default=None,
        help="time only these settings (e.g. default threads=1 threads=2; default: all)",
    )
    p.add_argument("--output", default=None)
    p.add_argument("command", nargs=argparse.REMAINDER, help="-- then cnnzoo's arguments")
    args = p.parse_args()
    argv = args.command[1:] if args.command[:1] == ["--"] else args.command
    cores = machine.available_cores()
    chosen = settings(cores)
    if args.settings:
        if "default" not in args.settings or set(args.settings) - set(chosen):
            p.error(f"--settings takes 'default' and any of: {', '.join(chosen)}")
        chosen = {name: env for name, env in chosen.items() if name in args.settings}
    base = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY")}
    times: dict[str, list[float]] = {name: [] for name in chosen}
    loads = []
    spin = [sys.executable, "-c", "while True: pass"]
    spinners = [subprocess.Popen(spin) for _ in range(args.spinners)]
    try:
        time.sleep(1.0)
        with tempfile.TemporaryDirectory() as work:
            run_argv = [*argv[:1], "--work-dir", work, "--quiet", *argv[1:]]
            for _ in range(args.repeats):  # in turns: a change of load hits every setting
                for name, extra in chosen.items():
                    loads.append(os.getloadavg()[0])
                    times[name].append(timed(run_argv, {**base, **extra}))
                    print(f"  {name}: {times[name][-1]:.1f} s", file=sys.stderr, flush=True)
    finally:
        for s in spinners:
            s.kill()
            s.wait()
    best = min(times, key=lambda n: statistics.median(times[n]))
    best_median = statistics.median(times[best])
    lines = [
        f"## A busy machine: `cnnzoo {shlex.join(argv)}` beside {args.spinners} CPU-bound "
        "processes",
        "",
        f"- benchmark: `python benchmarks/busy_machine.py {shlex.join(sys.argv[1:])}`",
        f"- machine: {platform.platform()}, {cores} cores; {args.repeats} runs per setting, "
        f"in turns; 1-min load average during the runs {min(loads):.2f}-{max(loads):.2f}",
        "- time: the whole command, start to exit",
        "",
        "| setting | median s | min | max | vs best |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, values in times.items():
        ratio = statistics.median(values) / best_median
        lines.append(
            f"| {name} | {statistics.median(values):.1f} | {min(values):.1f} | "
            f"{max(values):.1f} | {ratio:.2f}x |"
        )
    default = statistics.median(times["default"]) / best_median
    lines += ["", f"- default vs the best setting ({best}): {default:.2f}x (goal <= 1.15x)"]
    print("\n".join(lines))
    save_report(args.output, lines)


if __name__ == "__main__":
    main()
