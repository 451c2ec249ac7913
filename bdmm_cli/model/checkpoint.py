"""Loading and saving the BDMM networks (G, D, D_V): the authors' `.pth` and our format.

    g = load_generator("fashionvideo")            # registry / `bdmm setup` install (verified)
    g = load_generator("out/generator")           # a folder written by `bdmm weights import`
    g = load_generator("latest_net_G.pth")        # the authors' checkpoint (weights_only=True)
    d, d_v = load_discriminators("fashionvideo")  # or a folder with discriminator/ + temporal_discriminator/
    save_generator(g, "release/generator")        # our format (train's release export)

One path for every file: `hub.resolve_weights` finds the file (registry name, `bdmm setup`
install, folder or file), `state_dict.read_checkpoint_file` reads it once, the network is
built on the meta device from the file's config (ours) or from the tensor shapes (the
authors'), and `state_dict.load_strict` checks the layout against it once and loads it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from ..errors import CheckpointError, InputError
from ..hub.resolve import resolve_weights
from ..kinds import KINDS, title
from ..state_dict import (
    shape_of,
    Checkpoint, check_weights, detect_kind, flatten_state_dict, load_strict, read_checkpoint_file, write_folder,
)
from .discriminators import DiscriminatorConfig, SpatialDiscriminator, TemporalDiscriminator
from .generator import BDMMGenerator, GeneratorConfig

__all__ = [
    "NETWORK_KINDS", "build_network", "check_network", "infer_config", "load_discriminators", "load_generator",
    "load_network", "load_official_state_dict", "normalize_state_dict", "save_discriminators", "save_generator",
    "save_network",
]

#: The BDMM networks this module builds, and what they are called in messages (`bdmm_cli.kinds`).
NETWORK_KINDS = {k: KINDS[k].title for k in ("generator", "discriminator", "temporal_discriminator")}


def normalize_state_dict(state_dict: Mapping) -> dict[str, torch.Tensor]:
    """{key: tensor} from a mapping of numpy arrays or tensors, with a ``module.`` prefix
    (DataParallel) stripped (``state_dict.flatten_state_dict``)."""
    return flatten_state_dict(state_dict)


def load_official_state_dict(module: nn.Module, state_dict: Mapping) -> None:
    """Load ``state_dict`` (the authors' key layout, numpy arrays or tensors) into ``module``.

    Strict: any missing, unexpected or misshaped key raises CheckpointError naming the first
    few of each and their count. Values are copied (and cast to the module's dtypes).
    """
    load_strict(module, flatten_state_dict(state_dict), f"checkpoint does not fit {type(module).__name__}")


# --- what the tensors say ----------------------------------------------------------------------


def _read_dims(cfg: dict, sd: Mapping[str, torch.Tensor], key: str, **fields: int) -> None:
    """cfg[field] = sd[key].shape[dim] for each ``field=dim`` (nothing when ``key`` is absent)."""
    shape = shape_of(sd.get(key))
    if shape:
        cfg.update({field: shape[dim] for field, dim in fields.items()})


def _generator_config(sd: Mapping[str, torch.Tensor]) -> dict:
    cfg = GeneratorConfig().to_dict()
    _read_dims(cfg, sd, "x_ref.block0.model.2.weight", ngf=0, image_nc=1)
    enc = shape_of(sd.get("x_encoder.block0.model.2.weight"))
    if enc:  # the structure encoder reads the image and the heatmaps stacked
        cfg["structure_nc"] = enc[1] - cfg["image_nc"]
    widths = [t.shape[0] for k, t in sd.items() if k.startswith("x_ref.") and k.endswith(".model.2.weight")]
    if widths:
        cfg["img_f"] = max(widths)
    _read_dims(cfg, sd, "decoder256.conv.modulation.weight", style_dim=1)
    return cfg


def _discriminator_config(sd: Mapping[str, torch.Tensor]) -> dict:
    cfg = DiscriminatorConfig().to_dict()
    _read_dims(cfg, sd, "block0.model.1.weight", ndf=0, input_nc=1)
    _read_dims(cfg, sd, "conv.weight_orig", img_f=1)
    stages = {k.split(".")[0] for k in sd if k.split(".")[0].startswith(("block", "encoder"))}
    if stages:
        cfg["layers"] = len(stages)
    return cfg


def infer_config(kind: str, sd: Mapping[str, torch.Tensor]) -> dict:
    """The config fields of a `kind` network read off an authors' state dict's tensor shapes
    (defaults where a key is absent: the strict check that follows names what is missing)."""
    if kind == "generator":
        return _generator_config(sd)
    return _discriminator_config(sd)


def build_network(kind: str, config: dict, device: str | torch.device = "cpu", source: str = "checkpoint") -> nn.Module:
    """The network for `kind` built from `config` (its dataclass fields) on `device`."""
    try:
        if kind == "generator":
            cfg, ctor = GeneratorConfig.from_dict(config), BDMMGenerator
        elif kind in ("discriminator", "temporal_discriminator"):
            cfg = DiscriminatorConfig.from_dict(config)
            ctor = SpatialDiscriminator if kind == "discriminator" else TemporalDiscriminator
        else:
            raise CheckpointError(f"{source}: cannot build a network of kind {kind!r}")
    except (ValueError, TypeError) as exc:
        raise CheckpointError(f"{source} has an invalid {kind} config: {exc}") from None
    with torch.device(device):
        return ctor(cfg)


def _config_of(ckpt: Checkpoint, kind: str) -> dict:
    return ckpt.config if ckpt.kind == kind and ckpt.config else infer_config(kind, ckpt.state_dict)


def check_network(ckpt: Checkpoint, kind: str, source: str) -> Checkpoint:
    """`ckpt` checked strictly against the `kind` network built on the meta device (nothing
    is allocated); returned with its config filled in (read off the shapes for an authors' file)."""
    config = _config_of(ckpt, kind)
    meta = build_network(kind, config, device="meta", source=source)
    check_weights(ckpt.state_dict, meta, f"{source} does not fit a {NETWORK_KINDS[kind]}")
    return Checkpoint(ckpt.state_dict, kind, config, ckpt.provenance)


def load_network(ckpt: Checkpoint, kind: str, source: str = "checkpoint", device: str | torch.device = "cpu") -> nn.Module:
    """The `kind` network holding `ckpt`'s weights: built on the meta device, checked once,
    materialised and loaded strictly. Eval mode, on `device`."""
    config = _config_of(ckpt, kind)
    net = build_network(kind, config, device="meta", source=source)
    net = load_strict(net, ckpt.state_dict, f"{source} does not fit a {NETWORK_KINDS[kind]}")
    return net.to(device).eval()


def _wrong_kind(source: str, want: str, got: str) -> CheckpointError:
    return CheckpointError(f"{source} is not a {title(want)} checkpoint: it holds a {title(got)}")


def _read(name_or_path: str | Path, kind: str) -> tuple[Checkpoint, str]:
    path = resolve_weights(name_or_path, kind)
    ckpt = read_checkpoint_file(path)
    got = ckpt.kind or detect_kind(ckpt.state_dict, str(path))
    if got != kind:
        raise _wrong_kind(str(path), kind, got)
    return ckpt, str(path)


def load_generator(name_or_path: str | Path, device: str | torch.device = "cpu") -> BDMMGenerator:
    """A BDMMGenerator from a registry name ("fashionvideo", "generator-iper", installed by
    `bdmm setup` or fetched), one of our folders / .safetensors files, or the authors'
    latest_net_G.pth. Eval mode, on `device`."""
    ckpt, source = _read(name_or_path, "generator")
    return load_network(ckpt, "generator", source, device)


def load_discriminators(name_or_path: str | Path, device: str | torch.device = "cpu"):
    """(SpatialDiscriminator, TemporalDiscriminator) from a data set name ("fashionvideo"), a
    folder holding discriminator/ and temporal_discriminator/ (or the authors' latest_net_D.pth
    and latest_net_D_V.pth). Eval mode, on `device`."""
    out = []
    for kind in ("discriminator", "temporal_discriminator"):
        ckpt, source = _read(name_or_path, kind)
        out.append(load_network(ckpt, kind, source, device))
    return tuple(out)


def save_network(net: nn.Module, kind: str, folder: str | Path, *, provenance: dict | None = None,
                 force: bool = False) -> Path:
    """Write a network (its `.config` dataclass and state dict) in our folder format."""
    config = getattr(net, "config", None)
    if config is None or not hasattr(config, "to_dict"):
        raise InputError(f"{type(net).__name__} has no .config dataclass; cannot save it as a {kind}")
    return write_folder(Checkpoint(dict(net.state_dict()), kind, config.to_dict(), dict(provenance or {})), folder,
                        force=force)


def save_generator(g: BDMMGenerator, folder: str | Path, *, provenance: dict | None = None, force: bool = False) -> Path:
    """Save a BDMMGenerator as folder/model.safetensors + folder/config.json."""
    return save_network(g, "generator", folder, provenance=provenance, force=force)


def save_discriminators(d, d_v, folder: str | Path, *, provenance: dict | None = None, force: bool = False) -> Path:
    """Save D and D_V as folder/discriminator/ and folder/temporal_discriminator/."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    save_network(d, "discriminator", folder / "discriminator", provenance=provenance, force=force)
    save_network(d_v, "temporal_discriminator", folder / "temporal_discriminator", provenance=provenance, force=force)
    return folder
