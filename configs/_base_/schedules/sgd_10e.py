# d2l's recipe (chapters 7-8): plain minibatch SGD at a constant LR of 0.01 for 10 epochs.
optimizer = dict(
    type="SGD", lr=0.01, momentum=0.0, nesterov=False, weight_decay=0.0, decay_norm_and_bias=True
)
clip_grad = None
param_scheduler = None
train_cfg = dict(max_epochs=10)
