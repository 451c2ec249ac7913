"""The Closing mixin: ``with`` returns the object and closes it on the way out, also when
the block raises (and the exception still propagates)."""

from __future__ import annotations

import pytest

from bdmm_cli.closing import Closing
from bdmm_cli.hub.progress import RichBar
from bdmm_cli.pose.detector import MediaPipePoseDetector
from bdmm_cli.pose.largest import LargestPersonDetector, MultiPoseDetector


class _Counted(Closing):
    def __init__(self) -> None:
        self.closed = 0

    def close(self) -> None:
        self.closed += 1


def test_with_returns_the_object_and_closes_it():
    obj = _Counted()
    with obj as got:
        assert got is obj and obj.closed == 0
    assert obj.closed == 1


def test_close_runs_when_the_block_raises_and_the_error_propagates():
    obj = _Counted()
    with pytest.raises(KeyError):
        with obj:
            raise KeyError("boom")
    assert obj.closed == 1


def test_the_resource_holders_use_it():
    for cls in (RichBar, MediaPipePoseDetector, LargestPersonDetector, MultiPoseDetector):
        assert issubclass(cls, Closing)
    bar = RichBar(total=3)
    with bar as b:
        b.update(3)
    with bar:  # closing twice is harmless
        pass
