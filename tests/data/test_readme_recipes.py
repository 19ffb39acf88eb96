"""The README's table of shipped recipes: every command loads as written, and a recipe
measured on the JPEG copy of CIFAR-10 reads that copy (a tiny tree in the same layout here)."""

from __future__ import annotations

import shlex
from pathlib import Path

import torch
from datafiles import make_imagefolder

from cnnzoo.config import load_config
from cnnzoo.data import build_data

ROOT = Path(__file__).resolve().parents[2]


def _recipes() -> list[tuple[str, list[str], str]]:
    """(the row, the arguments of its command after ``cnnzoo train``, what was measured)."""
    text = (ROOT / "README.md").read_text()
    table = text.split("### Shipped recipes, measured", 1)[1].split("\n\n", 2)[2]
    rows = []
    for line in table.split("\n\n", 1)[0].splitlines()[2:]:
        _, command, measured = line.strip(" |").split(" | ")
        words = shlex.split(command.strip("`"))
        words = [w for w in words if not w.startswith("CNNZOO_DATA=")]
        assert words[:2] == ["cnnzoo", "train"], line
        rows.append((line, words[2:], measured))
    return rows


def _config(args: list[str]):
    """The config ``cnnzoo train ARGS`` trains (a name, then ``--cfg-options KEY=VALUE...``)."""
    name, *rest = args or [None]
    assert rest[:1] in ([], ["--cfg-options"])
    return load_config(name, rest[1:])


def test_every_recipe_command_loads_as_written():
    rows = _recipes()
    assert len(rows) >= 8
    for _row, args, _measured in rows:
        _config(args)


def test_recipes_measured_on_the_jpeg_copy_read_it(tmp_path, monkeypatch):
    data = tmp_path / "data"
    make_imagefolder(data / "cifar10-jpeg", classes=("cat", "dog"), per_class=10, sizes=((32, 32),))
    monkeypatch.setenv("CNNZOO_DATA", str(data))
    jpeg = [(row, args) for row, args, _measured in _recipes() if "JPEG" in row or "jpeg" in row]
    assert len(jpeg) >= 2  # the small ResNet and the speedrun
    for row, args in jpeg:
        cfg = _config(args)
        assert (cfg.data.type, cfg.data.folder) == ("imagefolder", "cifar10-jpeg"), row
        data_cfg = dict(cfg.data, num_workers=0, loader="device")
        bundle = build_data(data_cfg, device=torch.device("cpu"), seed=0)
        assert bundle.class_names == ["cat", "dog"] and bundle.test.num_samples == 20
