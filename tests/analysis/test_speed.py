import pytest
import torch

import cnnzoo
from cnnzoo.analysis import measure_speed, speed
from cnnzoo.errors import ConfigError


@pytest.mark.parametrize("mode", ["inference", "train"])
def test_measures_and_leaves_the_model_alone(mode):
    model = cnnzoo.create_model("lenet5").train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    r = measure_speed(model, (1, 32, 32), batch_size=4, mode=mode, warmup=1, repeats=2)
    assert r["latency_ms"] > 0 and r["throughput"] > 0
    assert (r["device"], r["mode"], r["batch_size"]) == ("cpu", mode, 4)
    assert model.training
    assert all(p.grad is None for p in model.parameters())
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())


def test_bad_mode_and_missing_gpu_are_config_errors():
    model = cnnzoo.create_model("lenet5")
    with pytest.raises(ConfigError, match="mode"):
        measure_speed(model, (1, 32, 32), mode="fast")
    with pytest.raises(ConfigError, match="unknown device"):
        measure_speed(model, (1, 32, 32), device="tpu9")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA"):
            measure_speed(model, (1, 32, 32), device="cuda")


def test_spread_is_half_the_interquartile_range_over_the_median():
    assert speed.spread([2.0]) == 0.0
    assert speed.spread([1.0, 1.0, 1.0, 1.0]) == 0.0
    assert speed.spread([0.9, 1.0, 1.0, 1.1, 3.0]) == pytest.approx(0.05)
    assert speed.format_spread(0.05) == "±5%"


def test_timings_warm_up_repeat_and_report_their_spread(monkeypatch):
    """The pass count of each repeat is calibrated so a repeat lasts MIN_REPEAT_S; the fake
    clock makes every other repeat twice as slow, so the spread is wide."""
    clock = iter(range(10**6))
    monkeypatch.setattr(speed.time, "perf_counter", lambda: next(clock) * 1e-3)
    r = measure_speed(cnnzoo.create_model("lenet5"), (1, 32, 32), batch_size=2, warmup=2, repeats=5)
    assert (r["warmup"], r["repeats"]) == (2, 5)
    assert r["latency_ms"] > 0 and r["latency_spread"] == 0.0  # a steady clock: no spread
    assert speed.unsteady("lenet5 CPU", r) == []
    wide = dict(r, throughput_spread=0.3)
    assert speed.unsteady("lenet5 CPU", wide) == ["lenet5 CPU throughput ±30%"]
