"""Feature-network weights: a registry name or a local file -> a verified local file -> tensors.

Registry names used by the metrics (entries of `weights/registry.toml`, with their kinds):

    inception-v3   inception_torchvision  torchvision's ImageNet Inception-v3 (FID, protocol bdmm)
    inception-fid  inception_fid          pytorch-fid's pt_inception-2015-12-05 (FID, protocol standard)
    alexnet        alexnet                torchvision's ImageNet AlexNet (LPIPS backbone)
    lpips-alex     lpips_linear           LPIPS v0.1 linear layers for AlexNet (shipped by `lpips`)
    i3d            i3d                    StyleGAN-V's i3d_torchscript.pt (FVD; TorchScript)

Every network takes the one loading path of G, D, D_V, SPIN and OpenPose: `hub.resolve_weights`
finds the file (a path, what `bdmm setup` installed, or the cached / downloaded, verified
registry file), `state_dict.read_checkpoint_file` reads it once, safely, and
`state_dict.load_strict` checks and loads it (:func:`load_weights`). Every loader also takes
a path to a local file, so users can point at weights they already have and tests can pass
random weights through the same code.
"""

from __future__ import annotations

from pathlib import Path

import torch

from bdmm_cli.hub.resolve import resolve_weights
from bdmm_cli.state_dict import load_strict, read_checkpoint_file


def read_weights(name_or_path: str | Path, kind: str) -> dict[str, torch.Tensor]:
    """The state dict of a registry name or local file of registry kind `kind`
    (`hub.resolve_weights`, then `state_dict.read_checkpoint_file`)."""
    return read_checkpoint_file(resolve_weights(name_or_path, kind)).state_dict


def load_weights(module: torch.nn.Module, name_or_path: str | Path, kind: str, what: str) -> torch.nn.Module:
    """`module` holding the weights of a registry name or local file (:func:`read_weights`),
    checked and loaded strictly (`state_dict.load_strict`; a one-line CheckpointError naming
    the first bad keys: "...: these are not <what> weights: ...")."""
    path = resolve_weights(name_or_path, kind)
    return load_strict(module, read_checkpoint_file(path).state_dict, f"{path}: these are not {what} weights")


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
