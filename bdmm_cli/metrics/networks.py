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


# --- `bdmm setup --eval` ------------------------------------------------------------------------

#: The feature networks of `bdmm eval` (protocol bdmm and standard), by registry name.
EVAL_NETWORKS = ("inception-v3", "inception-fid", "alexnet", "lpips-alex", "i3d")


def setup_eval_networks(
    accept_licenses: bool = False,
    trust_unverified: bool | None = None,
    announce=lambda _msg: None,
) -> list[dict]:
    """Fetch and verify every feature network of `bdmm eval` (`bdmm setup --eval`).

    Each entry's source, license and verification level (full sha256, torch.hub name prefix
    then pinned, or none) is announced before anything is downloaded; downloads need
    `accept_licenses`. An entry without any checksum (the I3D TorchScript detector: none is
    published) is refused unless `trust_unverified` (its digest is then pinned).

    Returns one {"name", "path", "sha256", "verification", "license"} per network.
    Raises InputError (licenses not accepted), MissingResourceError, CheckpointError.
    """
    from bdmm_cli.errors import InputError
    from bdmm_cli.fileio import content_hash
    from bdmm_cli.hub.download import cached_path, fetch
    from bdmm_cli.hub.registry import load_registry

    reg = load_registry()
    entries = [reg.get(n) for n in EVAL_NETWORKS]
    missing = [e for e in entries if cached_path(e.name, registry=reg) is None]
    for e in missing:
        announce(f"{e.name}: {e.url or e.package or e.filename}\n  license: {e.license}\n"
                 f"  verification: {e.verification}" + (f" ({e.sha256_prefix})" if e.verification == "prefix" else ""))
    if missing and not accept_licenses:
        raise InputError("pass --accept-licenses to download the feature networks listed above under their licenses")
    rows = []
    for e in entries:
        path = fetch(e.name, registry=reg, trust_unverified=trust_unverified)
        rows.append({"name": e.name, "path": str(path), "sha256": content_hash(Path(path)),
                     "verification": e.verification, "license": e.license})
    return rows
