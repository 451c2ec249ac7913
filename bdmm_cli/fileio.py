"""Safe file output: never a partial file, never a silent overwrite.

`atomic_output(path)` yields a temporary path in the destination's directory; the file
is renamed onto `path` only when the block finishes without an exception, and the
temporary file is removed otherwise (error, Ctrl-C). An existing `path` is an error
unless `force=True`. `atomic_output_dir(folder)` does the same for a whole folder.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

from bdmm_cli.errors import InputError


def check_output_path(path: Path, force: bool) -> Path:
    """Validate an output path before any work is done; returns it resolved.

    Raises InputError if it exists (and not `force`), is a directory, or its directory
    does not exist or is not writable.
    """
    path = Path(path).expanduser()
    if path.is_dir():
        raise InputError(f"output {path} is a directory; give a file name")
    if path.exists() and not force:
        raise InputError(f"output {path} already exists; use --force to overwrite it")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise InputError(f"output directory {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(f"output directory {parent} is not writable")
    return path


@contextlib.contextmanager
def atomic_output(path: Path, force: bool = False, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary file path next to `path`; rename it onto `path` on success.

    The temporary name is `.<stem>.<random>.part<suffix>`; `suffix` defaults to `path`'s
    suffix, so tools that pick a format from the file name (ffmpeg, imageio) see the right one.
    """
    path = check_output_path(Path(path), force)
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{path.stem}.", suffix=".part" + (suffix if suffix is not None else path.suffix),
        dir=path.parent,
    )
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        if not tmp.exists() or tmp.stat().st_size == 0:
            raise InputError(f"nothing was written to {path}")
        os.replace(tmp, path)
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise InputError(f"no space left on the device while writing {path}") from exc
        raise
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


@contextlib.contextmanager
def atomic_output_dir(folder: Path, force: bool = False) -> Iterator[Path]:
    """Yield a new empty temporary folder beside `folder`; it becomes `folder` on success.

    An existing non-empty `folder` is an error unless `force`, and even then it is replaced
    only once the new one is complete. On error or Ctrl-C the temporary folder is removed
    and `folder` is untouched.
    """
    folder = Path(folder).expanduser()
    if folder.exists() and not folder.is_dir():
        raise InputError(f"output {folder} exists and is not a folder")
    if folder.is_dir() and any(folder.iterdir()) and not force:
        raise InputError(f"output folder {folder} already exists and is not empty; use --force to replace it")
    parent = folder.parent
    if not parent.is_dir():
        raise InputError(f"output directory {parent} does not exist")
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".part", dir=parent))
    try:
        yield tmp
        if folder.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".old", dir=parent))
            os.replace(folder, old / "previous")
            os.replace(tmp, folder)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, folder)
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise InputError(f"no space left on the device while writing {folder}") from exc
        raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()
