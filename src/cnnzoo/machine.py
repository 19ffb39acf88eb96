"""What cnnzoo asks of the machine it runs on: the device to compute on, the cache folder, and
how many CPU threads torch computes with.

The thread policy: torch's OpenMP threads wait for each other at the end of every parallel
region, so a thread that shares its core with another busy process holds all of them up
(beside two CPU-bound processes on 2 cores, 2 spinning threads ran the MNIST speedrun's epoch
2.3x slower than the planned threads: BENCHMARKS.md, "A busy machine"). A run therefore
computes with the cores that other processes leave free (:func:`thread_plan`), measured from
``/proc/stat`` over the seconds before training (:func:`busy_elsewhere`); ``OMP_NUM_THREADS``
is always obeyed. The wait policy is chosen before torch loads (:func:`before_torch_env`):
sleeping waits when other processes run as the command starts, libgomp's own on a quiet
machine.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cnnzoo.errors import ConfigError

if TYPE_CHECKING:
    import torch


def cache_dir() -> Path:
    """Where cnnzoo caches decoded images, statistics and model costs: ``$CNNZOO_CACHE``, or
    ``~/.cache/cnnzoo`` when it is unset or empty."""
    return Path(os.environ.get("CNNZOO_CACHE") or "~/.cache/cnnzoo").expanduser()


def resolve_device(name: str | torch.device) -> torch.device:
    """``'auto'`` -> CUDA when a GPU is visible, else the CPU; a device torch does not know,
    or CUDA on a machine without a GPU, is a :class:`ConfigError` naming what to use."""
    import torch

    if str(name) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(
            f"unknown device {name!r}; use 'auto', 'cpu', 'cuda' or 'cuda:N'"
        ) from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} but no CUDA GPU is visible; use 'cpu' or 'auto'")
    return device


# ---- CPU threads ---------------------------------------------------------------------------

MIN_WINDOW_S = 0.2  # the shortest window busy_elsewhere measures over (it waits for the rest)


@dataclass(frozen=True)
class ThreadPlan:
    """How many threads torch computes with, and why (said in the docs and the tests)."""

    threads: int
    reason: str


def thread_plan(
    cores: int,
    env: Mapping[str, str],
    busy: Callable[[], float | None],
    *,
    deterministic: bool = False,
) -> ThreadPlan:
    """The threads for a run on ``cores`` cores. ``OMP_NUM_THREADS`` in ``env`` decides when it
    is set; a deterministic run takes every core (its thread count, and so its order of
    summation, does not depend on the load); otherwise the cores that other processes leave
    free, ``busy()`` being how many they keep busy (None: not known, every core), rounded to
    the nearest (a core more than half taken is left to its process), and at least one.
    ``busy`` is called only when it decides (a reading waits up to :data:`MIN_WINDOW_S`)."""
    asked = (env.get("OMP_NUM_THREADS") or "").strip()
    if asked.isdigit() and int(asked) > 0:
        return ThreadPlan(int(asked), "OMP_NUM_THREADS")
    cores = max(1, int(cores))
    if deterministic:
        return ThreadPlan(cores, "every core (deterministic=True)")
    taken = busy()
    if taken is None:
        return ThreadPlan(cores, "every core (the load is not known)")
    free = max(1, min(cores, math.floor(cores - taken + 0.5)))
    return ThreadPlan(free, f"{free} of {cores} cores free ({taken:.1f} busy with other processes)")


def before_torch_env(env: Mapping[str, str], running: Callable[[], int | None]) -> dict[str, str]:
    """The variables to set before torch loads (its OpenMP runtime reads them once, at load).

    ``OMP_WAIT_POLICY=PASSIVE`` when other processes are running as the command starts
    (``running()``: how many, None when not known), so that a thread waiting for the others
    sleeps instead of spinning on a core another process needs; nothing on a quiet machine,
    where libgomp's own wait (spin a while, then sleep) is faster: PASSIVE trained LeNet-5 1.4x
    slower there (BENCHMARKS.md, "A busy machine"). A policy the user chose (OMP_WAIT_POLICY or
    GOMP_SPINCOUNT) is kept."""
    if env.get("OMP_WAIT_POLICY") or env.get("GOMP_SPINCOUNT"):
        return {}
    others = running()
    if others is None or others < 1:
        return {}
    return {"OMP_WAIT_POLICY": "PASSIVE"}


def running_elsewhere(samples: int = 5, gap_s: float = 0.002) -> int | None:
    """How many other processes are running now: the fewest runnable tasks of ``samples``
    readings of ``/proc/stat``'s procs_running, ``gap_s`` apart, less this one (the fewest:
    a process that runs for an instant is not load). None where it cannot be read."""
    counts = []
    for i in range(samples):
        if i:
            time.sleep(gap_s)
        try:
            with open("/proc/stat", encoding="ascii") as f:
                line = next((row for row in f if row.startswith("procs_running ")), "")
        except OSError:
            return None
        value = line.split()[1:2]
        if not value or not value[0].isdigit():
            return None
        counts.append(int(value[0]))
    return max(0, min(counts) - 1)


def available_cores() -> int:
    """The cores this process may run on (its affinity mask, else the machine's count)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _cpu_reading() -> tuple[float, float, float] | None:
    """(wall clock s, CPU seconds every process of the machine has run, this process's CPU
    seconds), or None where ``/proc/stat`` cannot be read (not Linux)."""
    try:
        with open("/proc/stat", encoding="ascii") as f:
            fields = f.readline().split()
    except OSError:
        return None
    if not fields or fields[0] != "cpu":
        return None
    ticks = [int(v) for v in fields[1:9]]  # user nice system idle iowait irq softirq steal
    busy = sum(ticks) - ticks[3] - ticks[4]  # all but idle and iowait; steal is taken too
    return time.monotonic(), busy / os.sysconf("SC_CLK_TCK"), time.process_time()


_last_reading = _cpu_reading()  # the window of the first busy_elsewhere starts here


def mark_cpu_reading() -> None:
    """Start the window of the next :func:`busy_elsewhere` now (the CLI does, before it
    imports torch: the import's seconds are the window)."""
    global _last_reading
    _last_reading = _cpu_reading()


def busy_elsewhere() -> float | None:
    """How many cores other processes kept busy since the last reading (the CLI's start, else
    the import of this module, else the last call), over at least :data:`MIN_WINDOW_S`; None
    where it cannot be read. This process's own CPU time is left out."""
    global _last_reading
    start = _last_reading
    if start is None:
        return None
    wait = MIN_WINDOW_S - (time.monotonic() - start[0])
    if wait > 0:
        time.sleep(wait)
    end = _cpu_reading()
    _last_reading = end
    if end is None:
        return None
    wall = end[0] - start[0]
    others = (end[1] - start[1]) - (end[2] - start[2])
    return min(float(available_cores()), max(0.0, others / wall))
