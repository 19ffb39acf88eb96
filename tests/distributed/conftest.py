"""Helpers for the multi-process tests: a free localhost port, torchrun on 127.0.0.1 with
gloo, and a tiny MNIST in the real IDX format."""

from __future__ import annotations

import os
import socket
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNZOO_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("CNNZOO_DATA", raising=False)
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(key, raising=False)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun(
    nproc: int, args: list[str], cwd: Path, timeout: float = 120
) -> subprocess.CompletedProcess:
    """``torchrun --nproc-per-node nproc -m cnnzoo <args>`` on 127.0.0.1, one thread per
    process; fails the test with both output streams if it exits non-zero."""
    cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={nproc}", "--master-addr=127.0.0.1",
           f"--master-port={free_port()}", "-m", "cnnzoo", *args]  # fmt: skip
    env = dict(os.environ, OMP_NUM_THREADS="1")
    if sys.platform.startswith("linux"):
        env.setdefault(
            "GLOO_SOCKET_IFNAME", "lo"
        )  # loopback only, whatever the host name resolves to
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, (
        f"torchrun exited {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    )
    return proc


def write_idx(path: Path, array: np.ndarray) -> None:
    """An IDX file: magic 00 00 08 <ndim>, big-endian uint32 dims, then uint8 data."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(
        bytes([0, 0, 0x08, array.ndim])
        + struct.pack(f">{array.ndim}I", *array.shape)
        + array.tobytes()
    )


def make_mnist(root: Path, n_train: int, n_test: int, seed: int = 0) -> None:
    """MNIST-layout IDX files under ``root/MNIST/raw``: each class a bright block at its own
    place on noise, so a few steps of training already separate them."""
    rng = np.random.default_rng(seed)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = rng.permutation(np.arange(n) % 10).astype(np.uint8)
        images = rng.integers(0, 96, (n, 28, 28)).astype(np.uint8)
        for i, c in enumerate(labels):
            r, q = divmod(int(c), 4)
            images[i, r * 7 : (r + 1) * 7, q * 7 : (q + 1) * 7] = 255
        write_idx(root / "MNIST" / "raw" / f"{prefix}-images-idx3-ubyte", images)
        write_idx(root / "MNIST" / "raw" / f"{prefix}-labels-idx1-ubyte", labels)


@pytest.fixture(name="free_port", scope="session")
def _free_port_fixture():
    return free_port


@pytest.fixture(name="torchrun", scope="session")
def _torchrun_fixture():
    return torchrun


@pytest.fixture(name="make_mnist", scope="session")
def _make_mnist_fixture():
    return make_mnist
