import pytest
import torch

import cnnzoo
from cnnzoo.analysis import measure_speed
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
