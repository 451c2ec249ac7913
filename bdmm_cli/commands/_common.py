"""What every command shares: turning BdmmError / Ctrl-C into a one-line message and exit code."""

from __future__ import annotations

import functools
import sys
from typing import Callable, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from bdmm_cli.errors import BdmmError

F = TypeVar("F", bound=Callable)

err_console = Console(stderr=True, highlight=False, soft_wrap=True)


def print_error(message: str, details: tuple[str, ...] = ()) -> None:
    """Print `error: message` on stderr (then each of `details` indented): bdmm's one error style."""
    err_console.print(f"[bold red]error:[/] {escape(message)}", markup=True)
    for line in details:
        err_console.print(f"  {line}", markup=False)


def fail(message: str, exit_code: int = 1, details: tuple[str, ...] = ()) -> None:
    """Print `error: message` on stderr (then each of `details` indented) and leave with `exit_code`."""
    print_error(message, details)
    raise typer.Exit(exit_code)


def warn(message: str) -> None:
    """Print `warning: message` on stderr (the command goes on)."""
    err_console.print(f"[yellow]warning:[/] {escape(message)}", markup=True)


def handle_errors(fn: F) -> F:
    """Decorator for command functions: BdmmError -> one line + its exit code; Ctrl-C -> 130."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from bdmm_cli.noise import cli_warnings

        try:
            with cli_warnings(warn):
                return fn(*args, **kwargs)
        except BdmmError as exc:
            fail(str(exc), exc.exit_code, getattr(exc, "details", ()))
        except KeyboardInterrupt:
            fail("interrupted", 130)
        except OSError as exc:
            # Disk full, permission denied, ... : still one line, never a traceback.
            fail(error_message(exc), 1)

    return wrapper  # type: ignore[return-value]


def error_message(exc: BaseException) -> str | None:
    """The line printed after `error:` for a BdmmError or an OSError (None for anything else)."""
    if isinstance(exc, BdmmError):
        return str(exc)
    if isinstance(exc, OSError):
        import errno

        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            where = f" while writing {exc.filename}" if exc.filename else ""
            return f"no space left on the device{where}; free some space and run again"
        return f"{exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else "")
    return None


def is_tty() -> bool:
    return sys.stderr.isatty()


# Options shared by `bdmm pose` and `bdmm data prepare` (one definition, one help text).
REFINE_OPTION = typer.Option(
    "auto", "--refine",
    help="The authors' SMPLify (GMM prior, 64-frame batches): auto (when gmm_08.pkl and SMPL are installed), on, off.",
)
HEAD_FILTER_OPTION = typer.Option(
    None, "--head-filter/--no-head-filter",
    help="Drop frames whose fitted head box is not over 10x10 px at 512, as the authors (default: on when SMPL is installed).",
)
# The load options of `bdmm animate`, `bdmm batch` and `bdmm ui` (what AnimatePipeline.from_config loads).
WEIGHTS_OPTION = typer.Option("fashionvideo", "--weights", "-w", help="Generator: registry name or local file/folder.")
SMPL_OPTION = typer.Option(None, "--smpl", help="SMPL model file (default: the one `bdmm body install` installed).")
POSE_WEIGHTS_OPTION = typer.Option(None, "--pose-weights", help="SPIN regressor: registry name or file (default: spin).")
RASTERIZER_OPTION = typer.Option(
    "auto", "--rasterizer",
    help="Mesh-flow rasterizer: auto (pytorch3d where installed and passing a one-triangle conformance check, "
         "else the pure-PyTorch one), torch or pytorch3d.",
)
SIZE_OPTION = typer.Option(256, "--size", help="Side of the output frames in pixels (the model runs at 256).")
MODEL_SIZE_OPTION = typer.Option(
    256, "--model-size", help="Resolution the model runs at (multiple of 64; the released weights: 256).")
KEYPOINTS_OPTION = typer.Option(
    "auto", "--keypoints",
    help="auto (OpenPose BODY_25 when its weights are installed, else DWPose when installed, else MediaPipe), "
         "openpose (the authors' detector; needs `bdmm setup`), dwpose (YOLOX + DWPose whole-body on onnxruntime; "
         "needs `bdmm setup`) or mediapipe (needs the optional mediapipe package, Python 3.10-3.12). `bdmm doctor` lists what is available.",
)
ALLOW_TRUNCATED_OPTION = typer.Option(
    False, "--allow-truncated/--no-allow-truncated",
    help="Use a truncated video's decodable frames (a warning names both counts) instead of stopping.",
)
