"""``cnnzoo explain RUN IMAGE...`` on a tiny trained run: the PNGs land in RUN/explain, and a
class that the run does not have is one clear line."""

import numpy as np
import pytest
from PIL import Image

from cnnzoo.analysis.explain import PANEL
from cnnzoo.analysis.plots import EXPLAIN_DPI as DPI
from cnnzoo.cli import main
from cnnzoo.engine import train

pytest.importorskip("captum")


def test_explain_command_on_a_trained_run(fake_data, make_cfg, tmp_path, capsys):
    run_dir = train(make_cfg(**{"train_cfg.max_epochs": 1}), quiet=True)
    files = []
    for i in range(2):
        arr = np.zeros((28, 28), np.uint8)
        arr[7 * i : 7 * i + 7, :7] = 255
        files.append(tmp_path / f"digit{i}.png")
        Image.fromarray(arr).save(files[-1])
    capsys.readouterr()
    assert main(["explain", str(run_dir), *map(str, files), "--class", "c3"]) == 0
    out = run_dir / "explain"
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [
            "filters.png",
            "digit0.cam.png",
            "digit0.stages.png",
            "digit1.cam.png",
            "digit1.stages.png",
        ]
    )
    with Image.open(out / "digit0.cam.png") as img:  # input, then 2 methods x 2 classes
        assert img.size == (round(5 * PANEL * DPI), round(PANEL * DPI))
    assert str(out / "digit1.cam.png") in capsys.readouterr().out
    assert main(["explain", str(run_dir), str(files[0]), "--class", "seven"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--class 'seven' is neither a class name nor an index 0..9" in err
    assert len(err.splitlines()) == 1
