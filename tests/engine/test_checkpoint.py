import os
import random

import pytest
import torch

import cnnzoo
from cnnzoo.engine import checkpoint as ck
from cnnzoo.engine import load_checkpoint, load_trained, save_checkpoint
from cnnzoo.errors import CheckpointError, TrainingError


def _ckpt(model=None, **changes):
    model = model or cnnzoo.create_model("lenet5", num_classes=10, in_chans=1)
    obj = dict(
        format_version=ck.FORMAT_VERSION,
        model_name="lenet5",
        model_kwargs=dict(num_classes=10, in_chans=1),
        model=model.state_dict(),
        optimizer=dict(state={}, param_groups=[]),
        scheduler={},
        scaler={},
        epoch=1,
        global_step=3,
        rng=ck.rng_state(),
        best=dict(monitor="val/top1", mode="max", value=50.0, epoch=1),
        history=[{"epoch": 1, "val/top1": 50.0}],
        config=dict(model=dict(type="lenet5")),
        config_hash="0" * 64,
        data_meta=dict(
            dataset="digits",
            class_names=[str(i) for i in range(10)],
            num_classes=10,
            in_chans=1,
            image_size=[32, 32],
            mean=[0.5],
            std=[0.25],
        ),
    )
    obj.update(changes)
    return obj


def test_round_trip_is_weights_only(tmp_path):
    path = tmp_path / "last.pt"
    save_checkpoint(_ckpt(), path)
    torch.load(path, weights_only=True)  # plain types only
    ckpt = load_checkpoint(path)
    assert ckpt["epoch"] == 1 and ckpt["rng"]["torch"].dtype == torch.uint8
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # no temp file left


def test_rng_states_restore_torch_and_python(tmp_path):
    save_checkpoint(_ckpt(), tmp_path / "c.pt")
    expect = (torch.rand(3), random.random())
    set_state = load_checkpoint(tmp_path / "c.pt")["rng"]
    torch.rand(5), random.random()
    ck.set_rng_state(set_state)
    assert torch.equal(torch.rand(3), expect[0]) and random.random() == expect[1]


def test_crash_mid_write_leaves_previous_file_intact(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    save_checkpoint(_ckpt(epoch=1), path)
    real_save = torch.save

    def crash(obj, f, *a, **k):
        f.write(b"PK\x03\x04 half a zip")
        raise KeyboardInterrupt  # the process dies mid-write

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(_ckpt(epoch=2), path)
    monkeypatch.setattr(torch, "save", real_save)
    assert load_checkpoint(path)["epoch"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def test_failed_torch_save_is_a_training_error(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    save_checkpoint(_ckpt(epoch=1), path)

    def broken(obj, f, *a, **k):
        raise RuntimeError("[enforce fail at inline_container.cc] unexpected pos 64 vs 0")

    monkeypatch.setattr(torch, "save", broken)
    with pytest.raises(TrainingError, match="could not write checkpoint .*disk full"):
        save_checkpoint(_ckpt(epoch=2), path)
    monkeypatch.undo()
    assert load_checkpoint(path)["epoch"] == 1


def test_disk_full_is_a_training_error_naming_the_path(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    save_checkpoint(_ckpt(epoch=1), path)

    def full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(
        TrainingError,
        match=rf"could not write checkpoint {path}: No space left on device; any previous",
    ):
        save_checkpoint(_ckpt(epoch=2), path)
    monkeypatch.undo()
    assert load_checkpoint(path)["epoch"] == 1


def test_unwritable_dir_is_a_training_error(tmp_path):
    (tmp_path / "blocker").write_text("a file where the folder should be")
    with pytest.raises(TrainingError, match="could not write checkpoint .*blocker/last.pt"):
        save_checkpoint(_ckpt(), tmp_path / "blocker" / "last.pt")


def test_truncated_and_foreign_files_are_detected(tmp_path):
    path = tmp_path / "last.pt"
    save_checkpoint(_ckpt(), path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        load_checkpoint(path)
    path.write_bytes(b"\x80\x02}q\x00" * 64)  # not a zip archive
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        load_checkpoint(path)
    path.write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty"):
        load_checkpoint(path)
    torch.save({"weight": torch.zeros(2)}, path)
    with pytest.raises(CheckpointError, match="not a cnnzoo training checkpoint"):
        load_checkpoint(path)
    save_checkpoint(_ckpt(format_version=99), path)
    with pytest.raises(CheckpointError, match="newer than this cnnzoo"):
        load_checkpoint(path)


class Payload:
    """Any custom class: unpickling it could run code."""


def test_pickled_object_checkpoint_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save(_ckpt(history=[Payload()]), path)
    with pytest.raises(CheckpointError, match="refused to load"):
        load_checkpoint(path)


def test_latest_run_passes_over_corrupt_last(tmp_path, capsys):
    for name in ("20260101-000000", "20260102-000000"):
        save_checkpoint(_ckpt(), tmp_path / name / "checkpoints" / "last.pt")
    newest = tmp_path / "20260102-000000" / "checkpoints" / "last.pt"
    newest.write_bytes(newest.read_bytes()[:100])
    assert ck.latest_run(tmp_path) == tmp_path / "20260101-000000"
    assert "passing over" in capsys.readouterr().out


def test_load_trained_from_run_dir_and_file(tmp_path):
    model = cnnzoo.create_model("lenet5", num_classes=10, in_chans=1)
    save_checkpoint(_ckpt(model), tmp_path / "run" / "checkpoints" / "last.pt")
    loaded, meta = load_trained(tmp_path / "run")
    assert torch.equal(loaded.fc.weight, model.fc.weight) and not loaded.training
    assert (
        meta["class_names"][3] == "3"
        and meta["model_name"] == "lenet5"
        and meta["image_size"] == [32, 32]
    )
    assert load_trained(tmp_path / "run" / "checkpoints" / "last.pt")[1]["epoch"] == 1


def test_load_trained_mismatch_lists_keys(tmp_path):
    other = cnnzoo.create_model("lenet5", num_classes=10, in_chans=3)
    save_checkpoint(_ckpt(other), tmp_path / "c.pt")  # kwargs say in_chans=1, weights are for 3
    with pytest.raises(
        CheckpointError,
        match=r"1 shape mismatches: c1.weight: checkpoint \(6, 3, 5, 5\) vs model \(6, 1, 5, 5\)",
    ):
        load_trained(tmp_path / "c.pt")
    with pytest.raises(CheckpointError, match="neither a run directory nor a checkpoint"):
        load_trained(tmp_path / "missing")
    (tmp_path / "empty_run").mkdir()
    with pytest.raises(CheckpointError, match="no checkpoints/best.pt or last.pt"):
        load_trained(tmp_path / "empty_run")


@pytest.mark.parametrize("version", [1, 0, -3, ck.FORMAT_VERSION + 1, 99])
def test_a_checkpoint_of_another_format_is_one_line_naming_file_format_and_remedy(
    tmp_path, version
):
    """Only the current format is read (format 1's .py config text is no longer parsed):
    any other format number is refused in one line that names the file, the number and
    what to do."""
    path = tmp_path / "old.pt"
    save_checkpoint(_ckpt(format_version=version, config="model = dict(type='lenet5')\n"), path)
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(path)
    msg = str(e.value)
    assert "\n" not in msg and str(path) in msg and f"checkpoint format {version}," in msg
    remedy = "upgrade cnnzoo" if version > ck.FORMAT_VERSION else "train the run again"
    assert remedy in msg, msg


def test_a_current_checkpoint_with_config_text_is_refused(tmp_path):
    path = tmp_path / "c.pt"
    save_checkpoint(_ckpt(config="model = dict(type='lenet5')\n"), path)
    with pytest.raises(CheckpointError, match="damaged or not a cnnzoo checkpoint: config should"):
        load_checkpoint(path)
