"""Safe file output: never a partial file, never a silent overwrite, always the user's umask.

One writer family, used by every module that writes a file or a folder:

- `atomic_output(path)` yields a temporary path in the destination's directory; the file
  is published onto `path` only when the block finishes without an exception, and the
  temporary file is removed otherwise (error, Ctrl-C). `atomic_output_dir(folder)` does
  the same for a whole folder; `atomic_write(path, write)` / `atomic_write_bytes` /
  `atomic_write_text` are the one-call forms (cache files).
- An existing `path` is an error unless `force=True`, checked at the start *and* at the
  moment of publishing: without `force` the file is published by an exclusive hard link
  (`os.link`), so two processes writing the same output never both succeed.
- Temporaries are created 0600 / 0700 by `mkstemp` / `mkdtemp`; they are set to
  ``0o666 & ~umask`` / ``0o777 & ~umask`` before publishing, so outputs (also when
  replaced with `force`) get the mode any other program would give them.
- Temporaries are named ``.<stem>.bdmm-<host>-<pid>-<random>.part<suffix>``; every writer
  first removes the temporaries in its folder left by processes of this machine that no
  longer exist (`sweep_stale`): only ours (that name pattern), only stale (dead pid).
- `FileLock` is an advisory lock (``flock``) that records its holder's pid.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import shutil
import socket
import tempfile
from pathlib import Path
from typing import Callable, Iterator

from bdmm_cli.errors import InputError

# --- modes ------------------------------------------------------------------------------


def current_umask() -> int:
    """The process umask, read without changing it where the OS allows (Linux /proc)."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def file_mode() -> int:
    """Mode of a new regular file under the current umask (0644 for umask 022)."""
    return 0o666 & ~current_umask()


def dir_mode() -> int:
    """Mode of a new folder under the current umask (0755 for umask 022)."""
    return 0o777 & ~current_umask()


def apply_umask(path: Path) -> None:
    """Give a file or folder created by a library with mode 0600 / 0700 the umask's mode."""
    path = Path(path)
    os.chmod(path, dir_mode() if path.is_dir() else file_mode())


# --- temporaries ------------------------------------------------------------------------

_HOST = hashlib.sha256(socket.gethostname().encode()).hexdigest()[:6]
_TEMP = re.compile(r"\.bdmm-(?P<host>[0-9a-f]{6})-(?P<pid>\d+)-[0-9a-z_]+\.(?:part|old)")


def _tag() -> str:
    return f"bdmm-{_HOST}-{os.getpid()}-"  # pid at call time (forked workers differ)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def is_stale_temporary(name: str) -> bool:
    """True for a temporary of this writer family made by a process of this machine that is gone."""
    m = _TEMP.search(name)
    if m is None or not name.startswith("."):
        return False
    pid = int(m.group("pid"))
    return m.group("host") == _HOST and pid != os.getpid() and not _pid_alive(pid)


def sweep_stale(directory: Path, stem: str | None = None) -> list[Path]:
    """Remove stale temporaries in `directory` (of target `stem` only, when given).

    Only names made by this writer family are considered, and only those whose process
    (same machine) no longer runs; returns what was removed.
    """
    removed: list[Path] = []
    prefix = f".{stem}.bdmm-" if stem is not None else "."
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return removed
    for entry in entries:
        if not entry.name.startswith(prefix) or not is_stale_temporary(entry.name):
            continue
        path = Path(entry.path)
        with contextlib.suppress(OSError):
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(path)
            else:
                path.unlink()
            removed.append(path)
    return removed


def temp_file(directory: Path, stem: str, suffix: str = "") -> Path:
    """A new empty temporary file of this family in `directory` (see the module docstring)."""
    fd, name = tempfile.mkstemp(prefix=f".{stem}.{_tag()}", suffix=".part" + suffix, dir=directory)
    os.close(fd)
    return Path(name)


def temp_dir(directory: Path, stem: str, suffix: str = "") -> Path:
    """A new empty temporary folder of this family in `directory`."""
    return Path(tempfile.mkdtemp(prefix=f".{stem}.{_tag()}", suffix=".part" + suffix, dir=directory))


# --- checks and publishing --------------------------------------------------------------


def check_output_path(path: Path, force: bool) -> Path:
    """Validate an output path before any work is done; returns it (``~`` expanded).

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


def _taken(path: Path) -> InputError:
    return InputError(f"output {path} was created by another process while this one was writing it; "
                      "it was not overwritten (use --force to overwrite it, or choose another output)")


class WriteError(InputError, OSError):
    """A file could not be written (disk full, read-only, permission): a one-line InputError
    for the user that is still an OSError (``errno``, ``strerror``) for code that skips
    optional writes such as caches."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def _write_error(message: str, exc: OSError) -> WriteError:
    err = WriteError(message)
    err.errno, err.strerror, err.filename = exc.errno, exc.strerror, exc.filename
    return err


def _no_space(path: Path, exc: OSError) -> InputError | None:
    if exc.errno == errno.ENOSPC or exc.errno == errno.EDQUOT:
        return _write_error(f"no space left on the device while writing {path}; free some space and run again", exc)
    if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM) and exc.filename is not None:
        return _write_error(f"cannot write {path}: {exc.strerror} ({exc.filename})", exc)
    return None


def publish_file(tmp: Path, path: Path, force: bool) -> None:
    """Set `tmp` to the umask's mode and move it onto `path`.

    Without `force` the move is exclusive (a hard link, then the temporary is removed), so
    a `path` created meanwhile by another process is never replaced (InputError).
    """
    os.chmod(tmp, file_mode())
    if force:
        os.replace(tmp, path)
        return
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise _taken(path) from None
    except OSError as exc:  # file systems without hard links: best effort
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK, errno.EXDEV):
            raise
        if path.exists():
            raise _taken(path) from None
        os.replace(tmp, path)
        return
    tmp.unlink()


@contextlib.contextmanager
def atomic_output(path: Path, force: bool = False, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary file path next to `path`; publish it onto `path` on success.

    `suffix` defaults to `path`'s suffix, so tools that pick a format from the file name
    (ffmpeg, imageio) see the right one. An empty result is an error.
    """
    path = check_output_path(Path(path), force)
    sweep_stale(path.parent)
    try:
        tmp = temp_file(path.parent, path.stem, suffix if suffix is not None else path.suffix)
    except OSError as exc:
        raise (_no_space(path, exc) or exc) from exc
    try:
        yield tmp
        if not tmp.exists() or tmp.stat().st_size == 0:
            raise InputError(f"nothing was written to {path}")
        publish_file(tmp, path, force)
    except OSError as exc:
        raise _no_space(path, exc) or exc  # a full disk is one clear error; anything else as it was
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def atomic_write(path: Path, write: Callable[[Path], None], force: bool = True) -> None:
    """``write(tmp)`` then publish `tmp` onto `path` (replacing it unless ``force=False``)."""
    with atomic_output(path, force=force) as tmp:
        write(tmp)


def atomic_write_bytes(path: Path, data: bytes, force: bool = True) -> None:
    atomic_write(path, lambda p: p.write_bytes(data), force)


def atomic_write_text(path: Path, text: str, force: bool = True) -> None:
    atomic_write(path, lambda p: p.write_text(text, encoding="utf-8"), force)


@contextlib.contextmanager
def atomic_output_dir(folder: Path, force: bool = False) -> Iterator[Path]:
    """Yield a new empty temporary folder beside `folder`; it becomes `folder` on success.

    An existing non-empty `folder` is an error unless `force`, and even then it is replaced
    only once the new one is complete. On error or Ctrl-C the temporary folder is removed
    and `folder` is untouched. A `folder` filled by another process meanwhile is never
    replaced without `force`.
    """
    folder = Path(folder).expanduser()
    if folder.exists() and not folder.is_dir():
        raise InputError(f"output {folder} exists and is not a folder")
    if folder.is_dir() and any(folder.iterdir()) and not force:
        raise InputError(f"output folder {folder} already exists and is not empty; use --force to replace it")
    parent = folder.parent
    if not parent.is_dir():
        raise InputError(f"output directory {parent} does not exist")
    sweep_stale(parent)
    try:
        tmp = temp_dir(parent, folder.name)
    except OSError as exc:
        raise (_no_space(folder, exc) or exc) from exc
    try:
        yield tmp
        # what the caller wrote inside may come from a library that creates 0600 files
        # (safetensors does): everything gets the umask's modes, like the folder itself
        for inner in tmp.rglob("*"):
            if not inner.is_symlink():
                apply_umask(inner)
        os.chmod(tmp, dir_mode())
        if folder.exists() and force:
            old = Path(tempfile.mkdtemp(prefix=f".{folder.name}.{_tag()}", suffix=".old", dir=parent))
            os.replace(folder, old / "previous")
            os.replace(tmp, folder)
            shutil.rmtree(old, ignore_errors=True)
        else:
            try:
                os.rename(tmp, folder)  # replaces only an empty folder
            except OSError as exc:
                if exc.errno in (errno.ENOTEMPTY, errno.EEXIST):
                    raise _taken(folder) from None
                raise
    except OSError as exc:
        raise _no_space(folder, exc) or exc  # a full disk is one clear error; anything else as it was
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# --- locks ------------------------------------------------------------------------------


class LockBusy(Exception):
    """The lock is held by another process (`holder`: its pid, or None when unknown)."""

    def __init__(self, path: Path, holder: int | None) -> None:
        super().__init__(f"{path} is locked by process {holder}")
        self.path, self.holder = path, holder


class FileLock:
    """An exclusive advisory lock on `path` (``flock``; released when the process dies).

    ``acquire(blocking=False)`` raises LockBusy when another process holds it;
    ``acquire(blocking=True)`` waits. The holder's pid is written into the file.
    Use as a context manager (blocking) or call acquire / release. With
    ``remove_on_exit`` the context manager deletes the file as it releases it (`remove`:
    safe while others wait, they then lock a new file), so no lock file outlives its use.
    """

    def __init__(self, path: Path, remove_on_exit: bool = False) -> None:
        self.path = Path(path)
        self.remove_on_exit = remove_on_exit
        self._fd: int | None = None

    def holder(self) -> int | None:
        with contextlib.suppress(OSError, ValueError):
            return int(self.path.read_text().strip() or "x")
        return None

    def acquire(self, blocking: bool = True) -> "FileLock":
        import fcntl

        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, file_mode())
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
            except BlockingIOError:
                os.close(fd)
                raise LockBusy(self.path, self.holder()) from None
            except BaseException:
                os.close(fd)
                raise
            try:  # the file may have been removed (by `remove`) while we waited: lock the new one
                if os.stat(self.path).st_ino == os.fstat(fd).st_ino:
                    break
            except FileNotFoundError:
                pass
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = None

    def remove(self) -> None:
        """Delete the lock file and release it (only while held: others then lock a new file)."""
        if self._fd is not None:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
            self.release()

    def __del__(self) -> None:  # dropped without release (an error before its `with` block)
        with contextlib.suppress(Exception):
            self.remove() if self.remove_on_exit else self.release()

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> "FileLock":
        return self if self.held else self.acquire(blocking=True)

    def __exit__(self, *exc) -> None:
        if self.remove_on_exit:
            self.remove()
        else:
            self.release()


# --- hashes -----------------------------------------------------------------------------


def sha256_file(path: Path, chunk: int = 1 << 20, on_bytes: Callable[[int], None] | None = None) -> str:
    """Hex sha256 of a file, read in chunks (no memo: see `content_hash`); `on_bytes(n)` per chunk."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
            if on_bytes is not None:
                on_bytes(len(block))
    return h.hexdigest()


_HASHES: dict[tuple, str] = {}


def content_hash(path: Path, on_bytes: Callable[[int], None] | None = None) -> str:
    """sha256 of a file's content, computed once per (path, size, mtime, inode) in a process.

    Every identity of an input (run store key, pose cache key, weights verification) uses
    this, so a driving video is read once per run however many keys need its hash.
    `on_bytes(n)` is called per chunk read (progress bars), only when the file is read.
    """
    path = Path(path)
    st = path.stat()
    key = (os.path.realpath(path), st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev)
    digest = _HASHES.get(key)
    if digest is None:
        digest = _HASHES[key] = sha256_file(path, on_bytes=on_bytes)
    return digest


def tree_hash(path: Path) -> str:
    """`content_hash` of a file, or of a folder: relative names + file hashes, sorted."""
    path = Path(path)
    if path.is_file():
        return content_hash(path)
    h = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        h.update(str(f.relative_to(path)).encode())
        h.update(b"\0")
        h.update(content_hash(f).encode())
        h.update(b"\n")
    return h.hexdigest()


def module_hash(module) -> str:
    """sha256 over a torch module's parameters and buffers (names, shapes, dtypes, bytes).

    The one identity of a network's weights (run store, pose cache, metric caches).
    """
    import torch

    h = hashlib.sha256()
    tensors = dict(module.state_dict())
    for name, buf in module.named_buffers():
        tensors.setdefault(name, buf)
    for name in sorted(tensors):
        t = tensors[name].detach().to("cpu").contiguous()
        h.update(f"{name}|{tuple(t.shape)}|{t.dtype}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


__all__ = [
    "FileLock",
    "WriteError",
    "LockBusy",
    "apply_umask",
    "atomic_output",
    "atomic_output_dir",
    "atomic_write",
    "atomic_write_bytes",
    "atomic_write_text",
    "check_output_path",
    "content_hash",
    "current_umask",
    "dir_mode",
    "file_mode",
    "is_stale_temporary",
    "module_hash",
    "publish_file",
    "sha256_file",
    "sweep_stale",
    "temp_dir",
    "temp_file",
    "tree_hash",
]


def install_converted(source: Path, dest: Path, what: str, write, force: bool = False) -> tuple[Path, bool]:
    """Install what `write(tmp, source_sha256)` converts from `source` as the ``.npz`` `dest`.

    The converted file records the source's sha256 (key ``source_sha256``, written by
    `write`): installing the same source again is a no-op, a different one needs `force`.
    Written atomically with the user's umask. Returns (dest, changed). Used by
    ``bdmm body install`` (the SMPL model) and the SMPLify prior.
    """
    import numpy as np

    digest = sha256_file(source)
    if dest.is_file():
        try:
            with np.load(dest, allow_pickle=False) as z:
                same = "source_sha256" in z.files and str(z["source_sha256"]) == digest
        except (OSError, ValueError):
            same = False
        if same:
            return dest, False
        if not force:
            raise InputError(f"{what} is already installed at {dest}; use --force to replace it")
    dest.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(dest, force=True) as tmp:
        write(tmp, digest)
    return dest, True
