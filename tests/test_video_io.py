"""Video decode/encode: frame counts, fps, audio, atomic output, clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from bdmm_cli.errors import InputError
from bdmm_cli.video import VideoWriter, count_frames, iter_frames, probe_video, read_image
from media import make_test_video


def test_probe_and_stream(tmp_path):
    src = make_test_video(tmp_path / "in.mp4", frames=20, fps=25, size=(64, 48), audio=True)
    info = probe_video(src)
    assert (info.width, info.height, info.fps) == (64, 48, 25.0)
    assert info.has_audio and info.audio_codec == "aac"
    frames = list(iter_frames(src))
    assert len(frames) == 20 == count_frames(src)
    assert frames[0].shape == (48, 64, 3) and frames[0].dtype == np.uint8
    sub = list(iter_frames(src, start=5, stop=9))
    assert len(sub) == 4
    np.testing.assert_array_equal(sub[0], frames[5])


def test_write_roundtrip_keeps_fps_and_audio(tmp_path):
    src = make_test_video(tmp_path / "in.mp4", frames=30, fps=30, size=(64, 48), audio=True)
    frames = list(iter_frames(src, start=10, stop=22))
    out = tmp_path / "out.mp4"
    with VideoWriter(out, 30, (64, 48), audio_from=src, audio_start=10 / 30) as w:
        for f in frames:
            w.write(f)
    info = probe_video(out)
    assert info.fps == 30 and info.has_audio and (info.width, info.height) == (64, 48)
    back = list(iter_frames(out))
    assert len(back) == len(frames)
    # H.264 is lossy but close on a test pattern.
    assert np.abs(back[3].astype(float) - frames[3].astype(float)).mean() < 8
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4", "out.mp4"]


def test_writer_without_audio(tmp_path):
    src = make_test_video(tmp_path / "in.mp4", frames=5, audio=False)
    assert not probe_video(src).has_audio
    with VideoWriter(tmp_path / "o.mp4", 12.5, (64, 48), audio_from=src) as w:
        for f in iter_frames(src):
            w.write(f)
    info = probe_video(tmp_path / "o.mp4")
    assert info.fps == 12.5 and not info.has_audio and count_frames(tmp_path / "o.mp4") == 5


def test_writer_is_atomic_and_refuses_overwrite(tmp_path):
    out = tmp_path / "o.mp4"
    frame = np.zeros((48, 64, 3), np.uint8)
    with pytest.raises(KeyboardInterrupt):
        with VideoWriter(out, 25, (64, 48)) as w:
            w.write(frame)
            raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []
    out.write_bytes(b"precious")
    with pytest.raises(InputError, match="already exists"):
        with VideoWriter(out, 25, (64, 48)) as w:
            w.write(frame)
    assert out.read_bytes() == b"precious"
    with VideoWriter(out, 25, (64, 48), force=True) as w:
        w.write(frame)
    assert probe_video(out).num_frames in (0, 1) or count_frames(out) == 1
    assert count_frames(out) == 1


def test_writer_rejects_bad_frames_and_sizes(tmp_path):
    with pytest.raises(ValueError, match="even"):
        VideoWriter(tmp_path / "o.mp4", 25, (63, 48))
    with pytest.raises(ValueError, match=r"\(48, 64, 3\) uint8"):
        with VideoWriter(tmp_path / "o.mp4", 25, (64, 48)) as w:
            w.write(np.zeros((48, 64, 3), np.float32))
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(InputError, match="no frames"):
        with VideoWriter(tmp_path / "o.mp4", 25, (64, 48)):
            pass
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("content", [b"", b"definitely not a video" * 50])
def test_bad_videos_give_input_error(tmp_path, content):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(content)
    with pytest.raises(InputError, match="cannot read video|has no frames"):
        list(iter_frames(bad))
    with pytest.raises(InputError, match="not found"):
        probe_video(tmp_path / "missing.mp4")


def test_truncated_video_is_an_error_or_shorter(tmp_path):
    src = make_test_video(tmp_path / "in.mp4", frames=20, audio=False)
    data = src.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 3])
    # An MP4 cut before its index cannot be opened at all.
    with pytest.raises(InputError):
        list(iter_frames(cut))


def test_read_image(tmp_path):
    from PIL import Image

    rgba = np.random.default_rng(0).integers(0, 255, (20, 30, 4), dtype=np.uint8)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    img = read_image(tmp_path / "a.png")
    assert img.shape == (20, 30, 3)
    alpha = rgba[..., 3:4] / 255.0  # transparency flattened onto white (what a viewer shows)
    np.testing.assert_array_equal(img, np.rint(rgba[..., :3] * alpha + 255 * (1 - alpha)).astype(np.uint8))
    Image.fromarray(rgba[..., 0], "L").save(tmp_path / "g.png")
    assert read_image(tmp_path / "g.png").shape == (20, 30, 3)
    (tmp_path / "x.jpg").write_bytes(b"nope")
    with pytest.raises(InputError, match="not a readable image"):
        read_image(tmp_path / "x.jpg")
    with pytest.raises(InputError, match="not found"):
        read_image(tmp_path / "missing.jpg")


def test_audio_shorter_than_video_keeps_every_frame(tmp_path):
    """AAC often ends a little before the pictures; the output must keep all frames anyway."""
    from media import ffmpeg_exe
    import subprocess

    src = tmp_path / "in.mp4"
    subprocess.run([ffmpeg_exe(), "-loglevel", "error", "-y", "-f", "lavfi", "-i", "testsrc=size=64x48:rate=10",
                    "-f", "lavfi", "-i", "sine=frequency=440:duration=1.05", "-frames:v", "13",
                    "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", str(src)], check=True)
    frames = list(iter_frames(src))
    assert len(frames) == 13
    with VideoWriter(tmp_path / "o.mp4", 10, (64, 48), audio_from=src) as w:
        for f in frames:
            w.write(f)
    assert count_frames(tmp_path / "o.mp4") == 13
    assert probe_video(tmp_path / "o.mp4").has_audio


def test_audio_only_file_says_no_video_stream(tmp_path):
    from media import ffmpeg_exe
    import subprocess

    src = tmp_path / "a.m4a"
    subprocess.run([ffmpeg_exe(), "-loglevel", "error", "-y", "-f", "lavfi", "-i", "sine=duration=1",
                    "-c:a", "aac", str(src)], check=True)
    with pytest.raises(InputError, match="no video stream"):
        probe_video(src)
