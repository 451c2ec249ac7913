"""Where bdmm keeps user data (installed body model) and caches (poses, resumable runs).

`BDMM_HOME` overrides the data directory (default: `$XDG_DATA_HOME/bdmm`, i.e.
`~/.local/share/bdmm`); `BDMM_CACHE_DIR` overrides the cache directory (default:
`$XDG_CACHE_HOME/bdmm`, i.e. `~/.cache/bdmm`). Weights live in the standard Hugging Face
cache (`HF_HOME`), not here.
"""

from __future__ import annotations

import os
from pathlib import Path


def data_dir() -> Path:
    """User data directory (created lazily by the code that writes into it)."""
    env = os.environ.get("BDMM_HOME")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "bdmm"


def cache_dir() -> Path:
    """Cache directory for pose results and resumable animate runs."""
    env = os.environ.get("BDMM_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "bdmm"
