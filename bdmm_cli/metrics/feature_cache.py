"""Real-data feature statistics cached on disk, keyed by data + detector + protocol.

Like StyleGAN3/EDM's `gan-metrics` cache: the key is a hash of everything that changes
the statistics (which files, their sizes and modification times; the detector's weights;
the protocol and the metric's settings such as clip length, seed and run), and the value
is a `GaussianStats` .npz under `bdmm_cli.paths.cache_dir()/metrics/`. Writes are atomic.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Callable, Sequence


from bdmm_cli.fileio import module_hash
from bdmm_cli.metrics.frechet import GaussianStats
from bdmm_cli.metrics.inputs import Video
from bdmm_cli.paths import cache_dir


def stats_dir() -> Path:
    return cache_dir() / "metrics"


def data_fingerprint(videos: Sequence[Video]) -> str:
    """Hash of the videos' names, files, sizes and modification times (not their pixels)."""
    h = hashlib.sha256()
    for v in videos:
        files = v.frame_paths or (v.path,)
        h.update(f"{v.name}\0{v.num_frames}\0{v.size}\0".encode())
        if v.panel is not None:  # strips: the same files hold several images
            h.update(f"panel {v.panel}\0".encode())
        for f in files:
            st = f.stat()
            h.update(f"{f.resolve()}\0{st.st_size}\0{st.st_mtime_ns}\0".encode())
    return h.hexdigest()


#: Hash of a network's parameters and buffers (the one module hash: ``fileio.module_hash``).
module_fingerprint = module_hash


def cache_path(tag: str, key: dict) -> Path:
    digest = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:24]
    return stats_dir() / f"{tag}-{digest}.npz"


def load_cached(tag: str, key: dict) -> GaussianStats | None:
    """The cached statistics for `key`, or None (absent or unreadable)."""
    path = cache_path(tag, key)
    if not path.is_file():
        return None
    try:
        return GaussianStats.load(path)
    except Exception:  # a damaged cache entry is recomputed
        return None


def cached_stats(
    tag: str, key: dict, compute: Callable[[], GaussianStats], enabled: bool = True
) -> tuple[GaussianStats, bool]:
    """(stats, hit): load the statistics for `key`, or compute and store them."""
    path = cache_path(tag, key)
    if enabled:
        hit = load_cached(tag, key)
        if hit is not None:
            return hit, True
    stats = compute()
    if enabled:
        path.parent.mkdir(parents=True, exist_ok=True)
        from bdmm_cli.fileio import atomic_write

        atomic_write(path, stats.save)
    return stats, False
