"""Build ready-to-run networks from a registry name, one of our folders/files, or the authors' `.pth`.

    g = load_generator("fashionvideo")            # registry (Hub, cached, verified)
    g = load_generator("out/generator")           # a folder written by `bdmm weights import`
    g = load_generator("latest_net_G.pth")        # the authors' checkpoint (weights_only=True)
    d, d_v = load_discriminators("fashionvideo")  # or a folder with discriminator/ + temporal_discriminator/
    hmr = load_pose_regressor("spin")             # SPIN/HMR (our safetensors or SPIN's model_checkpoint.pt)
    save_generator(g, "release/generator")        # our format (used by train's release export)

Every loader is strict: a wrong network, a truncated file or a mismatched key raises
CheckpointError naming what is missing or unexpected. Networks are returned in eval mode.
"""

from __future__ import annotations

from pathlib import Path

import torch

from bdmm_cli.errors import CheckpointError, InputError
from bdmm_cli.hub.checkpoint import (
    Checkpoint, build_network, read_checkpoint, write_folder,
)
from bdmm_cli.hub.download import fetch
from bdmm_cli.hub.registry import ALIASES, load_registry

__all__ = [
    "fetch", "load_checkpoint", "load_discriminators", "load_generator", "load_pose_regressor",
    "save_discriminators", "save_generator", "save_network",
]

_AUTHORS_NAMES = {
    "generator": ("latest_net_G.pth",),
    "discriminator": ("latest_net_D.pth",),
    "temporal_discriminator": ("latest_net_D_V.pth",),
    "spin": ("spin_ckpt.pth", "model_checkpoint.pt"),
}
_SUBFOLDER = {"generator": "generator", "discriminator": "discriminator",
              "temporal_discriminator": "temporal_discriminator", "spin": "spin"}
_REGISTRY_PREFIX = {"generator": "generator-", "discriminator": "discriminator-",
                    "temporal_discriminator": "temporal-discriminator-"}


CHECKPOINT_SUFFIXES = (".pth", ".pt", ".safetensors", ".bin", ".ckpt")


def names_a_path(name_or_path: str | Path) -> bool:
    """Whether a weights argument names a file or folder rather than a registry entry: it
    exists, holds a path separator, or ends like a checkpoint file (``~`` expanded)."""
    path = Path(name_or_path).expanduser()
    name = str(name_or_path)
    return path.exists() or "/" in name or "\\" in name or path.suffix in CHECKPOINT_SUFFIXES


def _resolve(name_or_path: str | Path, kind: str) -> Path:
    """A path to read for `kind`: an existing file/folder, a sub-folder of an export, an
    authors' checkpoint folder, or a registry entry (fetched and verified)."""
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        sub = path / _SUBFOLDER[kind]
        if (path / "model.safetensors").is_file():
            return path
        if (sub / "model.safetensors").is_file():
            return sub
        for fname in _AUTHORS_NAMES[kind]:
            if (path / fname).is_file():
                return path / fname
        raise CheckpointError(f"{path} has no {kind.replace('_', ' ')} weights (model.safetensors, "
                              f"{_SUBFOLDER[kind]}/model.safetensors or {' / '.join(_AUTHORS_NAMES[kind])})")
    if path.exists():
        return path
    if names_a_path(name_or_path):
        raise InputError(f"checkpoint {path} not found")
    name = str(name_or_path)
    registry = load_registry()
    name = ALIASES.get(name, name)
    if name not in registry.entries and kind in _REGISTRY_PREFIX and _REGISTRY_PREFIX[kind] + name in registry.entries:
        name = _REGISTRY_PREFIX[kind] + name  # a data set name: "fashionvideo"
    if name not in registry.entries:
        known = ", ".join(n for n in registry.names() if registry.entries[n].kind == kind)
        raise InputError(f"{name_or_path!r} is neither an existing file or folder nor a registry name "
                         f"(registry {kind.replace('_', ' ')} weights: {known or 'none'})")
    return fetch(name, registry=registry)


def load_checkpoint(name_or_path: str | Path, kind: str) -> Checkpoint:
    """The checked Checkpoint of `kind` behind a registry name, folder or file."""
    return read_checkpoint(_resolve(name_or_path, kind), kind=kind)


def _materialize(meta_net: torch.nn.Module, build) -> torch.nn.Module:
    """A CPU module for weights that are about to be loaded: when every parameter and buffer
    is in the state dict, allocate the meta-device module without its random initialisation;
    otherwise build it normally with `build()`."""
    held = {n for n, _ in meta_net.named_parameters()} | {n for n, _ in meta_net.named_buffers()}
    if held <= set(meta_net.state_dict()):
        return meta_net.to_empty(device="cpu")
    return build()


def _load_network(name_or_path: str | Path, kind: str, device: str | torch.device) -> torch.nn.Module:
    from bdmm_cli.model import load_official_state_dict

    ckpt = load_checkpoint(name_or_path, kind)
    net = _materialize(build_network(kind, ckpt.config, device="meta", source=str(name_or_path)),
                       lambda: build_network(kind, ckpt.config, source=str(name_or_path)))
    load_official_state_dict(net, ckpt.state_dict)
    return net.to(device).eval()


def load_generator(name_or_path: str | Path, device: str | torch.device = "cpu"):
    """A BDMMGenerator from a registry name ("fashionvideo", "generator-iper"), one of our
    folders / .safetensors files, or the authors' latest_net_G.pth. Eval mode, on `device`."""
    return _load_network(name_or_path, "generator", device)


def load_discriminators(name_or_path: str | Path, device: str | torch.device = "cpu"):
    """(SpatialDiscriminator, TemporalDiscriminator) from a data set name ("fashionvideo"), a
    folder holding discriminator/ and temporal_discriminator/ (or the authors' latest_net_D.pth
    and latest_net_D_V.pth). Eval mode, on `device`."""
    return (_load_network(name_or_path, "discriminator", device),
            _load_network(name_or_path, "temporal_discriminator", device))


def load_pose_regressor(name_or_path: str | Path = "spin", device: str | torch.device = "cpu"):
    """SPIN's HMR regressor (`bdmm_cli.pose.HMR`) from a registry name ("spin",
    "spin-original"), one of our folders, SPIN's model_checkpoint.pt or BDMM's spin_ckpt.pth.
    Eval mode, on `device`.

    The weights are checked here against SPIN's documented layout, then loaded with
    `bdmm_cli.pose.load_spin_state_dict` (strict)."""
    from bdmm_cli.pose import HMR, load_spin_state_dict

    ckpt = load_checkpoint(name_or_path, "spin")
    with torch.device("meta"):
        meta = HMR()
    net = _materialize(meta, HMR)
    load_spin_state_dict(net, ckpt.state_dict)
    return net.to(device).eval()


def save_network(net: torch.nn.Module, kind: str, folder: str | Path, *, provenance: dict | None = None,
                 force: bool = False) -> Path:
    """Write a network (its `.config` dataclass and state dict) in our folder format."""
    config = getattr(net, "config", None)
    if config is None or not hasattr(config, "to_dict"):
        raise InputError(f"{type(net).__name__} has no .config dataclass; cannot save it as a {kind}")
    sd = {k: v for k, v in net.state_dict().items()}
    return write_folder(Checkpoint(sd, kind, config.to_dict(), dict(provenance or {})), folder, force=force)


def save_generator(g, folder: str | Path, *, provenance: dict | None = None, force: bool = False) -> Path:
    """Save a BDMMGenerator as folder/model.safetensors + folder/config.json."""
    return save_network(g, "generator", folder, provenance=provenance, force=force)


def save_discriminators(d, d_v, folder: str | Path, *, provenance: dict | None = None, force: bool = False) -> Path:
    """Save D and D_V as folder/discriminator/ and folder/temporal_discriminator/."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    save_network(d, "discriminator", folder / "discriminator", provenance=provenance, force=force)
    save_network(d_v, "temporal_discriminator", folder / "temporal_discriminator", provenance=provenance, force=force)
    return folder
