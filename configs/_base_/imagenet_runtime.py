# Runtime of the ImageNet recipes (configs/imagenet/): bf16 autocast (mixed precision; the
# recipes' sources train in fp32 or fp16, bf16 changes nothing they report), the linear LR
# scaling rule from the batch each recipe was published with (set per config: a run on other
# hardware keeps LR / global batch), and a log line every 100 steps.
_base_ = ["./default_runtime.py"]
amp = dict(enabled=True, dtype="bfloat16")
auto_scale_lr = dict(enable=True, base_batch_size=256)
log = dict(interval=100)
