"""The window schedule: cutting a frame sequence into generator windows, and putting their
outputs back together. The one home of the authors' pre/post neighbour rule, used by
``bdmm animate`` (streamed), training (``train.data``) and the test split (``metrics.testsplit``).

Two schedules, both described by a list of :class:`Window` records:

**Test mode** (``overlap=0``, the default; the authors' ``test.py``): non-overlapping
windows of ``T`` frames (6 in the paper) starting at ``0, T, 2T, ...``. The last window is
padded to ``T`` frames by repeating the last frame, and the padded outputs are dropped.
Window ``w`` starting at frame ``s`` uses

- ``pre  = s - 1`` (the frame before the window; frame 0 for the first window),
- ``post = s + T`` (the frame after the window; the last frame for the last window).

The generator's forward state and last generated frame are carried from one window to the
next (``carry_state=True``); its backward branch restarts in every window from the flow to
``post``.

**Overlap mode** (``overlap=K``, ``0 < K <= T/2``, so a frame is shared by at most two windows): windows of ``T`` frames with stride
``T - K``, so consecutive windows share ``K`` frames; the last window is padded like in test
mode. The state a window returns belongs to its *last* frame, which lies ``K`` frames inside
the next window, so carrying it would misalign the recurrence in time: in overlap mode every
window starts fresh (``carry_state=False``) exactly like the first window of test mode, from
the flow to the frame before it. The overlaps are then cross-faded linearly: a frame shared
by the previous window (output ``a``) and the current one (output ``b``) at overlap position
``j = 0..K-1`` becomes ``(1 - w_j) a + w_j b`` with ``w_j = (j + 1) / (K + 1)``, so the
weights move evenly from the old window to the new one and never reach 0 or 1 (see
:func:`blend_weights`). Fresh windows are independent, so overlap mode can batch windows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bdmm_cli.errors import InputError

DEFAULT_WINDOW = 6


@dataclass(frozen=True)
class Window:
    """One generator call.

    Attributes:
        index: window number, from 0.
        frames: the ``T`` frame indices fed to the generator (relative to the first frame
            of the run); the tail of the last window repeats the last frame.
        valid: how many of ``frames`` are real (the rest are padding, dropped on output).
        pre: index of the frame before the window (0 for the first window).
        post: index of the frame after the window (the last frame for the last window).
        blend: how many leading outputs are shared with the previous window and written
            cross-faded with its held-back tail (``K`` in overlap mode after the first
            window, else 0).
        hold: how many trailing outputs are held back to be cross-faded by the next window
            (``K`` in overlap mode except for the last window, else 0).
        carry_state: run from the previous window's state (test mode) or fresh (overlap mode,
            first window).
    """

    index: int
    frames: tuple[int, ...]
    valid: int
    pre: int
    post: int
    blend: int
    hold: int
    carry_state: bool

    @property
    def start(self) -> int:
        return self.frames[0]

    @property
    def stop(self) -> int:
        """One past the last real frame."""
        return self.frames[0] + self.valid

    @property
    def emit(self) -> tuple[int, int]:
        """Positions ``[a, b)`` of this window's outputs written when it finishes: the
        ``blend`` shared ones (cross-faded) and its own, minus the ``hold`` tail."""
        return 0, self.valid - self.hold


@dataclass(frozen=True)
class WindowSchedule:
    """How a run cuts its frames: window length ``T`` and overlap ``K``."""

    window: int = DEFAULT_WINDOW
    overlap: int = 0

    def __post_init__(self) -> None:
        if self.window < 1:
            raise InputError(f"--window must be at least 1, got {self.window}")
        if self.overlap < 0 or 2 * self.overlap > self.window:
            raise InputError(
                f"--overlap must be between 0 and half the window ({self.window // 2}), got {self.overlap}"
            )

    @property
    def stride(self) -> int:
        return self.window - self.overlap

    def num_windows(self, num_frames: int) -> int:
        """Number of windows for ``num_frames`` frames (at least one frame)."""
        if num_frames < 1:
            raise ValueError("a run needs at least one frame")
        if num_frames <= self.window:
            return 1
        return 1 + -(-(num_frames - self.window) // self.stride)

    def window_at(self, index: int, num_frames: int | None) -> Window:
        """Window ``index``; ``num_frames`` None means "the video goes on past this window".

        A window is complete once the frames up to ``start + T`` (its ``post``) are known,
        or the video ended; the streaming pipeline calls this with ``num_frames=None`` while
        the end is not yet in sight, and with the true count once it is.
        """
        T, K = self.window, self.overlap
        start = index * self.stride
        if num_frames is not None and start >= num_frames:
            raise IndexError(f"window {index} starts after the last frame")
        last = None if num_frames is None else num_frames - 1
        real = [f for f in range(start, start + T) if last is None or f <= last]
        frames = tuple(real + [real[-1]] * (T - len(real)))
        is_last = last is not None and start + T > last
        post = last if is_last else start + T
        return Window(
            index=index,
            frames=frames,
            valid=len(real),
            pre=max(start - 1, 0),
            post=post,
            blend=0 if index == 0 else K,
            hold=0 if is_last else K,
            carry_state=K == 0 and index > 0,
        )

    def windows(self, num_frames: int) -> list[Window]:
        """All windows of a run of ``num_frames`` frames."""
        return [self.window_at(i, num_frames) for i in range(self.num_windows(num_frames))]


def blend_weights(overlap: int) -> np.ndarray:
    """(K,) weight of the *new* window at each shared frame: ``(j + 1) / (K + 1)``."""
    return (np.arange(overlap, dtype=np.float32) + 1.0) / (overlap + 1.0)


def blend_overlap(previous: np.ndarray, current: np.ndarray) -> np.ndarray:
    """Cross-fade two windows' outputs of the same ``K`` frames.

    Args:
        previous: (K, H, W, 3) uint8, the previous window's last K outputs.
        current: (K, H, W, 3) uint8, the current window's first K outputs.
    Returns:
        (K, H, W, 3) uint8, ``round((1 - w) * previous + w * current)`` per frame.
    """
    if previous.shape != current.shape:
        raise ValueError(f"overlap shapes differ: {previous.shape} vs {current.shape}")
    w = blend_weights(previous.shape[0]).reshape(-1, 1, 1, 1)
    mixed = (1.0 - w) * previous.astype(np.float32) + w * current.astype(np.float32)
    return np.clip(np.rint(mixed), 0, 255).astype(np.uint8)


__all__ = [
    "DEFAULT_WINDOW",
    "Window",
    "WindowSchedule",
    "blend_overlap",
    "blend_weights",
]
