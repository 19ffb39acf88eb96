"""``cnnzoo lr_find``: the learning-rate range test on the tiny in-memory data."""

from __future__ import annotations

import math

import pytest
from fakes import FakeBundle
from matplotlib.image import imread

import cnnzoo.engine.lr_find as lr_find
from cnnzoo.cli import main


def test_the_suggestion_is_where_the_loss_falls_fastest():
    lrs = [10.0**k for k in range(-6, 1)]
    losses = [2.3, 2.3, 2.2, 1.5, 1.2, 1.1, 3.0]  # steepest between 1e-4 and 1e-3
    assert lr_find.suggest(lrs, losses) == 1e-4


def test_a_range_test_sweeps_charts_and_suggests(make_cfg, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(lr_find, "build_data", lambda *a, **k: FakeBundle(0))
    test = lr_find.lr_range_test(make_cfg(), start=1e-5, end=1.0, steps=12)  # 3 steps an epoch
    assert 5 <= len(test.lrs) <= 12 and test.lrs == sorted(test.lrs)
    assert test.lrs[0] == pytest.approx(1e-5) and test.suggested in test.lrs
    assert all(math.isfinite(v) for v in test.losses)

    config = tmp_path / "tiny.py"  # as make_cfg wrote it
    out = tmp_path / "lr.png"
    argv = ["lr_find", str(config), "--steps", "12", "--output", str(out)]
    assert main([*argv, "--cfg-options", "device=cpu"]) == 0
    printed = capsys.readouterr().out
    assert "the loss falls fastest at lr" in printed and "--cfg-options optimizer.lr=" in printed
    assert imread(out).shape[0] > 200
    assert main([*argv, "--start", "1", "--end", "0.1"]) == 2
    assert "need 0 < start < end" in capsys.readouterr().err
