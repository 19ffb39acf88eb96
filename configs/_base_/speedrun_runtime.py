# Runtime of the speedruns (configs/speedrun/): train on the whole training set and test the last
# epoch (no validation split, so the test set selects nothing), no TensorBoard nor charts (the
# summary and metrics.csv are written; drawing the charts costs 0.8 s of matplotlib), bf16 autocast
# with channels_last (measured 1.2x on LeNet-5, 2.5x on airbench94: BENCHMARKS.md).
_base_ = ["./default_runtime.py"]
workflow = [("train", 1)]
checkpoint = dict(monitor="train/loss", mode="min")
log = dict(tensorboard=False, charts=False)
amp = dict(enabled=True, dtype="bfloat16")
channels_last = True
