"""Reading a still image (the source photo) as RGB uint8."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bdmm_cli.errors import InputError


def read_image(path: str | Path) -> np.ndarray:
    """The image at `path` as (H, W, 3) uint8 RGB, EXIF orientation applied.

    Grey images are expanded to three channels and an alpha channel is dropped.
    Raises InputError when the file is missing or is not a readable image.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise InputError(f"image not found: {path}")
    try:
        with Image.open(path) as im:
            im = ImageOps.exif_transpose(im)
            rgb = np.asarray(im.convert("RGB"))
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise InputError(f"cannot read image {path}: not a readable image file") from exc
    if rgb.ndim != 3 or rgb.shape[0] < 2 or rgb.shape[1] < 2:
        raise InputError(f"cannot read image {path}: image is empty")
    return np.ascontiguousarray(rgb)
