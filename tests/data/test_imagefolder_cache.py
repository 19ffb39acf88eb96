"""The cache of decoded ImageFolder trees is read from disk, so it is checked like any input:
every way it can be wrong makes cnnzoo decode the images again, with one line that names the
cache file and what is wrong, never an error and never wrong labels."""

from __future__ import annotations

import warnings

import pytest
import torch
from datafiles import make_imagefolder

from cnnzoo.data import read_dataset


def _edit(obj, key, value):
    """``obj`` (the cache as loaded) with ``obj["splits"]["train"][key]`` replaced."""
    obj["splits"]["train"][key] = value(obj["splits"]["train"][key])
    return obj


BAD = {
    "label past the class count": lambda o: _edit(o, "labels", lambda y: y + 2),
    "negative label": lambda o: _edit(o, "labels", lambda y: y - 1),
    "labels of another file order": lambda o: _edit(o, "labels", lambda y: y.flip(0)),
    "float labels": lambda o: _edit(o, "labels", lambda y: y.float()),
    "2-d labels": lambda o: _edit(o, "labels", lambda y: y[:, None]),
    "float images": lambda o: _edit(o, "images", lambda x: x.float()),
    "non-finite images": lambda o: _edit(o, "images", lambda x: x.float() * float("nan")),
    "3-d images": lambda o: _edit(o, "images", lambda x: x[:, 0]),
    "fewer images than labels": lambda o: _edit(o, "images", lambda x: x[1:]),
    "fewer labels than images": lambda o: _edit(o, "labels", lambda y: y[1:]),
    "images of another size": lambda o: _edit(o, "images", lambda x: x[:, :, 1:, 1:]),
    "images of another channel count": lambda o: _edit(o, "images", lambda x: x[:, :2]),
    "labels not a tensor": lambda o: _edit(o, "labels", lambda y: y.tolist()),
    "class_names a string": lambda o: {**o, "class_names": "cat,dog"},
    "class_names of another tree": lambda o: {**o, "class_names": ["cat", "cow"]},
    "a split missing": lambda o: {**o, "splits": {"train": o["splits"]["train"]}},
    "a split not a dict": lambda o: {**o, "splits": {**o["splits"], "test": [1, 2]}},
    "not a dict": lambda o: torch.zeros(3),
    "the layout of an earlier cnnzoo": lambda o: o["splits"],
}


def _build(root):
    make_imagefolder(root, per_class=3, splits=("train", "test"))
    src = read_dataset("imagefolder", root, image_size=(6, 6), in_chans=3)
    (cache,) = (root.parent / "cache" / "imagefolder").glob("*.pt")
    return src, cache


def _read_again(root, cache):
    """Read the tree again; the one warning it gives."""
    with pytest.warns(UserWarning) as record:
        src = read_dataset("imagefolder", root, image_size=(6, 6), in_chans=3)
    notes = [str(w.message) for w in record]
    assert len(notes) == 1, notes
    assert str(cache) in notes[0] and "decoding the images again" in notes[0]
    assert "\n" not in notes[0]
    return src, notes[0]


def _same(a, b):
    for part in ("train", "test"):
        assert torch.equal(getattr(a, part).labels, getattr(b, part).labels)
        assert torch.equal(getattr(a, part).images, getattr(b, part).images)


@pytest.mark.parametrize("bad", sorted(BAD))
def test_a_bad_cache_is_rebuilt_with_one_note(tmp_path, bad):
    root = tmp_path / "tree"
    first, cache = _build(root)
    obj = torch.load(cache, weights_only=True)
    torch.save(BAD[bad](obj), cache)
    again, note = _read_again(root, cache)
    _same(first, again)
    # the rebuilt cache is valid: the third read says nothing and reads the same
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        third = read_dataset("imagefolder", root, image_size=(6, 6), in_chans=3)
    _same(first, third)


@pytest.mark.parametrize("content", [b"", b"not a torch file", b"PK\x03\x04" + b"\0" * 40])
def test_a_corrupt_cache_file_is_rebuilt_with_one_note(tmp_path, content):
    root = tmp_path / "tree"
    first, cache = _build(root)
    cache.write_bytes(content)
    again, note = _read_again(root, cache)
    assert "unreadable" in note
    _same(first, again)


def test_a_truncated_cache_file_is_rebuilt(tmp_path):
    root = tmp_path / "tree"
    first, cache = _build(root)
    cache.write_bytes(cache.read_bytes()[: cache.stat().st_size // 2])
    again, _ = _read_again(root, cache)
    _same(first, again)


def test_a_valid_cache_is_used_silently(tmp_path):
    root = tmp_path / "tree"
    first, cache = _build(root)
    obj = torch.load(cache, weights_only=True)
    obj["splits"]["train"]["images"] = torch.zeros_like(obj["splits"]["train"]["images"])
    torch.save(obj, cache)  # valid in shape: it is trusted, so its (zeroed) pixels come back
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = read_dataset("imagefolder", root, image_size=(6, 6), in_chans=3)
    assert int(again.train.images.max()) == 0
    assert torch.equal(again.train.labels, first.train.labels)
