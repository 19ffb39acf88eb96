# Fashion-MNIST resized to 96x96, as d2l (chapter 8) feeds it to ImageNet-shaped networks;
# d2l trains without augmentation.
_base_ = ["./fashion_mnist.py"]
data = dict(
    image_size=96, train=dict(pipeline=[]), val=dict(batch_size=256), test=dict(batch_size=256)
)
