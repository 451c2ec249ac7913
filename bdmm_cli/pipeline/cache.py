"""Resumable runs: each finished window's frames and the carried state, on disk.

A run is identified by a *key*: the sha256 of a JSON document holding the content hashes
of its inputs (photo, driving video or pose folder, body model, generator weights) and
every setting that changes the generated frames (window, overlap, model size, frame
range, device type, dtype, ...). Settings that only change the encoding (``--size``,
``--side-by-side``) are not part of it, so a rerun with another output size reuses it.

Layout of ``cache_dir()/runs/<key>/``::

    manifest.json              {"key_doc": {...}, "windows_done": k, "format": 1}
    window_00000.npz           frames (n, S, S, 3) uint8: window 0's real (unpadded) outputs (zlib)
    window_00001.npz           ...
    state.safetensors          the state after window k-1 (test mode only), float tensors
    state.json                 {"window": k-1}

Every file is written to a temporary name and renamed, and the manifest is updated last,
so a run killed at any point leaves a store whose manifest counts only complete windows.
A resumed run reloads windows ``0..k-1`` and continues with window ``k``.

Finished runs are kept too (the newest ``KEEP_RUNS``, see ``RunStore.prune``), so the same
run with another ``--size`` / ``--side-by-side`` / output file only re-encodes; ``--no-cache``
neither reads nor writes this store. A full cache disk is not an error: the run goes on
without resume data.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from bdmm_cli.errors import BdmmWarning, InputError
from bdmm_cli.fileio import FileLock, LockBusy, sweep_stale, tree_hash
from bdmm_cli.fileio import atomic_write as _atomic_write
from bdmm_cli.paths import cache_dir

FORMAT = 1
#: Completed runs kept in the run store (older ones are pruned).
KEEP_RUNS = 4


#: Content hash of a file, or of a folder (memoised per run: ``fileio.tree_hash``).
hash_path = tree_hash


def run_key(key_doc: Mapping[str, Any]) -> str:
    """sha256 of the canonical JSON of ``key_doc`` (sorted keys)."""
    text = json.dumps(key_doc, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


class RunStore:
    """The on-disk record of one run (see the module docstring for the layout).

    Args:
        key_doc: what identifies the run (inputs' hashes and settings); its hash names the
            folder.
        root: parent folder; default ``cache_dir() / "runs"``.
    """

    def __init__(self, key_doc: Mapping[str, Any], root: Path | None = None) -> None:
        self.key_doc = dict(key_doc)
        self.key = run_key(self.key_doc)
        self.root = Path(root) if root is not None else cache_dir() / "runs"
        self.dir = self.root / self.key

    # -- locking -------------------------------------------------------------------
    def lock(self) -> FileLock | None:
        """Take this run's lock (``<root>/<key>.lock``) for the whole run; returns it (a
        context manager that releases it and deletes the lock file), or None when the cache
        cannot be written. Taking it marks the run as just used (the size cap of
        `enforce_cache_cap` removes the least recently used entries first).

        A second run on the same inputs waits here, with one `BdmmWarning`, until the
        first finishes, then resumes from what it stored; it never reads a half-written
        store nor deletes the other run's data.
        """
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            lock = FileLock(_lock_path(self.root, self.key), remove_on_exit=True)
            try:
                lock.acquire(blocking=False)
            except LockBusy as busy:
                who = f"process {busy.holder}" if busy.holder else "another process"
                warnings.warn(BdmmWarning(
                    f"another bdmm run on the same inputs ({who}) is in progress; waiting for it to finish, "
                    "then this run reuses its windows"), stacklevel=2)
                lock.acquire(blocking=True)
            if self.dir.is_dir():
                sweep_stale(self.dir)  # temporaries of a killed run of these inputs
                os.utime(self.dir)
            return lock
        except OSError:
            return None

    # -- reading -------------------------------------------------------------------
    def _manifest(self) -> dict[str, Any] | None:
        try:
            data = json.loads((self.dir / "manifest.json").read_text())
        except (OSError, ValueError):
            return None
        if data.get("format") != FORMAT or data.get("key") != self.key:
            return None
        return data

    def windows_done(self) -> int:
        """How many windows (0..k-1) are stored and complete; 0 for a new run."""
        data = self._manifest()
        if data is None:
            return 0
        done = int(data.get("windows_done", 0))
        for i in range(done):
            if not self._window_path(i).is_file():
                return i
        return done

    def load_frames(self, index: int) -> np.ndarray:
        """(n, S, S, 3) uint8 outputs of window ``index``."""
        with np.load(self._window_path(index)) as z:
            return z["frames"]

    def load_state(self, index: int) -> dict[str, torch.Tensor] | None:
        """The state tensors stored after window ``index``, or None if not that window's."""
        from safetensors.torch import load_file

        try:
            meta = json.loads((self.dir / "state.json").read_text())
        except (OSError, ValueError):
            return None
        if meta.get("window") != index or not (self.dir / "state.safetensors").is_file():
            return None
        return load_file(str(self.dir / "state.safetensors"))

    # -- writing -------------------------------------------------------------------
    def save_window(self, index: int, frames: np.ndarray, state: Mapping[str, torch.Tensor] | None) -> None:
        """Store window ``index`` (its real outputs, uint8) and the state after it.

        Windows must be saved in order; the manifest then counts ``index + 1`` windows.
        """
        from safetensors.torch import save_file

        if frames.dtype != np.uint8 or frames.ndim != 4:
            raise ValueError(f"expected (n, S, S, 3) uint8 frames, got {frames.shape} {frames.dtype}")
        self.dir.mkdir(parents=True, exist_ok=True)
        def write_frames(p: Path) -> None:
            with open(p, "wb") as f:
                np.savez_compressed(f, frames=frames)

        _atomic_write(self._window_path(index), write_frames)
        if state is not None:
            tensors = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in state.items()}
            _atomic_write(self.dir / "state.safetensors", lambda p: save_file(tensors, str(p)))
            _atomic_write(self.dir / "state.json", lambda p: p.write_text(json.dumps({"window": index})))
        manifest = {"format": FORMAT, "key": self.key, "key_doc": self.key_doc, "windows_done": index + 1}
        _atomic_write(self.dir / "manifest.json", lambda p: p.write_text(json.dumps(manifest, default=str)))

    def clear(self) -> None:
        """Delete the run's folder (after a successful run, or to start over)."""
        shutil.rmtree(self.dir, ignore_errors=True)

    def prune(self, keep: int = KEEP_RUNS) -> None:
        """Delete all but the ``keep`` most recently written runs under ``root`` (never this one)."""
        if not self.root.is_dir():
            return
        sweep_stale(self.root)
        runs = sorted((p for p in self.root.iterdir() if p.is_dir() and not p.name.startswith(".")),
                      key=lambda p: p.stat().st_mtime, reverse=True)
        for old in runs[keep:]:
            if old == self.dir:
                continue
            lock = FileLock(_lock_path(self.root, old.name))
            try:
                lock.acquire(blocking=False)
            except (LockBusy, OSError):
                continue  # a run in progress (or resumed right now): not ours to delete
            shutil.rmtree(old, ignore_errors=True)
            lock.remove()

    # -- resuming ------------------------------------------------------------------
    def resume_frames(self, index: int) -> np.ndarray:
        """``load_frames`` for a resumed run: damaged data is deleted and reported (InputError)."""
        try:
            return self.load_frames(index)
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
            self.clear()  # the next run starts afresh
            raise InputError(f"the resume data of this run was damaged ({exc.__class__.__name__}); "
                             "it was deleted, run the command again") from exc

    def resume_state(self, index: int) -> dict[str, torch.Tensor]:
        """``load_state`` for a resumed run: missing or damaged state is deleted and reported."""
        try:
            tensors = self.load_state(index)
        except (OSError, ValueError):
            tensors = None
        if tensors is None:
            self.clear()
            raise InputError("the resume data of this run was incomplete; it was deleted, run the command again")
        return tensors

    def split(self, batch: list, done: int) -> tuple[dict[int, np.ndarray], list]:
        """The resume bookkeeping of one batch of ``WindowFrames``: (frames of the windows an
        earlier run finished, i.e. index < ``done``, by window index; the windows to compute)."""
        cached = {item.window.index: self.resume_frames(item.window.index) for item in batch
                  if item.window.index < done}
        return cached, [item for item in batch if item.window.index not in cached]

    def _window_path(self, index: int) -> Path:
        return self.dir / f"window_{index:05d}.npz"


def warn_unwritable(root: Path, exc: OSError) -> None:
    """One BdmmWarning: the run store cannot be written (the run goes on without resume data)."""
    warnings.warn(BdmmWarning(
        f"the resume data cannot be written to {root} ({exc.strerror or exc}); continuing without it "
        "(free space there, set BDMM_CACHE_DIR to a writable folder, or pass --no-cache)"), stacklevel=3)


def _lock_path(root: Path, key: str) -> Path:
    return root / f"{key}.lock"


# --- the cache folder as a whole: `bdmm cache info`, `bdmm cache clean`, the size cap -----------

#: Kinds of cache entries: name -> (folder under ``cache_dir()``, what it holds, refilled by
#: bdmm itself when missing). Only refillable kinds are cleaned by default and count
#: towards the size cap; downloads are kept until ``bdmm cache clean --kind ...`` names them.
CACHE_KINDS: dict[str, tuple[str, str, bool]] = {
    "runs": ("runs", "animate's resume data and finished runs", True),
    "poses": ("pose", "poses of driving videos (bdmm animate, bdmm pose)", True),
    "metrics": ("metrics", "real-data statistics of bdmm eval", True),
    "weights": ("weights", "weights downloaded from a URL, verification stamps", False),
    "downloads": ("downloads", "files bdmm setup downloaded", False),
}
REFILLABLE = tuple(k for k, (_, _, refill) in CACHE_KINDS.items() if refill)
#: Default of ``BDMM_CACHE_MAX_GB``.
DEFAULT_MAX_GB = 10.0


@dataclass(frozen=True)
class CacheEntry:
    """One removable unit of the cache: a run, a video's poses, a statistics file, ...

    Attributes:
        kind: a key of `CACHE_KINDS`.
        path: the entry's file or folder.
        size: bytes (sum of its files' sizes).
        mtime: last use (a run: last started; others: last written), seconds since the epoch.
    """

    kind: str
    path: Path
    size: int
    mtime: float


@dataclass(frozen=True)
class KindInfo:
    """`cache_info` per kind: folder, description, entry count and total bytes."""

    kind: str
    path: Path
    description: str
    entries: int
    size: int


@dataclass(frozen=True)
class CacheInfo:
    """What `cache_info` found: the cache folder, one `KindInfo` per kind (in `CACHE_KINDS`
    order, then "other" for anything else), the total and the size cap in bytes."""

    root: Path
    kinds: tuple[KindInfo, ...]
    size: int
    max_bytes: int


@dataclass(frozen=True)
class CleanResult:
    """What `clean_cache` / `enforce_cache_cap` did: entries removed, entries kept because
    a running bdmm holds them."""

    removed: tuple[CacheEntry, ...]
    in_use: tuple[CacheEntry, ...]

    @property
    def freed(self) -> int:
        return sum(e.size for e in self.removed)


def _size(path: Path) -> int:
    try:
        if not path.is_dir() or path.is_symlink():
            return path.lstat().st_size
        return sum(f.lstat().st_size for f in path.rglob("*") if not f.is_dir() or f.is_symlink())
    except OSError:
        return 0


def cache_entries(kinds: tuple[str, ...] | None = None) -> list[CacheEntry]:
    """Every entry of the given kinds (default: all of `CACHE_KINDS`), in no particular order.

    An entry is each file or folder directly in the kind's folder, except temporaries being
    written (hidden names) and run locks (``runs/<key>.lock``, which go with their run).
    """
    out = []
    for kind in kinds or tuple(CACHE_KINDS):
        folder = cache_dir() / CACHE_KINDS[kind][0]
        try:
            children = list(folder.iterdir())
        except OSError:
            continue
        for path in children:
            if path.name.startswith(".") or (kind == "runs" and path.suffix == ".lock"):
                continue
            try:
                mtime = path.lstat().st_mtime
            except OSError:
                continue  # removed meanwhile
            out.append(CacheEntry(kind, path, _size(path), mtime))
    return out


def max_cache_bytes() -> int:
    """The size cap: ``BDMM_CACHE_MAX_GB`` (default 10; GB = 10^9 bytes); a value that is not
    a non-negative number is reported once (BdmmWarning) and the default used."""
    text = os.environ.get("BDMM_CACHE_MAX_GB", "").strip()
    if not text:
        return int(DEFAULT_MAX_GB * 1e9)
    try:
        gb = float(text)
        if not gb >= 0:
            raise ValueError(text)
    except ValueError:
        warnings.warn(BdmmWarning(f"BDMM_CACHE_MAX_GB={text} is not a size in GB (a number such as 10 or 0.5); "
                                  f"using {DEFAULT_MAX_GB:g}"), stacklevel=2)
        gb = DEFAULT_MAX_GB
    return int(gb * 1e9)


def cache_info() -> CacheInfo:
    """Size of the cache folder per kind of entry (`CacheInfo`)."""
    root = cache_dir()
    kinds, known = [], set()
    for kind, (folder, description, _) in CACHE_KINDS.items():
        entries = cache_entries((kind,))
        known.add(folder)
        size = _size(root / folder) if (root / folder).is_dir() else 0  # temporaries and locks count too
        kinds.append(KindInfo(kind, root / folder, description, len(entries), size))
    try:
        others = [p for p in root.iterdir() if p.name not in known]
    except OSError:
        others = []
    kinds.append(KindInfo("other", root, "anything else (e.g. a bdmm setup in progress)", len(others),
                          sum(_size(p) for p in others)))
    return CacheInfo(root, tuple(kinds), sum(k.size for k in kinds), max_cache_bytes())


def _remove(entry: CacheEntry) -> bool:
    """Delete `entry`; False (and nothing deleted) when a running bdmm holds it (a run's lock)."""
    lock = None
    if entry.kind == "runs":
        lock = FileLock(_lock_path(entry.path.parent, entry.path.name))
        try:
            lock.acquire(blocking=False)
        except LockBusy:
            return False
        except OSError:
            lock = None
    try:
        if entry.path.is_dir() and not entry.path.is_symlink():
            shutil.rmtree(entry.path, ignore_errors=True)
        else:
            entry.path.unlink(missing_ok=True)
    finally:
        if lock is not None:
            lock.remove()
    return True


def _sweep_run_locks() -> None:
    """Delete lock files of runs that no process holds (left by earlier versions or a crash)."""
    root = cache_dir() / CACHE_KINDS["runs"][0]
    for path in root.glob("*.lock") if root.is_dir() else ():
        lock = FileLock(path)
        try:
            lock.acquire(blocking=False)
        except (LockBusy, OSError):
            continue
        lock.remove()


def clean_cache(older_than_days: float | None = None, kinds: tuple[str, ...] = REFILLABLE) -> CleanResult:
    """Delete the cache entries of `kinds` (default: those bdmm refills by itself) last used
    more than `older_than_days` days ago (None: all of them), except those a running bdmm
    holds (a run in progress). Stale temporaries and unheld run locks go too."""
    unknown = [k for k in kinds if k not in CACHE_KINDS]
    if unknown:
        raise InputError(f"unknown cache kind {unknown[0]!r}; choose from {', '.join(CACHE_KINDS)}")
    if older_than_days is not None and not older_than_days >= 0:
        raise InputError(f"--older-than must be a number of days >= 0, got {older_than_days}")
    import time

    cutoff = None if older_than_days is None else time.time() - older_than_days * 86400.0
    removed, in_use = [], []
    for kind in kinds:
        sweep_stale(cache_dir() / CACHE_KINDS[kind][0])
    for entry in cache_entries(kinds):
        if cutoff is not None and entry.mtime >= cutoff:
            continue
        (removed if _remove(entry) else in_use).append(entry)
    if "runs" in kinds:
        _sweep_run_locks()
    return CleanResult(tuple(removed), tuple(in_use))


def enforce_cache_cap(max_bytes: int | None = None, keep: Path | None = None) -> CleanResult:
    """Keep the refillable kinds of the cache (runs, poses, metrics) under `max_bytes`
    (default `max_cache_bytes()`, i.e. ``BDMM_CACHE_MAX_GB``): the least recently used
    entries go first; entries a running bdmm holds and `keep` (the run that just finished)
    stay. (Pose entries carry no lock: one that another run replays at that moment is
    recomputed by that run, with one warning.) Never raises for a file system problem (a
    cache is not worth failing a run)."""
    limit = max_cache_bytes() if max_bytes is None else max_bytes
    removed, in_use = [], []
    try:
        entries = sorted(cache_entries(REFILLABLE), key=lambda e: e.mtime)
        total = sum(e.size for e in entries)
        for entry in entries:
            if total <= limit:
                break
            if keep is not None and entry.path == Path(keep):
                continue
            if _remove(entry):
                removed.append(entry)
                total -= entry.size
            else:
                in_use.append(entry)
    except OSError:
        pass
    return CleanResult(tuple(removed), tuple(in_use))


__all__ = [
    "CACHE_KINDS",
    "CacheEntry",
    "CacheInfo",
    "CleanResult",
    "KEEP_RUNS",
    "KindInfo",
    "RunStore",
    "cache_entries",
    "cache_info",
    "clean_cache",
    "enforce_cache_cap",
    "hash_path",
    "max_cache_bytes",
    "run_key",
    "warn_unwritable",
]
