"""Library noise kept off the user's terminal unless ``bdmm --verbose``.

- Python warnings: the CLI shows a :class:`~bdmm_cli.errors.BdmmWarning` as one
  ``warning:`` line and hides every other library's warnings (`cli_warnings`).
- Native logging that bypasses Python (MediaPipe's ``W0000 ...`` lines, libpng, TFLite):
  `native_stderr_quiet()` points file descriptor 2 at /dev/null for the duration of the
  block, when the CLI asked for quiet (`set_verbose(False)`); Python callers of the library
  get the same quiet default; `set_verbose(True)` lets everything through.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import warnings
from typing import Callable, Iterator

from bdmm_cli.errors import BdmmWarning

_state = {"quiet": True, "verbose": False}
_lock = threading.Lock()
_depth = {"n": 0, "saved": None}


def set_verbose(verbose: bool) -> None:
    """CLI start: ``verbose`` shows library warnings and native logs; otherwise both are hidden."""
    _state["verbose"] = bool(verbose)
    _state["quiet"] = not verbose


def verbose() -> bool:
    return _state["verbose"]


@contextlib.contextmanager
def native_stderr_quiet() -> Iterator[None]:
    """Silence file descriptor 2 (native library logging) within the block, in quiet mode."""
    if not _state["quiet"]:
        yield
        return
    with _lock:
        if _depth["n"] == 0:
            try:
                sys.stderr.flush()
                saved = os.dup(2)
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, 2)
                os.close(devnull)
                _depth["saved"] = saved
            except (OSError, ValueError):
                _depth["saved"] = None
        _depth["n"] += 1
    try:
        yield
    finally:
        with _lock:
            _depth["n"] -= 1
            if _depth["n"] == 0 and _depth["saved"] is not None:
                os.dup2(_depth["saved"], 2)
                os.close(_depth["saved"])
                _depth["saved"] = None


@contextlib.contextmanager
def cli_warnings(show: Callable[[str], None]) -> Iterator[None]:
    """Within a command: BdmmWarning -> ``show(message)`` (once per message); other warnings
    are dropped unless verbose (then shown the usual way)."""
    seen: set[str] = set()
    with warnings.catch_warnings():
        original = warnings.showwarning

        def _show(message, category, filename, lineno, file=None, line=None):
            if issubclass(category, BdmmWarning):
                text = str(message)
                if text not in seen:
                    seen.add(text)
                    show(text)
            elif _state["verbose"]:
                original(message, category, filename, lineno, file, line)

        warnings.showwarning = _show
        warnings.simplefilter("default" if _state["verbose"] else "ignore")
        warnings.simplefilter("always", BdmmWarning)
        yield


@contextlib.contextmanager
def recording_warnings(into: list[str]) -> Iterator[None]:
    """Within the block, append the text of every BdmmWarning shown to ``into`` (once per
    text), then show it as before (the CLI's ``warning:`` line, or Python's default)."""
    previous = warnings.showwarning

    def _record(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, BdmmWarning) and str(message) not in into:
            into.append(str(message))
        previous(message, category, filename, lineno, file, line)

    warnings.showwarning = _record
    try:
        yield
    finally:
        if warnings.showwarning is _record:
            warnings.showwarning = previous


__all__ = ["cli_warnings", "recording_warnings", "native_stderr_quiet", "set_verbose", "verbose"]
