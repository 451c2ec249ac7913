"""Reading a still image (the source photo) as RGB uint8, whatever the camera or editor wrote,
and the conversions between such frames and network tensors (:func:`to_tensor`,
:func:`to_uint8`, :func:`resize`; network images are ``(N, 3, S, S)`` in [-1, 1]).

- EXIF orientation is applied (phones store portrait photos sideways plus a tag).
- Colour is converted to RGB: grey, palette, CMYK (Adobe-inverted JPEGs included, as
  Pillow decodes them), 16-bit grey or RGB (scaled, not clipped), float.
- Transparency is flattened onto white (RGBA, LA, palette with a transparent colour), so
  transparent pixels never show the arbitrary colour stored under them.
- A photo over `MAX_PIXELS` is refused from its header, before anything is decoded (a
  decompression bomb is one line, not a traceback or gigabytes of memory).
"""

from __future__ import annotations

import contextlib
import warnings
from pathlib import Path

from typing import TYPE_CHECKING

import numpy as np

from bdmm_cli.errors import InputError

if TYPE_CHECKING:  # torch is imported by the conversions that use it, so reading a photo does not load it
    import torch
    from torch import Tensor

#: File name endings of the photos bdmm reads (JPEG, PNG, BMP, WebP, TIFF).
PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
#: Largest photo accepted (width * height): 100 megapixels (phones take up to ~50-200 MP).
MAX_PIXELS = 100_000_000
#: Colour transparency is flattened onto.
BACKGROUND = (255, 255, 255)


def _to_rgb(im) -> np.ndarray:
    mode = im.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        grey = np.asarray(im, dtype=np.float64)
        top = 65535.0 if mode.startswith("I;16") or grey.max(initial=0) > 255 else 255.0
        grey = np.clip(np.rint(grey * (255.0 / top)), 0, 255).astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=2)
    if mode == "P" and "transparency" in im.info:
        im = im.convert("RGBA")
    if mode in ("RGBa", "La"):
        im = im.convert("RGBA")
    if im.mode in ("RGBA", "LA", "PA"):
        rgba = np.asarray(im.convert("RGBA"), dtype=np.float64)
        alpha = rgba[..., 3:4] / 255.0
        flat = rgba[..., :3] * alpha + np.asarray(BACKGROUND, np.float64) * (1.0 - alpha)
        return np.clip(np.rint(flat), 0, 255).astype(np.uint8)
    if im.mode != "RGB":
        im = im.convert("RGB")
    return np.asarray(im)


@contextlib.contextmanager
def _own_size_limit(Image):
    """Pillow's own bomb check off while the header is read: `MAX_PIXELS` is checked instead."""
    old = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None
    try:
        yield
    finally:
        Image.MAX_IMAGE_PIXELS = old


def read_image(path: str | Path) -> np.ndarray:
    """The image at `path` as (H, W, 3) uint8 RGB, EXIF orientation applied, alpha on white.

    Raises InputError when the file is missing, is not a readable image, or is larger
    than `MAX_PIXELS`.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise InputError(f"image not found: {path}")
    try:
        with warnings.catch_warnings(), _own_size_limit(Image):
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                w, h = im.size
                if w * h > MAX_PIXELS:
                    raise InputError(
                        f"image {path} is {w}x{h} ({w * h / 1e6:.0f} megapixels); bdmm reads photos up to "
                        f"{MAX_PIXELS // 1_000_000} megapixels: downscale it (the model sees a 256x256 crop)"
                    )
                im = ImageOps.exif_transpose(im)
                rgb = _to_rgb(im)
    except InputError:
        raise
    except Image.DecompressionBombError as exc:
        raise InputError(f"image {path} is too large to decode safely; downscale it") from exc
    except UnidentifiedImageError as exc:
        raise InputError(f"cannot read image {path}: not a readable image file (bdmm reads JPEG, PNG, WebP, "
                         "BMP, TIFF; convert HEIC/RAW photos to JPEG)") from exc
    except (OSError, ValueError, SyntaxError) as exc:
        raise InputError(f"cannot read image {path}: the file is damaged or truncated") from exc
    if rgb.ndim != 3 or rgb.shape[0] < 2 or rgb.shape[1] < 2:
        raise InputError(f"cannot read image {path}: image is empty")
    return np.ascontiguousarray(rgb)


# -- frames <-> network tensors ------------------------------------------------------------------

def to_uint8(images: Tensor) -> np.ndarray:
    """(..., 3, H, W) in [-1, 1] -> (..., H, W, 3) uint8, the authors' ``trunc((x + 1) / 2 * 255)``
    (as their test.py saves frames; used by animate and the eval test split)."""
    import torch

    x = ((images.detach().float().clamp(-1, 1) + 1.0) * 0.5 * 255.0).to(torch.uint8)
    return x.movedim(-3, -1).cpu().numpy()


def to_tensor(frames: np.ndarray, size: int, device: torch.device | str = "cpu") -> Tensor:
    """(N, H, W, 3) or (H, W, 3) uint8 -> (N, 3, size, size) float32 in [-1, 1] (bilinear resize)."""
    import torch
    import torch.nn.functional as F

    arr = np.asarray(frames)
    if arr.ndim == 3:
        arr = arr[None]
    x = torch.from_numpy(np.array(arr, copy=True)).to(device).permute(0, 3, 1, 2).float() / 127.5 - 1.0
    if x.shape[-2:] != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return x


def resize(frames: np.ndarray, size: int) -> np.ndarray:
    """(N, H, W, 3) uint8 -> (N, size, size, 3) uint8 (area/bilinear with antialiasing)."""
    if frames.shape[1:3] == (size, size):
        return frames
    import torch
    import torch.nn.functional as F

    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float()
    x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return x.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()


__all__ = ["MAX_PIXELS", "PHOTO_SUFFIXES", "read_image", "resize", "to_tensor", "to_uint8"]
