"""One mixin for the objects that hold a native resource until ``close()``.

    with MediaPipePoseDetector() as detect:   # closed at the end of the block
        ...

``close()`` must be safe to call more than once; ``with`` calls it on the way out, also on
an exception (which it does not swallow).
"""

from __future__ import annotations

from typing import TypeVar

_Self = TypeVar("_Self", bound="Closing")


class Closing:
    """``__enter__`` returns the object, ``__exit__`` calls its ``close()``."""

    def close(self) -> None:
        """Release what the object holds (idempotent)."""

    def __enter__(self: _Self) -> _Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
