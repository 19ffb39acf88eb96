import pytest

from cnnzoo.analysis import compare, format_table, plot_compare
from cnnzoo.errors import ConfigError, UnknownNameError


@pytest.fixture(scope="module")
def rows():
    return compare(
        ["lenet5"], (1, 32, 32), num_classes=10, batch_size=2, devices=["cpu"], warmup=0, repeats=1
    )


def test_rows(rows):
    (r,) = rows
    assert (r["name"], r["family"], r["params"], r["macs"]) == ("lenet5", "lenet", 61_706, 416_520)
    assert r["flops"] == 2 * r["macs"]
    assert r["cpu_latency_ms"] > 0 and r["cpu_throughput"] > 0


def test_tables_label_every_number(rows):
    md = format_table(rows, "markdown", batch_size=2)
    assert md.splitlines()[0].startswith("| model | family | params (M) | MACs (G) | FLOPs (G)")
    assert "CPU throughput @bs2 (img/s)" in md and "| lenet5 | lenet | 0.06 | 0.000 |" in md
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
