# ResNet-18 on your own images (an ImageFolder tree root/train/<class>/, root/test/<class>/)
# at 224x224. Set the root and the number of classes:
#   cnnzoo train resnet18_b64_1x_imagefolder.py --cfg-options data.root=/path model.num_classes=N
_base_ = [
    "./_base_/models/resnet18.py",
    "./_base_/datasets/imagefolder.py",
    "./_base_/schedules/1x.py",
    "./_base_/default_runtime.py",
]
optimizer = dict(lr=0.05, weight_decay=1e-4)
