"""Real-world video input and checked video output (issue 16 rows 2, 3, 4; media kinds of point 2).

Every file is made with the bundled ffmpeg; nothing is mocked.
"""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest

from bdmm_cli.errors import BdmmWarning, InputError
from bdmm_cli.video import VideoWriter, iter_frames, probe_video
from bdmm_cli.video.read import allowing_truncated
from media import ffmpeg, make_media, make_test_video, small_tmpfs

SRC = "testsrc=size=64x48:rate=25"


def _frames(path, **kw):
    return np.stack(list(iter_frames(path, **kw)))


def _faststart(tmp_path, frames=100):
    """An MP4 whose index (moov) is at the front, as phones and web exports write it."""
    return make_media(tmp_path / "fs.mp4", "testsrc=size=128x96:rate=25",
                      ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-g", "10", "-movflags", "+faststart"], frames=frames)


# --- row 2: truncated input --------------------------------------------------------------

def test_truncated_mp4_is_an_error_naming_both_counts(tmp_path):
    full = _faststart(tmp_path)
    data = full.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    assert probe_video(cut).num_frames == 100  # the header still announces all of them
    with pytest.raises(InputError) as info:
        _frames(cut)
    msg = str(info.value)
    decoded = sum(1 for _ in iter_frames(cut, allow_truncated=True))
    assert 0 < decoded < 100
    assert "truncated" in msg and f"{decoded} of the 100 frames" in msg and "--allow-truncated" in msg


def test_truncated_mp4_allowed_warns_with_both_counts(tmp_path):
    full = _faststart(tmp_path)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(full.read_bytes()[: len(full.read_bytes()) // 2])
    with warnings.catch_warnings(record=True) as seen, allowing_truncated():
        warnings.simplefilter("always")
        n = len(_frames(cut))
    notes = [str(w.message) for w in seen if issubclass(w.category, BdmmWarning)]
    assert notes == [f"{cut} is truncated: decoded {n} of the 100 frames its header announces; using those {n} frames"]


def test_complete_video_is_not_flagged(tmp_path):
    video = make_test_video(tmp_path / "v.mp4", frames=30)  # audio slightly longer than the video
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(_frames(video)) == 30


# --- row 3: variable frame rate ----------------------------------------------------------

def _vfr(tmp_path, audio=False):
    # 30 frames at 1/30 s, then 20 frames at 2/30 s: a phone that slowed down in low light
    pts = "setpts='if(lt(N,30),N/(30*TB),(30+(N-30)*2)/(30*TB))'"
    pre = ["-f", "lavfi", "-i", "sine=frequency=440:duration=2.3"] if audio else []
    args = ["-fps_mode", "vfr", "-c:v", "libx264", "-pix_fmt", "yuv420p"]
    if audio:
        args = ["-map", "1:v", "-map", "0:a", "-c:a", "aac"] + args
    return make_media(tmp_path / "vfr.mp4", f"testsrc=size=64x48:rate=30,{pts}", args, frames=50, pre=pre)


def test_vfr_video_gives_output_of_the_same_duration(tmp_path):
    video = _vfr(tmp_path, audio=True)
    info = probe_video(video)
    assert info.variable_rate
    frames = _frames(video)
    out = tmp_path / "out.mp4"
    with VideoWriter(out, info.fps, (64, 48), audio_from=video) as w:
        for f in frames:
            w.write(np.ascontiguousarray(f))
    got = probe_video(out)
    in_video_seconds = (30 * 1 + 20 * 2) / 30  # what the timestamps say: 2.33 s
    assert abs(len(frames) / info.fps - in_video_seconds) <= 2 / info.fps
    assert abs(got.duration - info.duration) <= 2 / info.fps  # was 2.80 s for 2.03 s
    # timestamps honoured: the slow second half is shown for twice as long
    assert abs(len(frames) - info.fps * in_video_seconds) <= 2


# --- row 4: checked output ---------------------------------------------------------------

def test_full_disk_is_one_error_and_nothing_left(tmp_path):
    rng = np.random.default_rng(0)
    with small_tmpfs(tmp_path / "small", "1m") as disk:
        for audio in (None, make_test_video(tmp_path / "a.mp4", frames=200, size=(64, 48))):
            out = disk / "out.mp4"
            with pytest.raises(InputError) as info:
                with VideoWriter(out, 25, (256, 256), audio_from=audio) as w:
                    for _ in range(200):
                        w.write(rng.integers(0, 256, (256, 256, 3), dtype=np.uint8))
            assert str(info.value).startswith(f"no space left on the device while writing {out}")
            assert os.listdir(disk) == []


def test_full_disk_while_muxing_audio_is_reported_as_full(tmp_path):
    # small enough for the video, too small for video + audio copy
    rng = np.random.default_rng(1)
    frames = [rng.integers(0, 256, (64, 64, 3), dtype=np.uint8) for _ in range(60)]
    probe = tmp_path / "probe.mp4"
    with VideoWriter(probe, 25, (64, 64)) as w:
        for f in frames:
            w.write(f)
    size = probe.stat().st_size
    audio = make_test_video(tmp_path / "a.mp4", frames=60, size=(64, 48))
    with small_tmpfs(tmp_path / "small", f"{(size * 3 // 2) // 1024 + 8}k") as disk:
        out = disk / "out.mp4"
        with pytest.raises(InputError) as info:
            with VideoWriter(out, 25, (64, 64), audio_from=audio) as w:
                for f in frames:
                    w.write(f)
        assert "no space left" in str(info.value) and "Invalid data" not in str(info.value)
        assert os.listdir(disk) == []


def test_written_video_is_verified_and_playable(tmp_path):
    out = tmp_path / "o.mp4"
    frames = _frames(make_test_video(tmp_path / "v.mp4", frames=12, size=(64, 48), audio=False))
    with VideoWriter(out, 25, (64, 48)) as w:
        for f in frames:
            w.write(np.ascontiguousarray(f))
    back = _frames(out)
    assert back.shape == frames.shape
    assert np.abs(back.astype(int) - frames.astype(int)).mean() < 3


def test_killed_encoder_is_an_error(tmp_path):
    out = tmp_path / "o.mp4"
    with pytest.raises(InputError, match="cannot write video"):
        with VideoWriter(out, 25, (64, 48)) as w:
            w.write(np.zeros((48, 64, 3), np.uint8))
            w._proc.kill()  # the encoder dies (OOM killer, ...) before the end
            w._proc.wait()
    assert os.listdir(tmp_path) == []


# --- point 2: real-world video kinds -----------------------------------------------------

def test_portrait_phone_video_rotation_is_applied(tmp_path):
    plain = make_media(tmp_path / "plain.mp4", SRC, ["-c:v", "libx264", "-pix_fmt", "yuv444p"], frames=5)
    rotated = tmp_path / "rot.mp4"
    ffmpeg("-display_rotation", "90", "-i", str(plain), "-c", "copy", str(rotated))
    info = probe_video(rotated)
    assert (info.width, info.height, info.rotation) == (48, 64, 90)
    a, b = _frames(plain), _frames(rotated)
    assert b.shape == (5, 64, 48, 3)
    # a display rotation of +90 degrees is counter-clockwise, as players show it
    ccw = np.rot90(a, k=1, axes=(1, 2))
    cw = np.rot90(a, k=-1, axes=(1, 2))
    err_ccw = np.abs(b.astype(int) - ccw).mean()
    assert err_ccw < 2 and err_ccw < np.abs(b.astype(int) - cw).mean() / 5


@pytest.mark.parametrize("codec,pix", [("libx264", "yuv420p10le"), ("libx265", "yuv420p10le"), ("libx265", "yuv420p")])
def test_10bit_and_hevc_decode_to_the_same_pictures(tmp_path, codec, pix):
    ref = make_media(tmp_path / "ref.mp4", SRC, ["-c:v", "libx264", "-pix_fmt", "yuv444p", "-qp", "0"], frames=8)
    extra = ["-x265-params", "log-level=error"] if codec == "libx265" else []
    video = make_media(tmp_path / "v.mp4", SRC, ["-c:v", codec, "-pix_fmt", pix, "-crf", "12", *extra], frames=8)
    info = probe_video(video)
    assert info.pix_fmt == pix and info.codec == ("hevc" if codec == "libx265" else "h264")
    a, b = _frames(ref), _frames(video)
    assert b.shape == a.shape == (8, 48, 64, 3) and b.dtype == np.uint8
    assert np.abs(a.astype(int) - b.astype(int)).mean() < 12  # colour bars, chroma subsampled


def test_odd_sized_video(tmp_path):
    video = make_media(tmp_path / "odd.mp4", "testsrc=size=65x49:rate=25", ["-c:v", "libx264", "-pix_fmt", "yuv444p"],
                       frames=6)
    frames = _frames(video)
    assert frames.shape == (6, 49, 65, 3)


def test_not_a_video_and_audio_only_are_one_line(tmp_path):
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(os.urandom(2000))
    with pytest.raises(InputError) as info:
        probe_video(junk)
    assert "\n" not in str(info.value) and "Invalid data" not in str(info.value)
    audio = make_media(tmp_path / "a.m4a", "sine=frequency=440:duration=1", ["-c:a", "aac"])
    with pytest.raises(InputError, match="no video stream"):
        probe_video(audio)
