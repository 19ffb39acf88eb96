"""Two CPU processes (gloo, 127.0.0.1) train like one process with the same global batch.

* One step: 2 processes x batch 8 and 1 process x batch 16 on the same 16 images, same seed,
  LeNet-5 (no BatchNorm, no dropout, no augmentation) -> the same weights within 1e-6.
* A short run: 3 epochs of scikit-learn's digits, 2 x 32 vs 1 x 64 (the training set splits
  into the same global batches) -> test accuracies within 1 percentage point; the 2-process
  run then resumes in ONE process, at the same point of its learning-rate schedule.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from cnnzoo import distributed
from cnnzoo.config import load_config
from cnnzoo.engine import load_checkpoint, train
from cnnzoo.engine.metrics import Meter
from cnnzoo.errors import TrainingError

ONE_STEP = """
model = dict(type='lenet5', num_classes=10, in_chans=1, act='relu')
data = dict(type='mnist', root={root!r}, download=False, val_split=0.0, loader='device', num_workers=0,
            train=dict(batch_size=16, pipeline=[]), val=dict(batch_size=64), test=dict(batch_size=64, tta_flip=False))
optimizer = dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=5e-4)
param_scheduler = None
train_cfg = dict(max_epochs=1)
log = dict(interval=1, tensorboard=False)
device = 'cpu'
"""

DIGITS = """
model = dict(type='lenet5', num_classes=10, in_chans=1)
data = dict(type='digits', download=False, val_split=0.1, image_size=32, loader='device', num_workers=0,
            train=dict(batch_size=32, pipeline=[]), val=dict(batch_size=512), test=dict(batch_size=512, tta_flip=False))
optimizer = dict(type='Adam', lr=3e-3)
param_scheduler = dict(type='MultiStepLR', milestones=[4], gamma=0.1)
train_cfg = dict(max_epochs=3)
log = dict(interval=10, tensorboard=False)
device = 'cpu'
"""


def _worker(rank: int, port: int, config: str, work_dir: str, cache: str) -> None:
    """One of two gloo processes: the collectives on uneven shards, then one training step."""
    os.environ.update(RANK=str(rank), WORLD_SIZE="2", LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port), CNNZOO_CACHE=cache, OMP_NUM_THREADS="1")  # fmt: skip
    if sys.platform.startswith("linux"):
        os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
    ctx = distributed.setup(torch.device("cpu"))
    try:
        out = dict(
            rank=ctx.rank,
            world_size=ctx.world_size,
            backend=ctx.backend,
            is_main=distributed.is_main(),
        )
        # rank 0 scores 3 samples and rank 1 five: the reduced meter must be the meter of all 8
        g = torch.Generator().manual_seed(7)
        logits, labels = torch.randn(8, 10, generator=g), torch.arange(8) % 10
        part = slice(0, 3) if rank == 0 else slice(3, 8)
        meter = Meter(10)
        meter.update(
            logits[part],
            labels[part],
            torch.nn.functional.cross_entropy(logits[part], labels[part]),
        )
        meter.all_reduce()
        out["metrics"], out["confusion"] = meter.compute(), meter.confusion.clone()
        out["any_true"], out["any_false"] = (
            distributed.any_rank(rank == 1),
            distributed.any_rank(False),
        )
        out["object"] = distributed.broadcast_object(f"from rank {rank}")
        out["shared_file"] = distributed.file_on_every_rank(config)
        try:  # a disk of one node only: rank 1 looks where rank 0's file is not
            distributed.file_on_every_rank(os.path.join(work_dir, f"seen-by-{rank}"))
        except TrainingError as e:
            out["unshared_file"] = str(e)
        torch.manual_seed(100 + rank)  # different weights on each rank until rank 0's are broadcast
        model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3))
        distributed.broadcast_module(model)
        out["weights"] = {k: v.clone() for k, v in model.state_dict().items()}
        ddp = distributed.wrap_model(model, ctx)
        out["unwrapped"] = distributed.unwrap(ddp) is model and ddp is not model

        out["run_dir"] = str(
            train(
                load_config(config, {"data.train.batch_size": 8, "work_dir": work_dir}), quiet=True
            )
        )
        torch.save(out, os.path.join(work_dir, f"rank{rank}.pt"))
    finally:
        distributed.cleanup()


@pytest.fixture
def one_thread(monkeypatch):
    """The in-process runs use one thread like each torchrun process (the trainer reads
    OMP_NUM_THREADS); the thread count is restored afterwards."""
    threads = torch.get_num_threads()
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def one_step(tmp_path_factory, free_port, make_mnist):
    """Run the two-process worker and the one-process step once for the tests below."""
    tmp = tmp_path_factory.mktemp("one_step")
    make_mnist(tmp / "data", n_train=16, n_test=20)
    config = tmp / "onestep.py"
    config.write_text(ONE_STEP.format(root=str(tmp / "data")))
    (tmp / "two").mkdir()
    (tmp / "two" / "seen-by-0").touch()
    cache = str(tmp / "cache")
    mp.spawn(_worker, args=(free_port(), str(config), str(tmp / "two"), cache), nprocs=2, join=True)
    ranks = [torch.load(tmp / "two" / f"rank{r}.pt", weights_only=False) for r in range(2)]
    with pytest.MonkeyPatch.context() as mp_env:
        mp_env.setenv("CNNZOO_CACHE", cache)
        mp_env.setenv("OMP_NUM_THREADS", "1")
        threads = torch.get_num_threads()
        single = train(load_config(config, {"work_dir": str(tmp / "one")}), quiet=True)
        torch.set_num_threads(threads)
    return ranks, single


def test_collectives_sum_exactly_and_wrap_the_model(one_step):
    ranks, _ = one_step
    assert [(r["rank"], r["world_size"], r["backend"], r["is_main"]) for r in ranks] == [
        (0, 2, "gloo", True),
        (1, 2, "gloo", False),
    ]
    g = torch.Generator().manual_seed(7)
    logits, labels = torch.randn(8, 10, generator=g), torch.arange(8) % 10
    whole = Meter(10)
    whole.update(logits, labels, torch.nn.functional.cross_entropy(logits, labels))
    for r in ranks:
        assert torch.equal(r["confusion"], whole.confusion)
        for key, value in whole.compute().items():
            assert r["metrics"][key] == pytest.approx(value, abs=1e-6), (
                key
            )  # loss: float32 means of 3 and 5
        assert (
            r["any_true"] and not r["any_false"] and r["object"] == "from rank 0" and r["unwrapped"]
        )
        assert r["shared_file"] is True
        assert (
            "seen-by-" in r["unshared_file"]
            and "is not visible to rank 1 on " in r["unshared_file"]
        )
        assert "rank 0" not in r["unshared_file"]
        for key, value in ranks[0]["weights"].items():
            assert torch.equal(value, r["weights"][key]), key


def test_one_step_on_two_processes_gives_the_weights_of_one_process(one_step):
    ranks, single = one_step
    assert ranks[0]["run_dir"] == ranks[1]["run_dir"]  # rank 0 made it, rank 1 was told
    two = load_checkpoint(Path(ranks[0]["run_dir"]) / "checkpoints" / "last.pt")
    one = load_checkpoint(single / "checkpoints" / "last.pt")
    assert (two["global_step"], two["world_size"], two["global_batch_size"]) == (1, 2, 16)
    assert (one["global_step"], one["world_size"], one["global_batch_size"]) == (1, 1, 16)
    diff = max((two["model"][k] - one["model"][k]).abs().max().item() for k in one["model"])
    assert diff < 1e-6
    # SGD's momentum buffers after one step hold the (weight-decayed) gradients: DDP's average
    # over 2 x 8 images is the gradient over the 16
    grads = [
        (two["optimizer"]["state"][i]["momentum_buffer"], s["momentum_buffer"])
        for i, s in one["optimizer"]["state"].items()
    ]
    assert len(grads) == 10 and min(b.abs().max().item() for _, b in grads) > 0
    assert max((a - b).abs().max().item() for a, b in grads) < 1e-5


def test_short_run_matches_and_resumes_on_another_process_count(tmp_path, torchrun, one_thread):
    config = tmp_path / "digits_lenet5.py"
    config.write_text(DIGITS)
    two = torchrun(
        2, ["train", str(config), "--work-dir", str(tmp_path / "two"), "--quiet"], cwd=tmp_path
    )
    assert two.stdout.count("run dir:") == 1  # only rank 0 reports
    (run2,) = (tmp_path / "two" / "digits_lenet5").iterdir()
    one = train(
        load_config(config, {"data.train.batch_size": 64, "work_dir": str(tmp_path / "one")}),
        quiet=True,
    )
    s2, s1 = (json.loads((r / "summary.json").read_text()) for r in (run2, one))
    assert (s2["processes"], s2["global_batch_size"], s1["processes"], s1["global_batch_size"]) == (
        2,
        64,
        1,
        64,
    )
    assert s1["test/top1"] > 80 and abs(s2["test/top1"] - s1["test/top1"]) <= 1.0, (
        s1["test/top1"],
        s2["test/top1"],
    )

    # resume the 2-process run in one process: epoch 4 continues the schedule (milestone 4)
    resumed = train(
        load_config(run2 / "config.yaml", {"train_cfg.max_epochs": 4}), resume=run2, quiet=True
    )
    ckpt = load_checkpoint(resumed / "checkpoints" / "last.pt")
    assert resumed == run2 and ckpt["world_size"] == 1 and len(ckpt["history"]) == 4
    # the lr column is the rate each epoch trained with; the milestone cuts it after epoch 4
    assert [round(r["lr"], 6) for r in ckpt["history"]] == [3e-3, 3e-3, 3e-3, 3e-3]
    assert round(ckpt["optimizer"]["param_groups"][0]["lr"], 6) == 3e-4
    assert ckpt["history"][-1]["val/top1"] > 80


def test_auto_scale_lr_scales_the_run_but_not_its_saved_config(tmp_path, make_mnist, one_thread):
    make_mnist(tmp_path / "data", n_train=16, n_test=20)
    config = tmp_path / "onestep.py"
    config.write_text(ONE_STEP.format(root=str(tmp_path / "data")))
    options = {
        "auto_scale_lr.enable": True,
        "auto_scale_lr.base_batch_size": 8,
        "work_dir": str(tmp_path / "w"),
    }
    run_dir = train(load_config(config, options), quiet=True)
    ckpt = load_checkpoint(run_dir / "checkpoints" / "last.pt")
    assert ckpt["lr_scale"] == 2.0 and ckpt["history"][0]["lr"] == pytest.approx(
        0.2
    )  # 0.1 x 16 / 8
    assert load_config(run_dir / "config.yaml").optimizer.lr == 0.1


def test_mid_epoch_checkpoint_resumes_with_another_global_batch(tmp_path, make_mnist, one_thread):
    import signal

    make_mnist(tmp_path / "data", n_train=32, n_test=20)
    config = tmp_path / "onestep.py"
    config.write_text(ONE_STEP.format(root=str(tmp_path / "data")))
    options = {"data.train.batch_size": 8, "work_dir": str(tmp_path / "w")}

    def ctrl_c_at_step_2(event, info):
        if event == "step" and info["step"] == 2:
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(KeyboardInterrupt):
        train(load_config(config, options), quiet=True, callbacks=[ctrl_c_at_step_2])
    (run_dir,) = (tmp_path / "w" / "onestep").iterdir()
    assert (
        load_checkpoint(run_dir / "checkpoints" / "last.pt")["partial"]["step"] == 2
    )  # 16 of 32 images
    # resumed with a global batch of 16: 1 of its 2 steps covers those 16 images, 1 step is left
    train(load_config(config, {**options, "data.train.batch_size": 16}), resume=run_dir, quiet=True)
    ckpt = load_checkpoint(run_dir / "checkpoints" / "last.pt")
    assert ckpt["global_step"] == 3 and ckpt["epoch"] == 1 and not ckpt["partial"]
