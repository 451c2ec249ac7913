"""Feature-network weights: a registry name or a local file -> a verified local file -> tensors.

Registry names used by the metrics (entries of `weights/registry.toml`, fetched and
verified by `bdmm_cli.hub.fetch`):

    inception-v3   torchvision's ImageNet Inception-v3 (FID, protocol bdmm)
    inception-fid  pytorch-fid's pt_inception-2015-12-05 (FID, protocol standard)
    alexnet        torchvision's ImageNet AlexNet (LPIPS backbone)
    lpips-alex     LPIPS v0.1 linear layers for AlexNet (shipped by the `lpips` package)
    i3d            StyleGAN-V's i3d_torchscript.pt (FVD)

Every loader also takes a path to a local file, so users can point at weights they
already have and tests can pass random weights through the same code.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from bdmm_cli.errors import MissingResourceError
from bdmm_cli.state_dict import flatten_state_dict, load_strict, read_weights_file

def resolve_weights(name_or_path: str | Path) -> Path:
    """A local file for a registry name or a path; MissingResourceError saying how to get it."""
    from bdmm_cli.hub.resolve import names_a_path

    path = Path(name_or_path).expanduser()
    if path.is_file():
        return path
    text = str(name_or_path)
    if names_a_path(name_or_path):  # the one rule for "this names a file" (hub.resolve)
        raise MissingResourceError(f"weights file {path} " + ("is not a file" if path.exists() else "does not exist"))
    try:
        from bdmm_cli.hub import fetch
    except ImportError:  # the weights registry is not part of this build
        raise MissingResourceError(
            f"feature network {text!r} is not available: this build has no weights registry; "
            "pass a local weights file instead"
        ) from None
    return Path(fetch(text))


def load_state_dict(path: Path) -> dict[str, Tensor]:
    """Tensors of a .safetensors or a torch file (weights_only), `module.` prefixes stripped
    (``state_dict.flatten_state_dict``, the one rule)."""
    return flatten_state_dict(read_weights_file(Path(path)), str(path))


def load_into(module: torch.nn.Module, state: dict[str, Tensor], what: str) -> None:
    """Strict load with a one-line CheckpointError naming the first bad keys."""
    load_strict(module, state, f"these are not {what} weights")
