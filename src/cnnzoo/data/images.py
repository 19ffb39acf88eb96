"""Image files to uint8 tensors: reading, decoding, channel conversion, resizing and crops.

Shared by the readers, every batch path and ``predict``. On the in-memory paths everything is
kept as uint8 tensors shaped (N, C, H, W) until a batch is drawn; resizing and channel
conversion happen once, when a dataset is read, so that every loader, the statistics and
``predict`` see exactly the same pixels. The streaming paths read each file
(:func:`read_file`), decode it at full resolution (:func:`decode_full`) and cut it per sample:
:class:`TrainCrop` (the Inception crop and flip) for training, :class:`CenterCrop` (resize the
shorter side, centre window) for evaluation and for ``predict`` of a streamed run.
"""

from __future__ import annotations

import io
import math
import os
import threading
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from cnnzoo.errors import DataError
from cnnzoo.fileio import open_regular

if TYPE_CHECKING:
    from PIL.Image import Image as PILImage

    from cnnzoo.data.augment import RandomResizedCrop

IMAGE_EXTENSIONS = (
    ".jpg",
    ".jpeg",
    ".png",
    ".bmp",
    ".gif",
    ".tif",
    ".tiff",
    ".webp",
    ".ppm",
    ".pgm",
)
_GREY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"}


def as_size(size: int | Sequence[int] | None) -> tuple[int, int] | None:
    """``32`` or ``(32, 32)`` as ``(h, w)``; ``None`` stays ``None``."""
    if size is None:
        return None
    if isinstance(size, int):
        h = w = size
    else:
        vals = list(size)
        if len(vals) != 2:
            raise DataError(f"image_size must be an int or (h, w), got {size!r}")
        h, w = vals
    if any(isinstance(v, bool) or not isinstance(v, int) for v in (h, w)) or h < 1 or w < 1:
        raise DataError(f"image_size must be positive integers, got {size!r}")
    return h, w


def convert_channels(images: Tensor, in_chans: int | None) -> Tensor:
    """uint8 (N, C, H, W) images with ``in_chans`` channels: grey is repeated to RGB, RGB is
    reduced to grey with ITU-R 601-2 luma (as PIL's ``convert('L')``)."""
    c = images.shape[1]
    if in_chans is None or in_chans == c:
        return images
    if c == 1 and in_chans == 3:
        return images.expand(-1, 3, -1, -1).contiguous()
    if c == 3 and in_chans == 1:
        w = torch.tensor([299, 587, 114], dtype=torch.int32).view(1, 3, 1, 1)
        luma = (images.to(torch.int32) * w).sum(1, keepdim=True)
        return ((luma + 500) // 1000).to(torch.uint8)
    raise DataError(f"cannot convert {c}-channel images to in_chans={in_chans}; use 1 or 3")


def resize_uint8(images: Tensor, size: tuple[int, int] | None, chunk: int = 4096) -> Tensor:
    """Bilinear (antialiased) resize of uint8 (N, C, H, W) images, chunked to bound memory."""
    if size is None or tuple(images.shape[-2:]) == tuple(size):
        return images
    out = torch.empty((images.shape[0], images.shape[1], *size), dtype=torch.uint8)
    for i in range(0, images.shape[0], chunk):
        x = images[i : i + chunk].float()
        x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)
        out[i : i + chunk] = x.round_().clamp_(0, 255).to(torch.uint8)
    return out


def image_channels(mode: str) -> int:
    """Native channel count of a PIL image mode (1 for grey modes, else 3)."""
    return 1 if mode in _GREY_MODES else 3


class _LibraryWarnings:
    """Catches the warnings that PIL raises about an image file while a thread opens or decodes
    it, so that they become part of cnnzoo's one message (when the file cannot be read) or
    stay silent (when it can), instead of a library's warning line printed before cnnzoo's.

    Python's warning filters belong to the whole process, and ``warnings.catch_warnings`` is
    not safe in threads (the ImageFolder reader decodes in a thread pool): so the first thread
    to enter puts one filter in front ("always" for warnings from PIL's modules, whatever the
    filters behind it say) and a hook that hands each warning to the list of the thread that
    raised it; the last thread to leave puts the filters and the hook back. A warning raised
    meanwhile by a thread that is not decoding goes to the hook that was there before."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users = 0
        self._saved: warnings.catch_warnings | None = None
        self._shown = warnings.showwarning
        self._thread = threading.local()

    @contextmanager
    def caught(self) -> Iterator[list[str]]:
        """The warnings raised in this thread in the block, as ``Category: message`` lines."""
        outer = getattr(self._thread, "log", None)
        log: list[str] = []
        with self._lock:
            if self._users == 0:
                self._saved = warnings.catch_warnings()
                self._saved.__enter__()
                self._shown = warnings.showwarning
                warnings.filterwarnings("always", module=r"PIL\b")
                warnings.showwarning = self._hand_on
            self._users += 1
        self._thread.log = log
        try:
            yield log
        finally:
            self._thread.log = outer
            with self._lock:
                self._users -= 1
                if self._users == 0:
                    self._saved.__exit__(None, None, None)
                    self._saved = None

    def _hand_on(self, message, category, filename, lineno, file=None, line=None) -> None:
        log = getattr(self._thread, "log", None)
        if log is None:
            self._shown(message, category, filename, lineno, file, line)
            return
        text = f"{category.__name__}: {str(message).strip()}"
        if text not in log:
            log.append(text)


_library_warnings = _LibraryWarnings()


def _with_warnings(message: str, caught: list[str]) -> str:
    """``message`` with the warnings PIL raised about the file folded in (at most three)."""
    if not caught:
        return message
    said = "; ".join(w.replace("\n", " ") for w in caught[:3])
    more = f" and {len(caught) - 3} more" if len(caught) > 3 else ""
    return f"{message} (PIL warned: {said}{more})"


@contextmanager
def open_image(path: Path, data: bytes | bytearray | None = None) -> Iterator[PILImage]:
    """``PIL.Image.open(path)`` in a context where every way the file can fail (missing,
    empty, corrupt, truncated, a decompression bomb) becomes a :class:`DataError` naming it,
    including failures while the image is decoded inside the ``with`` block. ``data``: the
    file's bytes, already read (from a tar shard, say); ``path`` then only names it.

    PIL's warnings about the file (a bad TIFF tag, corrupt EXIF data, an image large enough
    for PIL's decompression-bomb warning but under its limit, which is read) are not shown:
    they are folded into the :class:`DataError` when the file cannot be read, and dropped
    when it can."""
    from PIL import Image, UnidentifiedImageError

    with _library_warnings.caught() as caught:
        try:
            if (path.stat().st_size if data is None else len(data)) == 0:
                raise DataError(f"image file {path} is empty (0 bytes); delete or replace it")
            with Image.open(path if data is None else io.BytesIO(data)) as img:
                yield img
        except DataError as e:
            if not caught:
                raise
            raise DataError(_with_warnings(str(e), caught)) from None
        except FileNotFoundError:
            raise DataError(f"image file {path} does not exist; check the path") from None
        except Image.DecompressionBombError as e:
            raise DataError(
                _with_warnings(
                    f"refusing image {path}: {str(e).rstrip('.')} (PIL's guard against "
                    f"decompression bombs); delete or replace the file",
                    caught,
                )
            ) from None
        except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as e:
            raise DataError(
                _with_warnings(f"cannot read image {path}: {e}; delete or replace the file", caught)
            ) from None


def decode_image(
    path: str | os.PathLike, in_chans: int, data: bytes | bytearray | None = None
) -> Tensor:
    """Decode one image file (or its bytes ``data``, named ``path``) to a uint8 (C, H, W)
    tensor with ``in_chans`` channels.

    Palette, alpha, CMYK and 16-bit modes are converted; alpha is dropped; of an animated
    image, the first frame is read. An unreadable file raises :class:`DataError` naming it."""
    from PIL import Image

    with open_image(Path(path), data) as img:
        img.load()
        if img.mode in ("I;16", "I;16B", "I;16L", "I"):
            arr = np.asarray(img, dtype=np.float64)
            top = 65535.0 if img.mode.startswith("I;16") else max(float(arr.max()), 1.0)
            img = Image.fromarray(np.clip(arr * 255.0 / top, 0, 255).round().astype(np.uint8))
        elif img.mode == "F":
            img = Image.fromarray(np.clip(np.asarray(img) * 255.0, 0, 255).round().astype(np.uint8))
        if img.mode in ("P", "PA"):
            img = img.convert("RGBA")
        img = img.convert("L" if in_chans == 1 else "RGB")
        arr = np.array(img, dtype=np.uint8)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    return torch.from_numpy(arr).permute(2, 0, 1).contiguous()


def probe_image(path: str | os.PathLike) -> tuple[str, tuple[int, int]]:
    """(PIL mode, (h, w)) of an image file, read from its header only."""
    with open_image(Path(path)) as img:
        return img.mode, (img.height, img.width)


def load_image(
    path: str | os.PathLike, in_chans: int, image_size: tuple[int, int] | None
) -> Tensor:
    """Decode, convert and resize one file to uint8 (C, H, W), as the datasets store it."""
    return resize_uint8(decode_image(path, in_chans)[None], image_size)[0]


MAX_FILE_BYTES = 1 << 28  # an image file larger than 256 MiB is refused unread


def read_file(path: str | os.PathLike) -> bytearray:
    """The bytes of an image file; a missing, unreadable or huge file raises
    :class:`DataError` naming it."""
    path = Path(path)
    try:
        with open_regular(path) as f:
            size = os.fstat(f.fileno()).st_size
            if size > MAX_FILE_BYTES:
                raise DataError(
                    f"image file {path} is {size:,} bytes, more than any image this reads "
                    f"({MAX_FILE_BYTES:,}); delete or replace it"
                )
            data = bytearray(size)
            del data[f.readinto(data) :]
    except FileNotFoundError:
        raise DataError(f"image file {path} does not exist; check the path") from None
    except OSError as e:
        raise DataError(f"cannot read image {path}: {e.strerror or e}") from None
    return data


def decode_full(data: bytearray, name: str, in_chans: int) -> Tensor:
    """uint8 (``in_chans``, H, W) at full resolution from an image file's bytes ``data``
    (``name`` names it in errors). PIL reads the header first and refuses decompression bombs;
    RGB and grey JPEGs are then decoded by torchvision (libjpeg-turbo, no PIL image in between),
    everything else by PIL exactly as the other paths decode it."""
    with open_image(Path(name), data) as img:
        jpeg = img.format == "JPEG" and img.mode in ("RGB", "L")
    if jpeg:
        from torchvision.io import ImageReadMode, decode_jpeg  # the streaming path imports it

        mode = ImageReadMode.RGB if in_chans == 3 else ImageReadMode.GRAY
        try:
            with warnings.catch_warnings():  # torchvision 0.29 points image decoding to TorchCodec
                warnings.simplefilter("ignore", DeprecationWarning)
                return decode_jpeg(torch.frombuffer(data, dtype=torch.uint8), mode=mode)
        except RuntimeError:
            pass  # PIL decodes it again and names what is wrong with it
    return decode_image(name, in_chans, data=data)


def resize_image(img: Tensor, size: tuple[int, int]) -> Tensor:
    """Bilinear, antialiased resize of one uint8 (C, H, W) image: torch's uint8 kernel on the
    CPU, :func:`resize_image_float` elsewhere."""
    if tuple(img.shape[-2:]) == tuple(size):
        return img
    if img.device.type != "cpu":
        return resize_image_float(img, size)
    return F.interpolate(img[None], size=size, mode="bilinear", antialias=True)[0]


def resize_image_float(img: Tensor, size: tuple[int, int]) -> Tensor:
    """:func:`resize_image` in float32, rounded back to uint8 (CUDA has no uint8 kernel for it)."""
    out = F.interpolate(img[None].float(), size=size, mode="bilinear", antialias=True)[0]
    return out.round_().clamp_(0, 255).to(torch.uint8)


class TrainCrop:
    """The per-sample Inception crop (Szegedy et al. 2015): a box covering ``scale`` of the
    full image with aspect ratio in ``ratio`` (torchvision's rule, shared with the batch op
    :class:`RandomResizedCrop`), resized to ``size``; then mirrored with probability ``flip``."""

    def __init__(self, crop: RandomResizedCrop, flip: float = 0.0) -> None:
        self.crop, self.flip = crop, flip
        self.size = crop.size

    def box(self, H: int, W: int, g: torch.Generator) -> tuple[int, int, int, int]:
        """(top, left, h, w): :meth:`RandomResizedCrop.boxes` for one image, the same random
        numbers drawn in the same order, in Python floats (a tenth of the time for one box)."""
        (lo, hi), (r0, r1) = self.crop.scale, self.crop.ratio
        u_area, u_ratio = (torch.rand(10, generator=g, dtype=torch.float64).tolist() for _ in "ar")
        u_top = float(torch.rand(1, generator=g, dtype=torch.float64))
        u_left = float(torch.rand(1, generator=g, dtype=torch.float64))
        for a, r in zip(u_area, u_ratio, strict=True):
            area = H * W * (lo + (hi - lo) * a)
            ar = math.exp(math.log(r0) + (math.log(r1) - math.log(r0)) * r)
            w, h = round(math.sqrt(area * ar)), round(math.sqrt(area / ar))
            if 1 <= w <= W and 1 <= h <= H:
                return math.floor(u_top * (H - h + 1)), math.floor(u_left * (W - w + 1)), h, w
        if W / H < r0:  # no try fitted: the centre crop of the nearest allowed ratio
            w, h = W, round(W / r0)
        elif W / H > r1:
            w, h = round(H * r1), H
        else:
            w, h = W, H
        return (H - h) // 2, (W - w) // 2, h, w

    def params(self, H: int, W: int, g: torch.Generator) -> tuple[int, int, int, int, bool]:
        """(top, left, h, w, mirrored) for an H x W image: everything random about its crop."""
        box = self.box(H, W, g)
        return (*box, bool(self.flip) and float(torch.rand(1, generator=g)) < self.flip)

    def apply(self, img: Tensor, params: tuple[int, int, int, int, bool]) -> Tensor:
        top, left, h, w, mirrored = params
        out = resize_image(img[:, top : top + h, left : left + w], self.size)
        return (out.flip(-1) if mirrored else out).contiguous()

    def __call__(self, img: Tensor, g: torch.Generator) -> Tensor:
        return self.apply(img, self.params(img.shape[1], img.shape[2], g))


class CenterCrop:
    """The standard evaluation transform: the shorter side resized to ``resize`` (the longer in
    proportion, as torchvision's ``Resize(int)``), then the centre ``size`` window."""

    def __init__(self, resize: int, size: tuple[int, int]) -> None:
        self.resize, self.size = resize, size

    def params(self, H: int, W: int, g: torch.Generator | None = None) -> tuple[int, int]:
        """The resized (h, w) of an H x W image; nothing is random."""
        r = self.resize
        return (r, int(r * W / H)) if H <= W else (int(r * H / W), r)

    def apply(self, img: Tensor, params: tuple[int, int]) -> Tensor:
        h, w = params
        img = resize_image(img, (h, w))
        ch, cw = self.size
        top, left = int(round((h - ch) / 2.0)), int(round((w - cw) / 2.0))
        return img[:, top : top + ch, left : left + cw].contiguous()

    def __call__(self, img: Tensor, g: torch.Generator | None = None) -> Tensor:
        return self.apply(img, self.params(img.shape[1], img.shape[2]))


def prepare_images(
    paths: Sequence[str | os.PathLike],
    *,
    in_chans: int,
    image_size: int | Sequence[int],
    mean: Sequence[float],
    std: Sequence[float],
    resize: int | None = None,
) -> Tensor:
    """Float32 batch (N, C, H, W) of image files, prepared exactly as the evaluation data of
    a run was: converted to ``in_chans`` channels, resized to ``image_size`` (with ``resize``,
    a run on the streaming path: the shorter side resized to it, then the centre crop) and
    normalised with the training ``mean``/``std``. Used by ``cnnzoo predict`` and ``explain``."""
    if not paths:
        raise DataError("no image files given")
    size = as_size(image_size)
    if resize:
        crop = CenterCrop(int(resize), size)
        batch = torch.stack([crop(decode_image(p, in_chans)) for p in paths])
    else:
        batch = torch.stack([load_image(p, in_chans, size) for p in paths])
    return normalize(batch, mean, std)


def normalize(images: Tensor, mean: Sequence[float], std: Sequence[float]) -> Tensor:
    """uint8 or [0, 255] float images -> float32 ``(x / 255 - mean) / std``."""
    c = images.shape[1]
    if len(mean) != c or len(std) != c:
        raise DataError(
            f"mean/std have {len(mean)}/{len(std)} values but the images have {c} channels"
        )
    m = torch.tensor(mean, dtype=torch.float32, device=images.device).view(1, c, 1, 1)
    s = torch.tensor(std, dtype=torch.float32, device=images.device).view(1, c, 1, 1)
    return images.float().div_(255.0).sub_(m).div_(s)
