import itertools
import random

import matplotlib.pyplot as plt
import pytest
from matplotlib.text import Text

from cnnzoo.analysis import compare, format_table
from cnnzoo.analysis.plots import compare_chart, plot_compare
from cnnzoo.errors import ConfigError, UnknownNameError


@pytest.fixture(scope="module")
def rows():
    return compare(
        ["lenet5"], (1, 32, 32), num_classes=10, batch_size=2, devices=["cpu"], warmup=0, repeats=1
    )


def test_rows(rows):
    (r,) = rows
    assert (r["name"], r["family"], r["params"], r["macs"]) == ("lenet5", "lenet", 61_706, 416_520)
    assert (r["input_size"], r["num_classes"], r["depthwise"]) == ([1, 32, 32], 10, False)
    assert r["flops"] == 2 * r["macs"]
    assert r["cpu_latency_ms"] > 0 and r["cpu_throughput"] > 0


def test_tables_label_every_number(rows):
    md = format_table(rows, "markdown", batch_size=2)
    assert md.splitlines()[0].startswith(
        "| model | family | input | classes | params | MACs | FLOPs |"
    )
    assert "CPU throughput @bs2 (img/s)" in md
    assert "| lenet5 | lenet | 1x32x32 | 10 | 61.7K | 417K | 833K |" in md
    text = format_table(rows, "text")
    assert "CPU latency bs1 (ms)" in text.splitlines()[0]
    with pytest.raises(ConfigError):
        format_table(rows, "html")


def test_chart_is_a_png(rows, tmp_path):
    path = plot_compare(rows, tmp_path / "c.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ConfigError, match="does not exist"):
        plot_compare(rows, tmp_path / "missing" / "c.png")


def test_unknown_and_empty_names():
    with pytest.raises(UnknownNameError):
        compare(["lenet"], (1, 32, 32))
    with pytest.raises(ConfigError):
        compare([], (1, 32, 32))


def test_each_model_runs_at_its_own_input_unless_told():
    own = compare(["lenet5", "mobilenetv1_025"], devices=[])
    assert [(r["input_size"], r["num_classes"]) for r in own] == [
        ([1, 32, 32], 10),
        ([3, 224, 224], 1000),
    ]
    assert own[0]["macs"] == 416_520 and own[1]["macs"] == 41_030_272
    assert [r["depthwise"] for r in own] == [False, True]
    told = compare(["lenet5", "mobilenetv1_025"], (1, 32, 32), num_classes=4, devices=[])
    assert [(r["input_size"], r["num_classes"]) for r in told] == [([1, 32, 32], 4)] * 2
    assert "cpu_throughput" not in told[0]


def drawn_texts(fig) -> list[tuple[str, object]]:
    """Every piece of text the figure draws, with its box in pixels (for an annotation, the
    text's own box, without its leader line)."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    texts = list(fig.texts)
    for ax in fig.axes:
        texts += [*ax.texts, ax.title, ax.xaxis.label, ax.yaxis.label]
        if ax.get_legend():
            texts += ax.get_legend().get_texts()
        for axis in (ax.xaxis, ax.yaxis):
            lo, hi = sorted(axis.get_view_interval())
            ticks = axis.get_major_ticks() + axis.get_minor_ticks()
            texts += [t.label1 for t in ticks if lo <= t.get_loc() <= hi]
    return [
        (t.get_text(), Text.get_window_extent(t, renderer))
        for t in texts
        if t.get_visible() and t.get_text()
    ]


def test_chart_labels_never_overlap():
    # 15 models with nearly the same cost (one crowded spot) and one far away
    rng = random.Random(0)
    names = ["resnet18", "resnet34", "resnet50", "resnet50_gn", "resnet101", "mobilenet_v2",
             "mobilenet_v2_050", "lenet5", "vgg11", "vgg11_bn", "vgg13", "mixer_s16_224",
             "seresnet18", "resnext50_32x4d", "wide_resnet50_2"]  # fmt: skip
    rows = [
        dict(name=n, params=11_000_000 + rng.randint(0, 300_000), macs=1_800_000_000 + rng.randint(0, 50_000_000),
             cpu_throughput=100 + 50 * rng.random(), cuda_throughput=3000 + 100 * rng.random())
        for n in names
    ]  # fmt: skip
    rows.append(
        dict(
            name="lenet_tiny", params=61_706, macs=416_520, cpu_throughput=9e3, cuda_throughput=3e4
        )
    )
    fig = compare_chart(rows, "each model at its own input")
    try:
        texts = drawn_texts(fig)
        labels = [name for name, _ in texts]
        assert all(labels.count(r["name"]) == 2 for r in rows), "a point label and a bar label each"
        overlapping = [
            (a, b) for (a, p), (b, q) in itertools.combinations(texts, 2) if p.overlaps(q)
        ]
        assert not overlapping
    finally:
        plt.close(fig)


def test_timings_show_their_spread_and_a_wide_one_warns(monkeypatch, capsys):
    import cnnzoo.analysis.speed as speed
    from cnnzoo.cli import main

    monkeypatch.setattr(speed, "spread", lambda times: 0.25)  # as on a busy machine
    argv = ["compare", "lenet5", "--device", "cpu", "--chart", "", "--repeats", "3"]
    with pytest.warns(UserWarning) as caught:
        assert main(argv) == 0
    out = capsys.readouterr().out
    assert "median of 3 timings after 3 warm-up passes" in out
    assert " ±25% | " in out and out.count("±25%") == 2
    (warning,) = [str(w.message) for w in caught]
    assert warning.startswith("timings spread more than ±10% of their median over 3 repeats")
    assert "(lenet5 CPU latency ±25%, lenet5 CPU throughput ±25%)" in warning
    assert main(["compare", "lenet5", "--repeats", "0"]) == 2
    assert "--repeats >= 1" in capsys.readouterr().err


def test_steady_timings_do_not_warn(rows, recwarn):
    assert "±" in format_table(rows, "markdown", batch_size=2)
    assert not [w for w in recwarn if "spread" in str(w.message)]
