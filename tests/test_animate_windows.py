"""Window schedule (the authors' test mode and overlap mode), blending, frame ranges, run store."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bdmm_cli.errors import InputError
from bdmm_cli.pipeline.cache import RunStore, hash_path, run_key
from bdmm_cli.window.stream import batched, windowed
from bdmm_cli.pipeline.windows import parse_frame_range
from bdmm_cli.window.schedule import WindowSchedule, blend_overlap, blend_weights


def _official_test_chunks(n: int, T: int = 6):
    """The authors' test list, written independently: pad the frame list to a multiple of T
    by repeating the last frame, cut into chunks; previous = start-1 (or 0), future =
    start+T (or the last frame of the padded list)."""
    gen = list(range(n))
    while len(gen) % T:
        gen.append(gen[-1])
    chunks = []
    for start in range(0, len(gen), T):
        pre = gen[start - 1] if start > 0 else gen[0]
        post = gen[start + T] if start + T < len(gen) else gen[-1]
        chunks.append((tuple(gen[start : start + T]), pre, post))
    return chunks


@pytest.mark.parametrize("n", [1, 5, 6, 7, 12, 13, 37])
def test_test_mode_matches_the_authors_chunks(n):
    sched = WindowSchedule(window=6)
    wins = sched.windows(n)
    assert [(w.frames, w.pre, w.post) for w in wins] == _official_test_chunks(n)
    assert sum(w.valid for w in wins) == n  # padding removed: every frame emitted once
    assert all(w.carry_state == (w.index > 0) for w in wins)
    assert all(w.blend == 0 and w.hold == 0 and w.emit == (0, w.valid) for w in wins)


def test_thirteen_frames_three_windows_last_padded():
    wins = WindowSchedule(6).windows(13)
    assert len(wins) == 3
    assert wins[2].frames == (12, 12, 12, 12, 12, 12) and wins[2].valid == 1
    assert wins[2].pre == 11 and wins[2].post == 12
    assert wins[0].pre == 0 and wins[0].post == 6 and wins[1].post == 12


def test_streaming_window_equals_full_knowledge_window():
    sched = WindowSchedule(6, overlap=2)
    n = 23
    for w in sched.windows(n):
        if w.start + 6 <= n - 1:  # the streaming pipeline builds these before the end is known
            assert sched.window_at(w.index, None) == w


class _CountingFrames:
    """A stream of integer "frames" that records how many are alive (yielded, not yet freed)."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.alive = 0
        self.peak = 0

    def __iter__(self):
        for i in range(self.n):
            self.alive += 1
            self.peak = max(self.peak, self.alive)
            yield _Frame(i, self)


class _Frame:
    def __init__(self, index: int, owner: _CountingFrames) -> None:
        self.index = index
        self.owner = owner

    def __del__(self) -> None:
        self.owner.alive -= 1


@pytest.mark.parametrize("n,T,K", [(1, 6, 0), (13, 6, 0), (37, 6, 0), (23, 6, 2), (31, 5, 2)])
def test_windowed_stream_equals_the_schedule_and_holds_t_plus_2_frames(n, T, K):
    sched = WindowSchedule(T, overlap=K)
    frames = _CountingFrames(n)
    got = []
    for item in windowed(frames, sched):
        got.append((item.window, tuple(f.index for f in item.frames), item.pre.index, item.post.index))
        del item
    expected = [(w, w.frames, w.pre, w.post) for w in sched.windows(n)]
    assert got == expected
    assert frames.peak <= T + 2  # constant memory, whatever the video length


def test_windowed_empty_stream_and_batched():
    assert list(windowed(iter([]), WindowSchedule(6))) == []
    assert list(batched(range(7), 3)) == [[0, 1, 2], [3, 4, 5], [6]]
    assert list(batched([], 3)) == []


@pytest.mark.parametrize("n,T,K", [(13, 6, 2), (20, 6, 3), (6, 6, 1), (7, 4, 2), (30, 6, 1), (31, 5, 2)])
def test_overlap_covers_every_frame_once_after_blending(n, T, K):
    sched = WindowSchedule(T, overlap=K)
    wins = sched.windows(n)
    emitted = []
    for w in wins:
        # a window writes its first K outputs blended with the previous window's held-back
        # tail, then its own; the last K of a non-last window are held for the next window.
        a, b = w.emit
        emitted += list(w.frames[a:b])
        assert w.blend == (K if w.index else 0) and w.hold == (0 if w is wins[-1] else K)
        if w.index > 0:
            prev = wins[w.index - 1]
            assert prev.frames[T - K :] == w.frames[:K]  # the shared frames
            assert prev.valid == T
        assert not w.carry_state
        assert w.pre == max(w.start - 1, 0)
    assert emitted == list(range(n))


def test_blend_weights_and_blend():
    np.testing.assert_allclose(blend_weights(3), [0.25, 0.5, 0.75])
    a = np.zeros((3, 2, 2, 3), np.uint8)
    b = np.full((3, 2, 2, 3), 200, np.uint8)
    out = blend_overlap(a, b)
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out[:, 0, 0, 0], [50, 100, 150])


def test_bad_schedules():
    with pytest.raises(InputError, match="overlap"):
        WindowSchedule(6, overlap=4)
    with pytest.raises(InputError, match="overlap"):
        WindowSchedule(6, overlap=-1)
    with pytest.raises(InputError, match="window"):
        WindowSchedule(0)


@pytest.mark.parametrize(
    "text,expected",
    [(None, (0, None)), ("", (0, None)), ("10:20", (10, 20)), ("5:", (5, None)), (":7", (0, 7))],
)
def test_parse_frame_range(text, expected):
    assert parse_frame_range(text) == expected


@pytest.mark.parametrize("text", ["10", "a:b", "5:5", "9:3", "-1:4", "1:2:3"])
def test_parse_frame_range_rejects(text):
    with pytest.raises(InputError, match="--frames"):
        parse_frame_range(text)


def test_run_store_roundtrip_and_resume_point(tmp_path):
    doc = {"video": "abc", "window": 6}
    store = RunStore(doc, root=tmp_path)
    assert store.windows_done() == 0
    f0 = np.random.default_rng(0).integers(0, 255, (6, 8, 8, 3), dtype=np.uint8)
    f1 = np.random.default_rng(1).integers(0, 255, (3, 8, 8, 3), dtype=np.uint8)
    s0 = {"last_frame": torch.randn(1, 3, 8, 8)}
    s1 = {"last_frame": torch.randn(1, 3, 8, 8)}
    store.save_window(0, f0, s0)
    store.save_window(1, f1, s1)
    again = RunStore(dict(doc), root=tmp_path)  # same key from an equal document
    assert again.key == store.key and again.windows_done() == 2
    np.testing.assert_array_equal(again.load_frames(1), f1)
    assert again.load_state(0) is None  # only the latest state is kept
    torch.testing.assert_close(again.load_state(1)["last_frame"], s1["last_frame"], rtol=0, atol=0)
    # a missing window file (e.g. deleted) means resume from there
    (store.dir / "window_00001.npz").unlink()
    assert again.windows_done() == 1
    # no temporary files remain
    assert not [p for p in store.dir.iterdir() if p.name.endswith(".part")]
    store.clear()
    assert not store.dir.exists() and RunStore(doc, root=tmp_path).windows_done() == 0


def test_run_key_depends_on_every_setting(tmp_path):
    base = {"a": 1, "b": [1, 2]}
    assert run_key(base) == run_key({"b": [1, 2], "a": 1})
    assert run_key(base) != run_key({"a": 2, "b": [1, 2]})
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "x.json").write_text("1")
    h1 = hash_path(tmp_path / "d")
    (tmp_path / "d" / "x.json").write_text("2")
    assert hash_path(tmp_path / "d") != h1


def test_run_store_prune_keeps_the_newest_runs_and_this_one(tmp_path):
    import os

    frames = np.zeros((1, 4, 4, 3), np.uint8)
    stores = [RunStore({"run": i}, root=tmp_path) for i in range(6)]
    for age, store in enumerate(stores):
        store.save_window(0, frames, None)
        t = 1_000_000 + age * 10  # stores[5] is the newest
        os.utime(store.dir, (t, t))
    old = stores[0]  # the oldest run prunes the others but never itself
    old.prune(keep=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([stores[5].key, stores[4].key, old.key])


def test_run_store_resume_reports_and_deletes_damaged_data(tmp_path):
    store = RunStore({"run": 1}, root=tmp_path)
    store.save_window(0, np.zeros((2, 4, 4, 3), np.uint8), {"last_frame": torch.ones(1, 3, 4, 4)})
    torch.testing.assert_close(store.resume_state(0)["last_frame"], torch.ones(1, 3, 4, 4))
    with pytest.raises(InputError, match="incomplete"):
        store.resume_state(1)  # the stored state is window 0's
    assert not store.dir.exists()
    store.save_window(0, np.zeros((2, 4, 4, 3), np.uint8), None)
    (store.dir / "window_00000.npz").write_bytes(b"not a zip")
    with pytest.raises(InputError, match="damaged"):
        store.resume_frames(0)
    assert not store.dir.exists()
