# The MMDetection "20e" schedule: 20 epochs, LR / 10 after epochs 16 and 19.
_base_ = ["./1x.py"]
param_scheduler = dict(milestones=[16, 19])
train_cfg = dict(max_epochs=20)
