"""Image bytes: probe, verify, decode and encode, with one error type for bad input.

Readers keep the original file bytes (never re-encoded) and use :func:`probe_image`
to learn the size/format and to prove the bytes decode *completely* (a truncated JPEG
has a valid header, so a header-only check is not enough). Decoders turn any of the
modes found in COCO/ADE20K/LVIS (grayscale, palette, RGBA, 16-bit, CMYK) into plain
uint8 RGB arrays.
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFile, UnidentifiedImageError

__all__ = [
    "BadImageError",
    "ImageInfo",
    "sha256_bytes",
    "probe_image",
    "decode_rgb",
    "encode_png",
    "decode_png_gray",
    "DEFAULT_MAX_PIXELS",
    "DEFAULT_MAX_IMAGE_BYTES",
    "read_image_bytes",
]

DEFAULT_MAX_PIXELS = 50_000_000  # ~7071x7071; COCO's largest images are 640 px a side
# Files are read whole before decoding, so their size is capped before the read. COCO,
# ADE20K and the benchmarks' images are well under 10 MB; 64 MiB leaves room for any
# real photo and keeps `truncate -s 4G x.jpg` from costing 4 GB of memory.
DEFAULT_MAX_IMAGE_BYTES = 64 * 2**20


class BadImageError(ValueError):
    """Bytes that are not a usable image. ``reason`` is a short category, stable for tables."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class ImageInfo:
    width: int
    height: int
    format: str  # lower-case Pillow format name: "jpeg", "png", ...
    mode: str  # Pillow mode: "RGB", "L", "P", "I;16", "CMYK", ...


def sha256_bytes(data: bytes) -> str:
    """Hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def read_image_bytes(path: str | os.PathLike, *, max_bytes: int = DEFAULT_MAX_IMAGE_BYTES) -> bytes:
    """The bytes of the image file ``path``, refusing a file over ``max_bytes`` before reading it.

    The size comes from ``fstat`` of the opened file (the file that is then read, not a
    name that could be swapped in between), and the read itself stops at ``max_bytes + 1``
    in case the file grows meanwhile. Opening is non-blocking so a FIFO named like an
    image cannot hang the reader. Raises :class:`BadImageError` ("file too large", "not a
    regular file") or ``OSError`` when the file cannot be opened or read.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise BadImageError("not a regular file", f"{os.fspath(path)!r}")
        if st.st_size > max_bytes:
            raise BadImageError("file too large", f"{st.st_size} bytes > limit {max_bytes}")
        data = fh.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise BadImageError("file too large", f"grew past the limit of {max_bytes} bytes while being read")
    return data


def _open_checked(data: bytes, max_pixels: int) -> Image.Image:
    """Open ``data`` (header only) and enforce our own pixel limit before any decoding.

    Pillow's own bomb check reads the global ``Image.MAX_IMAGE_PIXELS``; we do not rely on
    it (someone may have set it to None) and compare against ``max_pixels`` explicitly.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"expected bytes, got {type(data).__name__}")
    if len(data) == 0:
        raise BadImageError("empty file", "zero bytes")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            im = Image.open(io.BytesIO(bytes(data)))
        except Image.DecompressionBombError as exc:
            raise BadImageError("decompression bomb", str(exc)) from exc
        except UnidentifiedImageError as exc:
            raise BadImageError("not an image", "no known image format recognised") from exc
        except (OSError, SyntaxError, ValueError, EOFError) as exc:
            reason = "truncated image" if "truncat" in str(exc).lower() else "corrupt image"
            raise BadImageError(reason, f"{type(exc).__name__}: {exc}") from exc
    width, height = im.size
    if width <= 0 or height <= 0:
        raise BadImageError("corrupt image", f"non-positive size {width}x{height}")
    if width * height > max_pixels:
        raise BadImageError(
            "decompression bomb", f"{width}x{height} = {width * height} pixels > limit {max_pixels}"
        )
    return im


def _fully_decode(data: bytes, max_pixels: int) -> Image.Image:
    """Open and decode every pixel; raise BadImageError on any corruption or truncation."""
    im = _open_checked(data, max_pixels)
    fmt = (im.format or "").lower()
    if fmt == "png":
        # verify() walks every chunk and checks CRCs (catches damage that still decodes).
        try:
            im.verify()
        except (OSError, SyntaxError, ValueError, EOFError) as exc:
            reason = "truncated image" if "truncat" in str(exc).lower() else "corrupt image"
            raise BadImageError(reason, f"{type(exc).__name__}: {exc}") from exc
        im = _open_checked(data, max_pixels)  # verify() leaves the image unusable
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. "Corrupt EXIF data" is harmless for pixels
        try:
            im.load()
        except Image.DecompressionBombError as exc:
            raise BadImageError("decompression bomb", str(exc)) from exc
        except (OSError, SyntaxError, ValueError, EOFError, IndexError) as exc:
            msg = str(exc)
            reason = "truncated image" if "truncat" in msg.lower() else "corrupt image"
            raise BadImageError(reason, f"{type(exc).__name__}: {msg}") from exc
    if fmt == "jpeg" and ImageFile.LOAD_TRUNCATED_IMAGES:
        # Someone switched Pillow to silently pad truncated files; check the end-of-image
        # marker ourselves so a truncated JPEG is still refused.
        if b"\xff\xd9" not in bytes(data[-4096:]):
            raise BadImageError("truncated image", "JPEG has no end-of-image marker")
    return im


def probe_image(data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> ImageInfo:
    """Size, format and mode of ``data`` after proving that all of it decodes.

    Raises :class:`BadImageError` with reason "empty file", "not an image",
    "truncated image", "corrupt image" or "decompression bomb".
    """
    im = _fully_decode(data, max_pixels)
    return ImageInfo(width=im.size[0], height=im.size[1], format=(im.format or "").lower(), mode=im.mode)


def _to_uint8_from_wide(arr: np.ndarray) -> np.ndarray:
    """16/32-bit integer or float single-channel pixels -> uint8, keeping the scale."""
    if np.issubdtype(arr.dtype, np.floating):
        finite = np.nan_to_num(arr.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
        lo, hi = float(finite.min()), float(finite.max())
        if 0.0 <= lo and hi <= 1.0:
            scaled = finite * 255.0
        elif hi > lo:
            scaled = (finite - lo) / (hi - lo) * 255.0
        else:
            scaled = np.zeros_like(finite)
        return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)
    wide = arr.astype(np.int64)
    if wide.min() >= 0 and wide.max() <= 255 and arr.dtype.itemsize > 2:
        return wide.astype(np.uint8)  # a 32-bit "I" image that only holds 8-bit values
    return (np.clip(wide, 0, 65535) >> 8).astype(np.uint8)


def decode_rgb(data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode any supported image to a uint8 ``H x W x 3`` RGB array.

    Grayscale is replicated, palette images are expanded (transparency honoured via
    RGBA), alpha is dropped (as ``PIL.Image.convert('RGB')`` in COCO/LLaVA loaders does),
    16-bit images keep their top 8 bits, CMYK/YCbCr go through Pillow's converters.
    EXIF orientation is deliberately NOT applied: dataset boxes refer to stored pixels.
    """
    im = _fully_decode(data, max_pixels)
    mode = im.mode
    try:
        if mode == "RGB":
            rgb = np.asarray(im, dtype=np.uint8)
        elif mode.startswith("I") or mode == "F":
            gray = _to_uint8_from_wide(np.asarray(im))
            rgb = np.repeat(gray[:, :, None], 3, axis=2)
        elif mode in ("P", "PA"):
            rgb = np.asarray(im.convert("RGBA"), dtype=np.uint8)[:, :, :3]
        elif mode in ("RGBA", "RGBa", "RGBX"):
            rgb = np.asarray(im, dtype=np.uint8)[:, :, :3]
        elif mode in ("LA", "La"):
            gray = np.asarray(im, dtype=np.uint8)[:, :, 0]
            rgb = np.repeat(gray[:, :, None], 3, axis=2)
        else:  # "L", "1", "CMYK", "YCbCr", ...
            rgb = np.asarray(im.convert("RGB"), dtype=np.uint8)
    except (ValueError, OSError) as exc:
        raise BadImageError("unsupported mode", f"cannot convert mode {mode!r} to RGB: {exc}") from exc
    return np.ascontiguousarray(rgb)


def encode_png(array: np.ndarray, *, compress_level: int = 6) -> bytes:
    """Encode uint8 gray (HxW), uint8 RGB (HxWx3) or uint16 gray (HxW) as PNG bytes.

    Output is deterministic for the same array and Pillow/zlib build.
    """
    arr = np.asarray(array)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim >= 2 and (arr.shape[0] == 0 or arr.shape[1] == 0):
        raise ValueError(f"cannot encode an empty image of shape {arr.shape}")
    if arr.dtype == np.uint8 and arr.ndim == 2:
        im = Image.fromarray(np.ascontiguousarray(arr))  # mode "L"
    elif arr.dtype == np.uint8 and arr.ndim == 3 and arr.shape[2] == 3:
        im = Image.fromarray(np.ascontiguousarray(arr))  # mode "RGB"
    elif arr.dtype == np.uint16 and arr.ndim == 2:
        im = Image.fromarray(np.ascontiguousarray(arr))  # mode "I;16"
    else:
        raise ValueError(
            f"encode_png takes uint8 HxW / HxWx3 or uint16 HxW, got {arr.dtype} {arr.shape}"
        )
    buf = io.BytesIO()
    im.save(buf, format="PNG", compress_level=compress_level)
    return buf.getvalue()


def decode_png_gray(data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode a single-channel PNG (class-index mask or depth map) without changing values.

    Returns uint8 for 8-bit gray (and palette PNGs: the palette *indices*, which is how
    class-index masks are stored), uint16 for 16-bit gray. RGB PNGs are refused.
    """
    im = _fully_decode(data, max_pixels)
    if im.format != "PNG":
        raise BadImageError("not a png", f"format is {im.format}")
    mode = im.mode
    if mode in ("L", "P"):
        return np.array(im, dtype=np.uint8)
    if mode == "1":
        return np.array(im, dtype=np.uint8)  # 0/1
    if mode.startswith("I;16"):
        return np.array(im).astype(np.uint16)
    if mode == "I":
        arr = np.array(im)
        if arr.size and (arr.min() < 0 or arr.max() > 65535):
            raise BadImageError("unsupported mode", "32-bit values outside 0..65535")
        return arr.astype(np.uint16)
    raise BadImageError("not single-channel", f"PNG mode {mode!r} is not grayscale")
