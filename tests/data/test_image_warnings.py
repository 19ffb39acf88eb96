"""PIL's warnings about an input file (a bad TIFF tag, a decompression-bomb warning) never
escape as a library's warning line: they are folded into cnnzoo's one message when the file
cannot be read, and dropped when it can (the outcome is the same as without them)."""

from __future__ import annotations

import io
import struct
import warnings

import pytest
import torch
from datafiles import make_imagefolder
from PIL import Image, TiffImagePlugin

from cnnzoo.data import decode_image, read_dataset
from cnnzoo.errors import DataError

PIXEL = (10, 20, 30)


def bad_tag_tiff(path, truncated: bool = False):
    """An 8x6 TIFF whose XMP tag (700) claims a million bytes, more than the file holds: PIL
    warns "Tag data larger than file" and skips the tag. ``truncated``: its strip also points
    past the end of the file, so decoding it fails too."""
    info = TiffImagePlugin.ImageFileDirectory_v2()
    info[700] = b"x" * 10
    buf = io.BytesIO()
    Image.new("RGB", (8, 6), PIXEL).save(buf, "TIFF", tiffinfo=info)
    data = bytearray(buf.getvalue())
    tag = data.find(struct.pack("<HH", 700, 1))  # the XMP entry: tag 700, type BYTE
    data[tag + 4 : tag + 8] = struct.pack("<I", 10**6)
    if truncated:
        strip = data.find(struct.pack("<HHI", 273, 4, 1))  # StripOffsets: LONG, one value
        data[strip + 8 : strip + 12] = struct.pack("<I", len(data) - 10)
    path.write_bytes(bytes(data))
    return path


def test_the_fixture_makes_pil_warn(tmp_path):
    path = bad_tag_tiff(tmp_path / "odd.tif")
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        with Image.open(path) as img:
            img.load()
    assert any("Tag data larger than file" in str(w.message) for w in record)


def test_a_readable_file_decodes_silently_and_the_same(tmp_path, recwarn):
    path = bad_tag_tiff(tmp_path / "odd.tif")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        img = decode_image(path, 3)
    assert img.shape == (3, 6, 8)
    assert img[:, 0, 0].tolist() == list(PIXEL)
    assert len(recwarn) == 0


def test_an_unreadable_file_is_one_message_with_the_warning(tmp_path, recwarn):
    path = bad_tag_tiff(tmp_path / "odd.tif", truncated=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(DataError) as e:
            decode_image(path, 3)
    msg = str(e.value)
    assert str(path) in msg and "truncated" in msg
    assert "PIL warned: UserWarning: Tag data larger than file" in msg
    assert "\n" not in msg
    assert len(recwarn) == 0


def test_an_imagefolder_of_such_files_reads_silently(tmp_path, recwarn):
    make_imagefolder(tmp_path, per_class=2, sizes=((6, 8),), splits=("train",))
    bad_tag_tiff(tmp_path / "train" / "cat" / "odd.tif")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        src = read_dataset("imagefolder", tmp_path)  # decoded in a thread pool
    assert len(src.train) == 5
    assert src.train.images[2, :, 0, 0].tolist() == list(PIXEL)  # cat/odd.tif sorts last
    assert len(recwarn) == 0


def test_the_filters_are_put_back(tmp_path):
    path = bad_tag_tiff(tmp_path / "odd.tif")
    before, shown = list(warnings.filters), warnings.showwarning
    decode_image(path, 3)
    with pytest.raises(DataError):
        decode_image(bad_tag_tiff(tmp_path / "bad.tif", truncated=True), 3)
    assert warnings.filters == before and warnings.showwarning is shown


def test_huge_images_keep_pils_policy(tmp_path, monkeypatch, recwarn):
    """Under PIL's limit but over half of it, PIL warns and the image is read (now silently);
    over twice the limit it is refused, as before."""
    path = tmp_path / "big.png"
    Image.new("RGB", (10, 10), PIXEL).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 80)  # 100 pixels: warned, read
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert torch.equal(decode_image(path, 3)[:, 0, 0], torch.tensor(PIXEL, dtype=torch.uint8))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 40)  # over twice the limit: refused
    with pytest.raises(DataError, match="decompression bombs"):
        decode_image(path, 3)
    assert len(recwarn) == 0
