"""What a run spends outside its steps, and the keys that cut it: ``log.charts=False`` (the
speedruns) writes the summaries but draws no chart, so matplotlib is never imported."""

from __future__ import annotations

import json
import subprocess
import sys

from fakes import FakeBundle

from cnnzoo import rundir
from cnnzoo.engine.trainer import train


def test_log_charts_false_writes_the_summaries_and_no_chart(make_cfg):
    drawn = train(make_cfg(**{"train_cfg.max_epochs": 1}), quiet=True, data=FakeBundle(0))
    plain = train(
        make_cfg(**{"train_cfg.max_epochs": 1, "log.charts": False}),
        quiet=True,
        data=FakeBundle(0),
    )
    for run_dir, charts in ((drawn, True), (plain, False)):
        paths = rundir.paths(run_dir)
        assert paths.curves.is_file() is charts
        assert paths.confusion.is_file() is charts
        assert "test/top1" in json.loads(paths.summary.read_text())
        assert paths.summary_md.is_file()


def test_the_end_of_training_report_without_charts_loads_no_matplotlib(tmp_path):
    probe = (
        "import sys\n"
        "from cnnzoo.analysis.report import write_reports\n"
        f"write_reports({str(tmp_path)!r}, [dict(epoch=1, lr=0.1)], confusion=[[1, 0], [0, 1]],\n"
        "              class_names=['a', 'b'], summary=dict(model='m'), charts=False)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'matplotlib'))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
    assert rundir.paths(tmp_path).summary.is_file()
