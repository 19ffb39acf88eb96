"""The Python API: train with a callback and your own data, get the result, load the run."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import torch
from fakes import FakeBundle

import cnnzoo
from cnnzoo.engine.checkpoint import load_checkpoint


class Count(cnnzoo.Callback):
    def __init__(self) -> None:
        self.steps, self.epochs = 0, []

    def on_train_batch_end(self, run, info: dict) -> None:
        self.steps += 1

    def on_train_epoch_end(self, run, row: dict) -> None:
        self.epochs.append(row["epoch"])


def test_train_from_python_with_a_callback_and_own_data(make_cfg):
    cfg = make_cfg(**{"train_cfg.max_epochs": 2})
    counter = Count()
    result = cnnzoo.train(cfg, callbacks=[counter], data=FakeBundle(0))
    assert counter.epochs == [1, 2] and counter.steps == 2 * 3  # 48 images in batches of 16
    summary = json.loads((result.run_dir / "summary.json").read_text())
    assert result.metrics["test/top1"] == summary["test/top1"]
    assert result.best_checkpoint == result.run_dir / "checkpoints" / "best.pt"
    assert summary["dataset"] == "fake"  # the data given, not the digits the config names
    model, meta = cnnzoo.load_run(result.run_dir)
    best = load_checkpoint(result.best_checkpoint)["model"]
    for key, value in model.state_dict().items():
        assert torch.equal(value, best[key]), key
    assert meta["class_names"] == [f"c{i}" for i in range(10)]


def test_load_config_takes_a_dict_and_overrides(make_cfg):
    plain = make_cfg().to_dict()
    cfg = cnnzoo.load_config(plain, {"optimizer.lr": 0.5})
    assert cfg.optimizer.lr == 0.5 and cfg.model.type == "lenet5"


def test_importing_cnnzoo_and_its_engine_chooses_no_matplotlib_backend():
    code = "import matplotlib, cnnzoo, cnnzoo.engine; cnnzoo.train; print(matplotlib.get_backend())"
    env = dict(os.environ, MPLBACKEND="svg")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.strip() == "svg", out.stderr


class GradNorms(cnnzoo.Callback):
    """The norm of the gradients each optimizer step used."""

    def __init__(self) -> None:
        self.norms: list[float] = []

    def on_train_batch_end(self, run, info: dict) -> None:
        grads = [p.grad.flatten() for p in info["model"].parameters() if p.grad is not None]
        self.norms.append(float(torch.cat(grads).norm()))


def test_clipping_bounds_the_gradient_norm_the_optimizer_sees(make_cfg):
    def norms(**options) -> list[float]:
        seen = GradNorms()
        cfg = make_cfg(**{"train_cfg.max_epochs": 1, **options})
        cnnzoo.train(cfg, callbacks=[seen], data=FakeBundle(0))
        return seen.norms

    assert max(norms()) > 0.05  # unclipped, the gradients are larger than the bound below
    clipped = norms(**{"clip_grad.max_norm": 0.05})
    assert len(clipped) == 3 and max(clipped) <= 0.05 * (1 + 1e-5)
    l1 = norms(**{"clip_grad.max_norm": 0.05, "clip_grad.norm_type": 1.0})
    assert max(l1) < 0.5 * max(clipped)  # the L1 norm is bounded: the L2 norm is far smaller
