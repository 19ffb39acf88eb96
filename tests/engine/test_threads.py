"""The CPU thread policy (cnnzoo.machine): OMP_NUM_THREADS decides when set; otherwise a run
takes the cores other processes leave free, since oversubscribed OpenMP threads are many times
slower (benchmarks/results/cpu_threads.md)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
import torch

from cnnzoo import machine
from cnnzoo.engine import trainer


def never() -> float:
    raise AssertionError("the load is read only when it decides")


@pytest.mark.parametrize(
    ("cores", "busy", "threads"),
    [
        (2, 0.0, 2),  # a quiet machine: every core
        (2, 0.4, 2),  # a little background work does not cost a core
        (2, 0.6, 1),  # a core more than half taken is left to its process
        (2, 1.0, 1),
        (2, 2.0, 1),  # two busy processes (the busy machine): one thread
        (2, 5.0, 1),  # never fewer than one
        (16, 3.2, 13),
        (16, 0.0, 16),
    ],
)
def test_threads_are_the_cores_other_processes_leave_free(cores, busy, threads):
    plan = machine.thread_plan(cores, {}, lambda: busy)
    assert plan.threads == threads
    assert f"{threads} of {cores} cores free" in plan.reason


def test_omp_num_threads_is_obeyed_without_reading_the_load():
    assert machine.thread_plan(2, {"OMP_NUM_THREADS": "2"}, never).threads == 2
    assert machine.thread_plan(2, {"OMP_NUM_THREADS": "8"}, never).threads == 8
    plan = machine.thread_plan(16, {"OMP_NUM_THREADS": " 1 "}, never)
    assert (plan.threads, plan.reason) == (1, "OMP_NUM_THREADS")


@pytest.mark.parametrize("value", ["", "0", "-1", "two"])
def test_an_unusable_omp_num_threads_falls_back_to_the_load(value):
    assert machine.thread_plan(2, {"OMP_NUM_THREADS": value}, lambda: 2.0).threads == 1


def test_deterministic_runs_and_an_unknown_load_take_every_core():
    assert machine.thread_plan(2, {}, never, deterministic=True).threads == 2
    assert machine.thread_plan(4, {}, lambda: None).threads == 4


def test_the_wait_policy_is_passive_only_beside_other_running_processes():
    assert machine.before_torch_env({}, lambda: 2) == {"OMP_WAIT_POLICY": "PASSIVE"}
    assert machine.before_torch_env({}, lambda: 1) == {"OMP_WAIT_POLICY": "PASSIVE"}
    assert machine.before_torch_env({}, lambda: 0) == {}  # quiet: libgomp's own wait
    assert machine.before_torch_env({}, lambda: None) == {}
    assert machine.before_torch_env({"OMP_WAIT_POLICY": "ACTIVE"}, lambda: 2) == {}
    assert machine.before_torch_env({"GOMP_SPINCOUNT": "10000"}, lambda: 2) == {}


@pytest.mark.skipif(not os.path.exists("/proc/stat"), reason="reads /proc/stat (Linux)")
def test_running_elsewhere_sees_a_spinning_process():
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)
        assert machine.running_elsewhere() >= 1
    finally:
        spinner.kill()
        spinner.wait()
    assert 0 <= machine.running_elsewhere() <= 64


@pytest.mark.skipif(not os.path.exists("/proc/stat"), reason="reads /proc/stat (Linux)")
def test_busy_elsewhere_leaves_this_process_out_and_sees_another():
    machine.mark_cpu_reading()
    end = time.monotonic() + 0.5
    while time.monotonic() < end:  # this process busy: not counted
        pass
    mine = machine.busy_elsewhere()
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)  # the interpreter's start-up is done
        machine.mark_cpu_reading()
        time.sleep(0.6)
        theirs = machine.busy_elsewhere()
    finally:
        spinner.kill()
        spinner.wait()
    # whatever else runs on the machine: the spinner adds about one core
    assert theirs is not None and mine is not None
    assert theirs >= 0.7
    assert theirs <= machine.available_cores()


def test_a_run_takes_the_planned_threads(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(machine, "available_cores", lambda: 4)
    monkeypatch.setattr(machine, "busy_elsewhere", lambda: 2.2)
    threads = torch.get_num_threads()
    try:
        plan = trainer._setup_torch(False, torch.device("cpu"))
        assert plan.threads == 2 and torch.get_num_threads() == 2
        monkeypatch.setenv("OMP_NUM_THREADS", "3")
        assert trainer._setup_torch(False, torch.device("cpu")).threads == 3
        assert torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(threads)


def test_the_cli_sets_the_wait_policy_before_torch_loads():
    """``cnnzoo CMD`` in a fresh process: the variable is set before the command's module is
    imported (the module imports torch, whose libgomp reads it at load)."""
    probe = (
        "import os, sys, types\n"
        "from cnnzoo import cli\n"
        "assert 'torch' not in sys.modules\n"
        "class Command(types.ModuleType):\n"
        "    HELP = 'a probe'\n"
        "    def add_arguments(self, parser): pass\n"
        "    def run(self, args): print('policy', self.policy)\n"
        "    def __getattribute__(self, name):\n"
        "        if name == 'policy':  # what the environment held when the module was asked for\n"
        "            return object.__getattribute__(self, '__dict__')['policy']\n"
        "        object.__getattribute__(self, '__dict__').setdefault(\n"
        "            'policy', os.environ.get('OMP_WAIT_POLICY'))\n"
        "        return object.__getattribute__(self, name)\n"
        "sys.modules['cnnzoo.commands.models'] = Command('cnnzoo.commands.models')\n"
        "from cnnzoo import machine\n"
        "machine.running_elsewhere = lambda: int(os.environ['PROBE_RUNNING'])\n"
        "sys.exit(cli.main(['models']))\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    env["PYTHONPATH"] = os.pathsep.join([str(p) for p in sys.path if p])
    env["PROBE_RUNNING"] = "2"  # two other processes running as the command starts
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "policy PASSIVE" in out.stdout
    env["PROBE_RUNNING"] = "0"  # a quiet machine: libgomp's own wait
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True)
    assert "policy None" in out.stdout
    env["OMP_WAIT_POLICY"] = "ACTIVE"
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True)
    assert "policy ACTIVE" in out.stdout
