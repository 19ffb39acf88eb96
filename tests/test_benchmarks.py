"""The benchmark scripts keep working on a machine without a GPU: ``benchmarks/gpu_check.sh
--dry-run`` runs its three steps on the CPU at toy sizes, here on a small generated copy of the
CIFAR-10 JPEG archive (never the shared data)."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def write_cifar_archive(path: Path, train_per_class: int, test_per_class: int) -> None:
    """A ``cifar10-jpeg.tar.gz`` in the shared copy's layout (``cifar10-jpeg/{train,test}/
    <class>/NNNN.jpg``, 32x32 RGB) of random images."""
    rng = np.random.default_rng(0)
    with tarfile.open(path, "w:gz") as tar:
        for split, n in (("train", train_per_class), ("test", test_per_class)):
            for cls in CLASSES:
                for i in range(n):
                    pixels = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
                    buf = io.BytesIO()
                    Image.fromarray(pixels).save(buf, format="JPEG", quality=90)
                    info = tarfile.TarInfo(f"cifar10-jpeg/{split}/{cls}/{i:04d}.jpg")
                    info.size = buf.tell()
                    buf.seek(0)
                    tar.addfile(info, buf)


def test_gpu_check_dry_run_prints_the_three_figures(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    # the dry run's speedrun trains on a subset of 256 images and tests in batches of 200
    write_cifar_archive(data / "cifar10-jpeg.tar.gz", train_per_class=26, test_per_class=20)
    out = tmp_path / "out"
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")]),
        CNNZOO_CACHE=str(tmp_path / "cache"),
        OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"),
        PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
    )
    proc = subprocess.run(
        ["bash", str(REPO / "benchmarks/gpu_check.sh"), "--dry-run", "--data", str(data)]
        + ["--out", str(out)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    for heading in ("== 1/3 CIFAR-10 speedrun", "== 2/3 streaming loader", "== 3/3 ResNet-50"):
        assert any(line.startswith(heading) for line in lines), proc.stdout
    # each figure's own line, not only its heading: the speedrun's mean row, the streaming
    # loader's row, the step time
    assert sum(line.startswith("| **mean** |") for line in lines) == 1, proc.stdout
    assert any(line.startswith("| cnnzoo data.loader='stream'") for line in lines), proc.stdout
    step = [line for line in lines if line.startswith("resnet50 training step, batch 2 at 64x64")]
    assert len(step) == 1 and step[0].endswith("images/s"), proc.stdout
    assert (out / "speedrun_cifar10.md").read_text().count("| **mean** |") == 1
    assert (out / "resnet50_step.txt").read_text().strip() == step[0]
    assert lines[-1] == f"reports: {out}"
