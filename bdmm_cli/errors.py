"""Errors a user can act on.

Every problem caused by the user's input or environment (missing file, corrupt video,
wrong checkpoint, no disk space, ...) is raised as a :class:`BdmmError`. The CLI prints
its message on one line and exits with :attr:`BdmmError.exit_code`; Python callers can
catch it. Programming errors stay ordinary exceptions with tracebacks.
"""

from __future__ import annotations


class BdmmError(Exception):
    """An error with a one-line message meant for the user."""

    exit_code: int = 1

    def __init__(self, message: str, details: tuple[str, ...] | list[str] = ()) -> None:
        super().__init__(" ".join(str(message).split()))
        #: Lines printed under the error line (e.g. every bad file of a data set).
        self.details = tuple(details)


class InputError(BdmmError):
    """A file or argument given by the user cannot be used."""


class MissingResourceError(BdmmError):
    """A model file, weight or dependency is not available; the message says how to get it."""


class CheckpointError(BdmmError):
    """A checkpoint has the wrong layout (missing, unexpected or misshaped tensors) or is corrupt."""


class NotAvailableError(BdmmError):
    """A command or feature that this build does not provide."""

    exit_code = 2


class BdmmWarning(UserWarning):
    """Something the user should know that does not stop the command (e.g. a cache that
    cannot be written, a truncated video used with --allow-truncated). The CLI prints it as
    one ``warning:`` line; other libraries' warnings are shown only with ``--verbose``."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))
