import json

import pytest

from cnnzoo.analysis import Summary, costs
from cnnzoo.analysis.table import human, parse_input_size, short_paper
from cnnzoo.cli import main
from cnnzoo.errors import ConfigError


@pytest.mark.parametrize("text, size", [("3x224x224", (3, 224, 224)), (" 1X28x28 ", (1, 28, 28))])
def test_parse_input_size(text, size):
    assert parse_input_size(text) == size


@pytest.mark.parametrize("text", ["3x224", "3x0x32", "axbxc", "3x32x32x1", ""])
def test_parse_input_size_rejects(text):
    with pytest.raises(ConfigError, match="CxHxW"):
        parse_input_size(text)


def test_human_and_short_paper():
    assert (human(11_689_512), human(416_520), human(7.6e9), human(12)) == (
        "11.69M",
        "416.5K",
        "7.60G",
        "12",
    )
    assert (
        short_paper(
            "He, Zhang, Ren and Sun, Identity Mappings in Deep Residual Networks, ECCV 2016"
        )
        == "He et al. 2016"
    )
    assert (
        short_paper("Simonyan and Zisserman, Very deep convolutional networks, ICLR 2015")
        == "Simonyan and Zisserman 2015"
    )


def test_models_lists_and_caches(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CNNZOO_CACHE", str(tmp_path))
    assert main(["models", "lenet*"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["model", "family", "params", "MACs", "input", "paper"]
    assert out[2].split()[:5] == ["lenet5", "lenet", "61.7K", "416.5K", "1x32x32"]
    key = costs.cost_key("lenet5", {}, (1, 32, 32))
    assert json.loads((tmp_path / "model_costs.json").read_text())["costs"][key] == [
        61_706,
        416_520,
    ]

    def fail(*args):
        raise AssertionError("the cache should have answered")

    monkeypatch.setattr(costs, "count_costs", fail)
    assert main(["models", "lenet5"]) == 0
    assert "416.5K" in capsys.readouterr().out


def test_models_errors(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CNNZOO_CACHE", str(tmp_path))
    assert main(["models", "nosuchnet*"]) == 2
    assert main(["models", "--family", "lenett"]) == 2
    err = capsys.readouterr().err
    assert "no registered model matches" in err and "unknown family 'lenett'" in err


def test_summary_command(capsys):
    assert (
        main(["summary", "lenet5", "--input", "1x28x28", "--num-classes", "4", "--depth", "1"]) == 0
    )
    out = capsys.readouterr().out
    assert "fc (Linear)" in out and "[1, 4]" in out and "Total mult-adds: 416K (416,016;" in out


def test_summary_command_json(capsys):
    assert main(["summary", "lenet5", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["model_name"] == "lenet5" and data["total_macs"] == 416_520
    assert [r["name"] for r in data["rows"]][:3] == ["c1", "act", "s2"]
    assert Summary.from_dict(data).to_dict() == data


@pytest.mark.parametrize(
    "argv, message",
    [
        (["summary", "lenet"], "did you mean: lenet5"),
        (["summary", "lenet5", "--input", "1x28"], "CxHxW"),
        (["summary", "lenet5", "--input", "1x8x8"], "at least 28x28"),
        (["compare", "lenet5", "--input", "3by32"], "CxHxW"),
        (["compare", "lenet5", "nonet"], "unknown model 'nonet'"),
    ],
)
def test_user_errors_are_one_line(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_compare_command(tmp_path, capsys):
    chart = tmp_path / "c.png"
    argv = ["compare", "lenet5", "--batch-size", "2", "--device", "cpu", "--chart", str(chart)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert out.startswith("each model's own input, its own classes")
    assert "| lenet5 | lenet | 1x32x32 | 10 | 61.7K |" in out
    assert "depthwise" not in out.lower(), "no MobileNet explanation without a depthwise model"
    assert chart.read_bytes()[:4] == b"\x89PNG"


def test_compare_command_explains_depthwise_convolutions_where_they_are(capsys):
    argv = ["compare", "lenet5", "mobilenetv1_025", "--input", "1x32x32", "--device", "cpu",
            "--batch-size", "1", "--chart", ""]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert out.startswith("input 1x32x32, its own classes")
    assert "| lenet5 | lenet | 1x32x32 | 10 |" in out and "| 1x32x32 | 1000 |" in out
    assert "1/256 + 1/9 = 0.1150" in out  # MobileNet's depthwise separable saving
