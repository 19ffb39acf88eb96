# Regression example: LeNet-5 predicts the digit's value (0-9) as one number, trained with
# the mean squared error; the reported metrics are MAE / RMSE instead of accuracy.
_base_ = [
    "./_base_/models/lenet5.py",
    "./_base_/datasets/digits.py",
    "./_base_/schedules/adam_20e.py",
    "./_base_/default_runtime.py",
]
model = dict(num_classes=1)
loss = dict(_delete_=True, type="mse")
checkpoint = dict(monitor="val/loss", mode="min")
optimizer = dict(lr=3e-3)
