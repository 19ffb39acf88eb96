import os
import pickle
import warnings

import numpy as np
import pytest
import torch
from datafiles import make_cifar10, make_imagefolder, make_mnist, write_cifar_batch, write_idx
from PIL import Image

from cnnzoo.data import read_cifar_batch, read_dataset, read_idx
from cnnzoo.data.datasets import read_digits
from cnnzoo.errors import DataError


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_reader_parses_idx_exactly(tmp_path, gz):
    tr_x, tr_y, te_x, te_y = make_mnist(tmp_path, gz=gz)
    src = read_dataset("mnist", tmp_path)
    assert src.train.images.shape == (40, 1, 28, 28) and src.train.images.dtype == torch.uint8
    assert torch.equal(src.train.images[:, 0], torch.from_numpy(tr_x))
    assert torch.equal(src.train.labels, torch.from_numpy(tr_y.astype(np.int64)))
    assert torch.equal(src.test.images[:, 0], torch.from_numpy(te_x))
    assert src.class_names == [str(i) for i in range(10)]


def test_fashion_mnist_layout(tmp_path):
    make_mnist(tmp_path, folder="FashionMNIST")
    src = read_dataset("fashion_mnist", tmp_path, in_chans=3, image_size=(32, 32))
    assert src.train.images.shape == (40, 3, 32, 32)
    assert src.class_names[-1] == "Ankle boot"


def test_idx_bad_magic_and_truncation_name_the_file(tmp_path):
    bad = tmp_path / "bad-idx3-ubyte"
    bad.write_bytes(b"\x12\x34\x08\x03" + b"\x00" * 20)
    with pytest.raises(DataError, match="bad-idx3-ubyte.*magic"):
        read_idx(bad)
    good = write_idx(tmp_path / "cut-idx3-ubyte", np.zeros((3, 4, 4), np.uint8))
    good.write_bytes(good.read_bytes()[:-5])
    with pytest.raises(DataError, match="cut-idx3-ubyte.*truncated"):
        read_idx(good)
    with pytest.raises(DataError, match="3 dimensions, expected 1"):
        read_idx(write_idx(tmp_path / "x", np.zeros((2, 2, 2), np.uint8)), expect_ndim=1)


def test_mnist_label_count_mismatch(tmp_path):
    make_mnist(tmp_path)
    write_idx(tmp_path / "MNIST/raw/train-labels-idx1-ubyte", np.zeros(39, np.uint8))
    with pytest.raises(DataError, match="40 images but .*39 labels"):
        read_dataset("mnist", tmp_path)


def test_missing_data_says_where_and_how(tmp_path):
    with pytest.raises(DataError) as e:
        read_dataset("mnist", tmp_path / "nowhere", download=False)
    msg = str(e.value)
    assert str(tmp_path / "nowhere" / "MNIST" / "raw") in msg
    assert "data.root=" in msg and "CNNZOO_DATA" in msg and "download=True" in msg


def test_cifar10_reader(tmp_path):
    data, labels = make_cifar10(tmp_path)
    src = read_dataset("cifar10", tmp_path)
    assert src.train.images.shape == (30, 3, 32, 32)
    assert torch.equal(src.train.images, torch.from_numpy(data.reshape(-1, 3, 32, 32)))
    assert src.train.labels.tolist() == labels
    assert len(src.test) == 8 and src.class_names[1] == "automobile"


def test_cifar100_reader(tmp_path):
    rng = np.random.default_rng(1)
    folder = tmp_path / "cifar-100-python"
    for name, n in (("train", 7), ("test", 3)):
        write_cifar_batch(
            folder / name,
            rng.integers(0, 256, (n, 3072), dtype=np.uint8),
            [99, 0, 5, 1, 2, 3, 4][:n],
            b"fine_labels",
        )
    src = read_dataset("cifar100", tmp_path)
    assert len(src.train) == 7 and src.train.labels[0] == 99 and len(src.class_names) == 100


def test_cifar_wrong_shape_and_labels_name_the_file(tmp_path):
    p = tmp_path / "data_batch_1"
    write_cifar_batch(p, np.zeros((4, 3000), np.uint8), [0, 1, 2, 3])
    with pytest.raises(DataError, match=r"data_batch_1.*\(N, 3072\)"):
        read_cifar_batch(p, b"labels", 10)
    write_cifar_batch(p, np.zeros((4, 3072), np.float32), [0, 1, 2, 3])
    with pytest.raises(DataError, match="data_batch_1.*uint8"):
        read_cifar_batch(p, b"labels", 10)
    write_cifar_batch(p, np.zeros((4, 3072), np.uint8), [0, 1, 2, 10])
    with pytest.raises(DataError, match="data_batch_1.*0..9"):
        read_cifar_batch(p, b"labels", 10)
    write_cifar_batch(p, np.zeros((4, 3072), np.uint8), [0, 1])
    with pytest.raises(DataError, match="4 images but 2 labels"):
        read_cifar_batch(p, b"labels", 10)
    p.write_bytes(b"\x80\x02garbage")
    with pytest.raises(DataError, match="data_batch_1"):
        read_cifar_batch(p, b"labels", 10)


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_cifar_pickle_refuses_code(tmp_path):
    p = tmp_path / "test_batch"
    p.write_bytes(pickle.dumps({b"data": _Evil(), b"labels": []}))
    with pytest.raises(DataError, match="refusing"):
        read_cifar_batch(p, b"labels", 10)


def test_digits_matches_scikit_learn():
    from sklearn.datasets import load_digits

    src = read_digits()
    assert len(src.train) + len(src.test) == 1797 and len(src.test) == 359
    assert src.train.images.dtype == torch.uint8 and src.train.images.shape[1:] == (1, 8, 8)
    ref = load_digits()
    images = torch.from_numpy(np.round(ref.images * 255 / 16).astype(np.uint8)).unsqueeze(1)
    labels = torch.from_numpy(ref.target)
    both = torch.cat([src.train.images, src.test.images])
    order = torch.cat([src.train.labels, src.test.labels])
    # the same multiset of (image, label) pairs; the test part is fixed across calls
    key = lambda ims, ys: sorted(zip(ims.flatten(1).tolist(), ys.tolist(), strict=True))  # noqa: E731
    assert key(both, order) == key(images, labels)
    assert torch.equal(read_digits().test.images, src.test.images)


def test_imagefolder_mixed_modes_and_sizes(tmp_path):
    make_imagefolder(tmp_path, sizes=((12, 10), (9, 14)), modes=("RGB", "L", "RGBA", "P"))
    src = read_dataset("imagefolder", tmp_path, image_size=(8, 8))
    assert src.class_names == ["cat", "dog"]
    assert src.train.images.shape == (6, 3, 8, 8) and len(src.test) == 6
    assert src.train.labels.tolist() == [0, 0, 0, 1, 1, 1]
    grey = read_dataset("imagefolder", tmp_path, image_size=8, in_chans=1)
    assert grey.train.images.shape == (6, 1, 8, 8)


def test_imagefolder_decodes_exact_pixels_and_caches(tmp_path):
    make_imagefolder(tmp_path / "d", per_class=2, splits=("train",))
    src = read_dataset("imagefolder", tmp_path / "d")
    assert src.test is None
    assert src.train.images.shape == (4, 3, 12, 10)
    assert src.train.images[3, :, 0, 0].tolist() == [55, 27, 200]  # class 1, index 1: value 55
    cached = list((tmp_path / "cache" / "imagefolder").glob("*.pt"))
    assert len(cached) == 1
    again = read_dataset("imagefolder", tmp_path / "d")
    assert torch.equal(again.train.images, src.train.images)


def test_imagefolder_mixed_sizes_need_image_size(tmp_path):
    make_imagefolder(tmp_path, sizes=((12, 10), (9, 14)))
    with pytest.raises(DataError, match=r"\.png is 9x14 .*data\.image_size"):
        read_dataset("imagefolder", tmp_path)


def test_imagefolder_bad_files(tmp_path):
    files = make_imagefolder(tmp_path, splits=("train",))
    files[1].write_bytes(b"")
    with pytest.raises(DataError, match=f"{files[1]}.*empty"):
        read_dataset("imagefolder", tmp_path)
    files[1].write_bytes(b"not a png at all")
    with pytest.raises(DataError, match=str(files[1])):
        read_dataset("imagefolder", tmp_path)
    with pytest.warns(UserWarning, match="skipping unreadable image"):
        src = read_dataset("imagefolder", tmp_path, skip_bad=True, in_chans=3)
    assert len(src.train) == 5


def test_imagefolder_jpeg_and_grey_native(tmp_path):
    make_imagefolder(tmp_path, modes=("L",), fmt="jpg", splits=("train", "val"))
    src = read_dataset("imagefolder", tmp_path)
    assert src.train.images.shape[1] == 1 and src.val is not None and len(src.val) == 6


def test_imagefolder_missing_train(tmp_path):
    with pytest.raises(DataError, match="no train/ folder"):
        read_dataset("imagefolder", tmp_path)


def test_imagefolder_lazy_when_large(tmp_path):
    make_imagefolder(tmp_path)
    src = read_dataset("imagefolder", tmp_path, image_size=8, max_bytes=10)
    assert src.train.images is None and len(src.train.paths) == 6 and src.train.shape == (3, 8, 8)


def test_16bit_png(tmp_path):
    d = tmp_path / "train" / "a"
    d.mkdir(parents=True)
    Image.fromarray(np.full((4, 4), 65535, np.uint16)).save(d / "x.png")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        src = read_dataset("imagefolder", tmp_path)
    assert int(src.train.images.min()) == 255


def test_imagefolder_lazy_skips_bad_files(tmp_path):
    files = make_imagefolder(tmp_path, splits=("train",))
    files[2].write_bytes(b"")
    with pytest.warns(UserWarning, match="skipping unreadable image"):
        src = read_dataset("imagefolder", tmp_path, image_size=8, max_bytes=10, skip_bad=True)
    assert (
        str(files[2]) not in src.train.paths and len(src.train.paths) == len(src.train.labels) == 5
    )
