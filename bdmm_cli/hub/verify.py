"""Checksums: a fetched file is verified before its first use, and never used when it fails.

Policy (see weights/README.md):
- entry with a full `sha256`: the file's digest must equal it.
- entry with only a torch.hub-style `sha256_prefix`: the digest must start with it (a weak
  check); the full digest seen then is recorded ("pinned") and required from then on.
- entry with neither: refused unless the caller trusts it explicitly (`--trust-unverified`,
  `BDMM_TRUST_UNVERIFIED=1`); a trusted file's digest is pinned the same way.
- a size given in the registry must match too.

Hashing a 500 MB file takes about a second, so a verified file gets a stamp (path, size,
mtime, ctime, inode, digest) in `cache_dir()/weights/verified.json`; a file whose stat still
matches its stamp is not hashed again. `bdmm weights verify` always re-hashes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from bdmm_cli.errors import CheckpointError
from bdmm_cli.hub.progress import RichBar
from bdmm_cli.hub.registry import WeightEntry
from bdmm_cli.paths import cache_dir

_PROGRESS_MIN_BYTES = 64 << 20


class ChecksumError(CheckpointError):
    """The file's content is not the file the registry names (corrupt or tampered)."""


class UnverifiedError(CheckpointError):
    """The registry has no checksum for this file and the caller did not trust it explicitly."""


@dataclass(frozen=True)
class VerifiedFile:
    """A file that passed verification.

    Fields:
        path: the file.
        sha256: its full hex digest.
        level: "sha256" (matches the registry's digest), "prefix" (matches its prefix and is
            pinned), "pinned" (matches the digest recorded on first use) or "trusted" (no
            checksum known; accepted because the caller said so, now pinned).
    """

    path: Path
    sha256: str
    level: str


def sha256_with_progress(path: Path, desc: str = "") -> str:
    """Hex sha256 of a file, with a progress bar for large files."""
    from bdmm_cli.fileio import content_hash

    size = path.stat().st_size
    with RichBar(desc=f"verify {desc or path.name}", total=size, disable=size < _PROGRESS_MIN_BYTES) as bar:
        return content_hash(path, on_bytes=bar.update)


def _store_path() -> Path:
    return cache_dir() / "weights" / "verified.json"


def _load_store() -> dict:
    try:
        data = json.loads(_store_path().read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {"files": {}, "pins": {}}
    data.setdefault("files", {})
    data.setdefault("pins", {})
    return data


def _save_store(data: dict) -> None:
    path = _store_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    from bdmm_cli.fileio import atomic_write_text

    atomic_write_text(path, json.dumps(data, indent=1, sort_keys=True))


def _stat_key(path: Path) -> dict:
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "ctime_ns": st.st_ctime_ns, "ino": st.st_ino}


def forget(path: Path) -> None:
    """Drop a file's stamp (after it was deleted or replaced)."""
    data = _load_store()
    if data["files"].pop(str(Path(path).resolve()), None) is not None:
        _save_store(data)


def verify_file(
    entry: WeightEntry,
    path: Path,
    *,
    location: str,
    trust_unverified: bool = False,
    rehash: bool = False,
) -> VerifiedFile:
    """Check `path` against `entry`; return it verified or raise.

    `location` names where the file came from (repo/filename@revision or the URL); pins are
    kept per (entry name, location). Raises ChecksumError when the content is wrong (the
    caller deletes the file) and UnverifiedError when no checksum is known and the file is
    not trusted (the file is left where it is, unused).
    """
    path = Path(path)
    real = str(path.resolve())
    data = _load_store()
    pin_key = f"{entry.name} {location}"
    pinned = data["pins"].get(pin_key)
    stamp = data["files"].get(real)
    stat = _stat_key(path)

    if entry.size and stat["size"] != entry.size:
        raise ChecksumError(
            f"{entry.name}: {path} has {stat['size']} bytes, the registry says {entry.size}; "
            "the file is corrupt or not the one the registry names"
        )
    if not rehash and stamp and all(stamp.get(k) == v for k, v in stat.items()):
        digest = stamp["sha256"]
    else:
        digest = sha256_with_progress(path, entry.name)

    if entry.sha256:
        if digest != entry.sha256:
            raise ChecksumError(
                f"{entry.name}: sha256 mismatch for {path} (expected {entry.sha256}, got {digest}); "
                "the file is corrupt or was tampered with"
            )
        level = "sha256"
    elif pinned:
        if digest != pinned:
            raise ChecksumError(
                f"{entry.name}: {path} changed since it was first verified (sha256 {pinned}, now {digest}); "
                "the file is corrupt or was tampered with"
            )
        level = "pinned"
    elif entry.sha256_prefix:
        if not digest.startswith(entry.sha256_prefix):
            raise ChecksumError(
                f"{entry.name}: sha256 of {path} is {digest}, which does not start with "
                f"{entry.sha256_prefix} as its name promises; the file is corrupt or was tampered with"
            )
        level = "prefix"
    elif trust_unverified:
        level = "trusted"
    else:
        raise UnverifiedError(
            f"{entry.name}: the registry has no checksum for {location}, so the downloaded file cannot be verified "
            f"(its sha256 is {digest}); if you trust its source, pass --trust-unverified "
            "(or set BDMM_TRUST_UNVERIFIED=1) to use it and pin that digest"
        )

    if level in ("prefix", "trusted"):
        data["pins"][pin_key] = digest
    data["files"][real] = {**stat, "sha256": digest}
    _save_store(data)
    return VerifiedFile(path=path, sha256=digest, level=level)
