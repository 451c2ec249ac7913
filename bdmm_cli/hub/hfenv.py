"""Hugging Face settings read from the environment at call time.

`huggingface_hub` reads `HF_ENDPOINT`, `HF_HOME`/`HF_HUB_CACHE` and `HF_HUB_OFFLINE` once, when
it is imported. bdmm reads them again on every call and passes them explicitly (`endpoint=`,
`cache_dir=`, `local_files_only=`), so a variable set after import (a test, a notebook, an
embedding application) is honoured too. Tokens need nothing: `huggingface_hub` reads
`HF_TOKEN` (and the stored login) at request time.
"""

from __future__ import annotations

import os
from pathlib import Path

_TRUE = {"1", "on", "yes", "true"}


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in _TRUE


def hf_endpoint() -> str:
    """`$HF_ENDPOINT` (a mirror or a local test server), else what huggingface_hub uses."""
    env = os.environ.get("HF_ENDPOINT")
    if env:
        return env.rstrip("/")
    from huggingface_hub import constants

    return constants.ENDPOINT


def hf_cache_dir() -> Path:
    """The hub cache: `$HF_HUB_CACHE`, else `$HF_HOME/hub`, else `$XDG_CACHE_HOME/huggingface/hub`."""
    env = os.environ.get("HF_HUB_CACHE") or os.environ.get("HUGGINGFACE_HUB_CACHE")
    if env:
        return Path(os.path.expandvars(env)).expanduser()
    home = os.environ.get("HF_HOME")
    if not home:
        xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        home = str(Path(xdg) / "huggingface")
    return Path(os.path.expandvars(home)).expanduser() / "hub"


def offline() -> bool:
    """Offline mode: `HF_HUB_OFFLINE` (or `TRANSFORMERS_OFFLINE`, `BDMM_OFFLINE`) is true now.

    It applies to every source (Hub and plain URLs): no network request is made at all.
    """
    return (
        _truthy(os.environ.get("HF_HUB_OFFLINE"))
        or _truthy(os.environ.get("TRANSFORMERS_OFFLINE"))
        or _truthy(os.environ.get("BDMM_OFFLINE"))
    )


def sync_hf_offline() -> bool:
    """Make huggingface_hub's import-time offline flag agree with `offline()` now; return it.

    huggingface_hub blocks every HTTP request while `constants.HF_HUB_OFFLINE` is true, and
    that flag is frozen when the library is first imported. Without this, a process that
    imported it while `HF_HUB_OFFLINE=1` was set would stay offline after the variable is
    cleared (and the reverse).
    """
    from huggingface_hub import constants

    now = offline()
    constants.HF_HUB_OFFLINE = now
    return now


def trust_unverified_env() -> bool:
    return _truthy(os.environ.get("BDMM_TRUST_UNVERIFIED"))
