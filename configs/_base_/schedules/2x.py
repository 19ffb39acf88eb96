# The MMDetection "2x" schedule: 24 epochs, LR / 10 after epochs 16 and 22.
_base_ = ["./1x.py"]
param_scheduler = dict(milestones=[16, 22])
train_cfg = dict(max_epochs=24)
