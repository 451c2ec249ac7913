"""Which file a weights argument names: a path, a folder layout, or a registry name.

`resolve_weights(name_or_path, kind)` is the one rule every loader uses (the networks' loaders
in `model/checkpoint.py` and `pose/hmr.py`, the OpenPose detector, VGG19 in `train/losses.py`
and the metric networks in `metrics/`):

1. an existing file is itself; an existing folder is our format (model.safetensors), its
   `<kind>/` sub-folder, or the authors' file name for `kind` inside it;
2. anything that looks like a path (`names_a_path`) but does not exist is an error;
3. otherwise it is a registry name (aliases and data set names accepted: "fashionvideo"):
   what `bdmm setup` installed for it, else the cached / downloaded, verified file.
"""

from __future__ import annotations

from pathlib import Path

from bdmm_cli.errors import CheckpointError, InputError
from bdmm_cli.hub.download import fetch
from bdmm_cli.hub.installed import installed_path
from bdmm_cli.hub.registry import ALIASES, Registry, load_registry
from bdmm_cli.kinds import TABLE

#: The authors' (and SPIN's, OpenPose's, DWPose's) file names for each kind (`bdmm_cli.kinds`).
AUTHORS_NAMES = {k.name: k.files for k in TABLE}
_REGISTRY_PREFIX = {k.name: k.prefix for k in TABLE if k.prefix}

CHECKPOINT_SUFFIXES = (".pth", ".pt", ".safetensors", ".bin", ".ckpt", ".tar", ".pkl")


def names_a_path(name_or_path: str | Path) -> bool:
    """Whether a weights argument names a file or folder rather than a registry entry: it
    exists, holds a path separator, or ends like a checkpoint file (``~`` expanded)."""
    path = Path(name_or_path).expanduser()
    name = str(name_or_path)
    return path.exists() or "/" in name or "\\" in name or path.suffix.lower() in CHECKPOINT_SUFFIXES


def registry_name(name: str, kind: str, registry: Registry) -> str | None:
    """The registry entry a weights name means for `kind` (alias, or data set name such as
    "fashionvideo" -> "generator-fashionvideo"), or None."""
    if name in registry.entries:
        return name
    if kind in _REGISTRY_PREFIX and _REGISTRY_PREFIX[kind] + name in registry.entries:
        return _REGISTRY_PREFIX[kind] + name  # a data set name, for the kind asked for
    name = ALIASES.get(name, name)
    return name if name in registry.entries else None


def _in_folder(path: Path, kind: str) -> Path:
    names = AUTHORS_NAMES.get(kind, ())
    if (path / "model.safetensors").is_file():
        return path
    if (path / kind / "model.safetensors").is_file():
        return path / kind
    for fname in names:
        if (path / fname).is_file():
            return path / fname
    raise CheckpointError(f"{path} has no {kind.replace('_', ' ')} weights (model.safetensors, "
                          f"{kind}/model.safetensors" + "".join(f" or {n}" for n in names) + ")")


def resolve_weights(name_or_path: str | Path, kind: str) -> Path:
    """The file or folder to read for `kind` (see the module docstring).

    Raises InputError for a missing path or an unknown name, MissingResourceError when a
    registry entry is neither installed nor downloadable (the message says how to get it).
    """
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        return _in_folder(path, kind)
    if path.exists():
        return path
    if names_a_path(name_or_path):
        raise InputError(f"checkpoint {path} not found")
    registry = load_registry()
    name = registry_name(str(name_or_path), kind, registry)
    if name is None:
        known = ", ".join(n for n in registry.names() if registry.entries[n].kind == kind)
        raise InputError(f"{str(name_or_path)!r} is neither an existing file or folder nor a registry name "
                         f"(registry {kind.replace('_', ' ')} weights: {known or 'none'})")
    installed = installed_path(name)
    if installed is not None:
        return installed
    return fetch(name, registry=registry)
