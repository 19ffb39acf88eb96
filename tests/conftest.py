import os

import pytest
import torch

import fuzzing  # noqa: F401 - registers and loads the hypothesis profile

if os.environ.get("PYTEST_XDIST_WORKER"):
    # one thread per test worker (pytest -n 2 on two cores): oversubscribed OpenMP threads
    # are many times slower than one thread each; subprocesses inherit the setting
    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
