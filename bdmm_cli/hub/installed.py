"""Weights installed by `bdmm setup`: `data_dir()/weights/<registry name>/` + a manifest.

    data_dir()/weights/installed.json   {"files": {name: {"path", "file", "sha256", "size",
                                          "mtime_ns", "source", "source_sha256"}}}
    data_dir()/weights/generator-fashionvideo/model.safetensors (+ config.json)
    data_dir()/weights/smplify-gmm/gmm_08.npz ...

An installed file is what a registry name resolves to first (`hub.resolve.resolve_weights`,
`installed_path`), before the cache or a download: after `bdmm setup`, `bdmm animate` needs
no weight options. The sha256 of every installed file is recorded; a file whose size or
mtime changed since is hashed again and refused when its content differs.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from bdmm_cli.errors import CheckpointError
from bdmm_cli.fileio import atomic_output, sha256_file
from bdmm_cli.paths import data_dir

MANIFEST = "installed.json"


@dataclass(frozen=True)
class Installed:
    """One installed registry entry.

    Fields:
        name: registry name ("spin", "generator-fashionvideo", "smpl", ...).
        path: what loaders read (a folder in our format, or a file).
        file: the file whose digest is recorded (path itself, or path/model.safetensors).
        sha256, size, mtime_ns: of `file` when it was installed.
        source: where it came from (an archive member, a file, a URL).
        source_sha256: sha256 of the source file.
    """

    name: str
    path: str
    file: str
    sha256: str
    size: int
    mtime_ns: int
    source: str = ""
    source_sha256: str = ""


def installed_root() -> Path:
    return data_dir() / "weights"


def read_manifest() -> dict[str, Installed]:
    path = installed_root() / MANIFEST
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (json.JSONDecodeError, OSError) as exc:
        raise CheckpointError(f"the installed-weights manifest {path} is unreadable ({exc}); "
                              "delete it and run `bdmm setup` again") from None
    out = {}
    for name, row in data.get("files", {}).items():
        try:
            out[name] = Installed(name=name, **{k: v for k, v in row.items() if k != "name"})
        except TypeError:
            continue
    return out


def record(entries: list[Installed]) -> None:
    """Add (or replace) `entries` in the manifest, atomically."""
    current = read_manifest()
    for e in entries:
        current[e.name] = e
    root = installed_root()
    root.mkdir(parents=True, exist_ok=True)
    data = {"files": {n: {k: v for k, v in asdict(e).items() if k != "name"} for n, e in sorted(current.items())}}
    with atomic_output(root / MANIFEST, force=True) as tmp:
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n", encoding="utf-8")


def describe(name: str, path: Path, file: Path, source: str, source_sha256: str, digest: str | None = None) -> Installed:
    """An :class:`Installed` row for a file just written."""
    st = Path(file).stat()
    return Installed(name=name, path=str(path), file=str(file), sha256=digest or sha256_file(Path(file)),
                     size=st.st_size, mtime_ns=st.st_mtime_ns, source=source, source_sha256=source_sha256)


def check(entry: Installed) -> Path:
    """The installed path of `entry` after checking its file; CheckpointError when it is gone
    or its content changed since it was installed."""
    file = Path(entry.file)
    if not file.is_file():
        raise CheckpointError(f"{entry.name}: installed file {file} is missing; run `bdmm setup` again")
    st = file.stat()
    if (st.st_size, st.st_mtime_ns) != (entry.size, entry.mtime_ns):
        digest = sha256_file(file)
        if digest != entry.sha256:
            raise CheckpointError(f"{entry.name}: installed file {file} changed since `bdmm setup` installed it "
                                  f"(sha256 {entry.sha256}, now {digest}); run `bdmm setup --from ...` again")
    return Path(entry.path)


def installed_path(name: str) -> Path | None:
    """What `name` (a registry name, or "smpl") resolves to when `bdmm setup` installed it, else None."""
    entry = read_manifest().get(name)
    return None if entry is None else check(entry)

