# Runtime settings shared by every experiment (their one home, with types and help: cnnzoo/schema.py;
# tests/test_config.py checks that the two agree).
seed = 0
deterministic = False  # torch.use_deterministic_algorithms + cudnn settings
device = "auto"  # 'auto' | 'cpu' | 'cuda'
work_dir = "runs"  # run dirs: {work_dir}/{config stem}/{YYYYmmdd-HHMMSS}/
workflow = [("train", 1), ("val", 1)]  # validate after every N train epochs
log = dict(interval=50, tensorboard=True, charts=True)
checkpoint = dict(monitor="val/top1", mode="max")  # which epoch is "best"
early_stopping = None  # or dict(monitor='val/loss', mode='min', patience=5, min_delta=0.0)
amp = dict(enabled=False, dtype="bfloat16")  # autocast; fp16 uses a GradScaler on CUDA
channels_last = True  # NHWC: 1.2-1.7x faster CPU training steps for conv nets (BENCHMARKS.md);
# on a CPU a model with a strided 1x1 conv on < 16 channels (RepVGG) trains in NCHW: oneDNN crashes
compile = False
nan_policy = "stop"  # 'stop' | 'skip' (skip the step and halve the LR)
sync_bn = False  # DDP on GPUs: BatchNorm statistics over the global batch (SyncBatchNorm)
# data.train.batch_size is per process ("8xb16": 8 GPUs x 16). Linear scaling rule when enabled:
# lr x global batch / base_batch_size (None: the config's own batch, i.e. lr x processes).
auto_scale_lr = dict(enable=False, base_batch_size=None)
# or dict(k=5, alpha=0.5): Lookahead weight averaging; airbench's EMA is
# dict(k=5, alpha=0.23, ramp=True)
lookahead = None
# clip_grad lives in each schedules/ base: None, or dict(max_norm=1.0, norm_type=2.0) to bound the gradient norm
# Model EMA (Polyak averaging; torchvision's references: every=32, decay=0.99998): validated and
# tested beside the raw weights as val_ema/... and test_ema/...; warmup=True ramps the decay up
# as (1 + t) / (10 + t) over the first updates (timm's ModelEmaV2 warm-up).
ema = None  # or dict(decay=0.9998, every=1, warmup=False)
# The loop syncs with the device every N optimizer steps: it checks that the loss is finite and,
# under DDP, whether a stop signal reached any rank. nan_policy='skip' needs 1.
sync_every = 1
# Weights to start from, as model.pretrained takes them (a checkpoint file, 'torchvision',
# 'timm' or 'hf-hub:OWNER/NAME'), adapted to the model; model.pretrained_strict applies.
# `cnnzoo train --resume` continues a run instead.
load_from = None
