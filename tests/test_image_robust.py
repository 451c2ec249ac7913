"""Photos as cameras, phones and editors write them (issue 16 row 1 and point 2).

Each kind is made with Pillow (or OpenCV for 16-bit colour PNG) and compared with what a
viewer shows: orientation applied, colour as RGB, transparency on white.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from bdmm_cli.errors import InputError
from bdmm_cli.video import read_image
from bdmm_cli.video.image import MAX_PIXELS


def _pattern(h=32, w=64) -> np.ndarray:
    """Left half red, right half blue, a green top band: every rotation is distinguishable."""
    a = np.zeros((h, w, 3), np.uint8)
    a[:, : w // 2] = (220, 30, 30)
    a[:, w // 2 :] = (30, 30, 220)
    a[:16] = (30, 220, 30)
    return a


def _bomb_png(path, side=20000):
    """A valid 1-bit PNG of side x side pixels that is only ~50 KB on disk."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    row = b"\0" + b"\0" * ((side + 7) // 8)
    comp = zlib.compressobj(9)
    body = b"".join(comp.compress(row) for _ in range(side)) + comp.flush()
    ihdr = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", body) + chunk(b"IEND", b""))
    return path


def test_decompression_bomb_is_one_line(tmp_path):
    bomb = _bomb_png(tmp_path / "bomb.png")
    assert bomb.stat().st_size < 1_000_000 and 20000 * 20000 > MAX_PIXELS
    with pytest.raises(InputError) as info:
        read_image(bomb)
    assert "20000x20000" in str(info.value) and "downscale" in str(info.value)


def test_decompression_bomb_through_the_cli(tmp_path):
    from typer.testing import CliRunner

    from bdmm_cli.cli import app
    from media import make_test_video

    bomb = _bomb_png(tmp_path / "bomb.png")
    video = make_test_video(tmp_path / "v.mp4", frames=5)
    result = CliRunner().invoke(app, ["animate", str(bomb), str(video), "-o", str(tmp_path / "o.mp4")])
    assert result.exit_code == 1
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: image") and "Traceback" not in result.output
    assert not (tmp_path / "o.mp4").exists()


@pytest.mark.parametrize("orientation,k", [(3, 2), (6, -1), (8, 1)])
def test_exif_orientation_is_applied(tmp_path, orientation, k):
    a = _pattern()
    p = tmp_path / "phone.jpg"
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(a).save(p, quality=95, exif=exif)
    got = read_image(p).astype(int)
    want = np.rot90(a, k=k).astype(int)  # 6: the viewer turns it 90 degrees clockwise
    assert got.shape == want.shape
    assert np.abs(got - want).mean() < 6


def test_cmyk_jpeg_is_rgb(tmp_path):
    a = _pattern()
    p = tmp_path / "print.jpg"
    Image.fromarray(a).convert("CMYK").save(p, quality=95)
    assert Image.open(p).mode == "CMYK"
    got = read_image(p)
    assert got.shape == a.shape and np.abs(got.astype(int) - a.astype(int)).mean() < 8


def test_grayscale_gives_three_equal_channels(tmp_path):
    g = (np.arange(20 * 40).reshape(20, 40) % 256).astype(np.uint8)
    p = tmp_path / "g.png"
    Image.fromarray(g, "L").save(p)
    got = read_image(p)
    assert got.shape == (20, 40, 3) and all((got[..., c] == g).all() for c in range(3))


def test_rgba_is_flattened_onto_white(tmp_path):
    a = np.zeros((20, 40, 4), np.uint8)  # colour under full transparency: black
    a[:, 20:] = (255, 0, 0, 255)
    a[:10, 20:, 3] = 128  # half-transparent red
    p = tmp_path / "cutout.png"
    Image.fromarray(a, "RGBA").save(p)
    got = read_image(p).astype(int)
    assert (got[:, :20] == 255).all()  # transparent -> white, not black
    assert (got[10:, 20:] == (255, 0, 0)).all()
    half = 128 / 255
    assert np.abs(got[:10, 20:] - np.array([255, 255 * (1 - half), 255 * (1 - half)])).max() <= 1


def test_palette_with_transparency_is_flattened(tmp_path):
    a = np.zeros((8, 8), np.uint8)
    a[:, 4:] = 1
    im = Image.fromarray(a, "P")
    im.putpalette([0, 0, 0, 0, 0, 255] + [0] * 762)
    p = tmp_path / "icon.png"
    im.save(p, transparency=0)
    got = read_image(p)
    assert (got[:, :4] == 255).all() and (got[:, 4:] == (0, 0, 255)).all()


def test_16bit_grey_png_is_scaled_not_clipped(tmp_path):
    g = (np.arange(20 * 40).reshape(20, 40) * 80).astype(np.uint16)
    p = tmp_path / "g16.png"
    Image.fromarray(g).save(p)
    assert Image.open(p).mode.startswith("I")
    got = read_image(p)
    want = np.rint(g / 257.0)
    assert got.dtype == np.uint8 and np.abs(got[..., 0].astype(int) - want).max() <= 1
    assert got[..., 0].min() < 10 and got[..., 0].max() > 240  # the full range, not white everywhere


def test_16bit_rgb_png(tmp_path):
    import cv2

    rgb16 = (_pattern().astype(np.uint16) * 257)
    p = tmp_path / "rgb16.png"
    assert cv2.imwrite(str(p), rgb16[..., ::-1])
    got = read_image(p)
    assert np.abs(got.astype(int) - _pattern().astype(int)).max() <= 1


def test_webp(tmp_path):
    from PIL import features

    if not features.check("webp"):
        pytest.skip("this Pillow has no WebP support")
    a = _pattern()
    p = tmp_path / "photo.webp"
    Image.fromarray(a).save(p, lossless=True)
    assert (read_image(p) == a).all()


def test_damaged_and_unknown_images_are_one_line(tmp_path):
    a = _pattern(200, 200)
    p = tmp_path / "cut.jpg"
    Image.fromarray(a).save(p, quality=95)
    p.write_bytes(p.read_bytes()[:300])
    with pytest.raises(InputError, match="damaged or truncated"):
        read_image(p)
    q = tmp_path / "photo.heic"
    q.write_bytes(b"\0\0\0\x18ftypheic" + bytes(100))
    with pytest.raises(InputError, match="HEIC"):
        read_image(q)
