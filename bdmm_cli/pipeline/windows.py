"""Frame ranges of a run (``--frames A:B``); the window schedule itself lives in
:mod:`bdmm_cli.window.schedule`."""

from __future__ import annotations

from bdmm_cli.errors import InputError


def parse_frame_range(text: str | None) -> tuple[int, int | None]:
    """``"A:B"`` -> ``(A, B)``: frames A (inclusive) to B (exclusive), from 0.

    Either side may be left out (``"10:"``, ``":100"``); ``None`` or ``""`` is the whole video.
    Raises InputError for anything else (negative numbers, B <= A, not numbers).
    """
    if text is None or text.strip() in ("", ":"):
        return 0, None
    parts = text.split(":")
    if len(parts) != 2:
        raise InputError(f"--frames must look like A:B (e.g. 0:120), got {text!r}")
    try:
        start = int(parts[0]) if parts[0].strip() else 0
        stop = int(parts[1]) if parts[1].strip() else None
    except ValueError as exc:
        raise InputError(f"--frames must look like A:B with whole numbers, got {text!r}") from exc
    if start < 0 or (stop is not None and stop < 0):
        raise InputError(f"--frames takes frame numbers from 0, got {text!r}")
    if stop is not None and stop <= start:
        raise InputError(f"--frames {text!r} is empty: B must be greater than A")
    return start, stop


__all__ = ["parse_frame_range"]
