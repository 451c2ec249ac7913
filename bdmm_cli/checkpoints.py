"""Any network's checkpoint, checked against the network it holds (above model/ and pose/).

    ckpt = read_checkpoint("latest_net_G.pth")            # kind detected from the keys
    ckpt = read_checkpoint("spin_ckpt.pth", kind="spin")  # or required
    write_folder(ckpt, "out/generator")                   # our format (bdmm_cli.state_dict)

Used by `bdmm weights import | verify | export` and `bdmm setup`: the file is read once
(`state_dict.read_checkpoint_file`), its kind detected from the key names unless the file
says, and checked strictly, once, against the network's own layout on the meta device
(`model.checkpoint.check_network` for G / D / D_V, `pose.hmr.check_spin_state_dict` for
SPIN, `pose.openpose.check_openpose_state_dict` for OpenPose BODY_25).
"""

from __future__ import annotations

from pathlib import Path

from bdmm_cli.errors import CheckpointError
from bdmm_cli.model.checkpoint import NETWORK_KINDS, check_network
from bdmm_cli.pose.hmr import check_spin_state_dict
from bdmm_cli.pose.openpose import check_openpose_state_dict
from bdmm_cli.state_dict import Checkpoint, detect_kind, read_checkpoint_file, write_folder

KINDS = (*NETWORK_KINDS, "spin", "openpose_body25")
_NAMES = {**NETWORK_KINDS, "spin": "SPIN/HMR regressor", "openpose_body25": "OpenPose BODY_25 network"}

__all__ = ["KINDS", "Checkpoint", "check_checkpoint", "read_checkpoint", "write_folder"]


def check_checkpoint(ckpt: Checkpoint, kind: str, source: str) -> Checkpoint:
    """`ckpt` checked strictly as a `kind` network; returned with kind and config filled in."""
    if kind == "spin":
        return Checkpoint(check_spin_state_dict(ckpt.state_dict, source), "spin", {}, ckpt.provenance)
    if kind == "openpose_body25":
        check_openpose_state_dict(ckpt.state_dict, source)
        return Checkpoint(ckpt.state_dict, kind, {}, ckpt.provenance)
    return check_network(ckpt, kind, source)


def read_checkpoint(path: str | Path, kind: str | None = None) -> Checkpoint:
    """Any supported file or folder -> a checked Checkpoint (kind detected unless given; a
    file holding another network than `kind` is a CheckpointError naming both)."""
    path = Path(path).expanduser()
    ckpt = read_checkpoint_file(path)
    found = ckpt.kind or detect_kind(ckpt.state_dict, str(path))
    if found not in _NAMES:
        raise CheckpointError(f"{path}: unknown kind {found!r}")
    if kind and kind != found:
        raise CheckpointError(f"{path} is not a {_NAMES[kind]} checkpoint: it holds a {_NAMES[found]}")
    if ckpt.kind != found:
        ckpt = Checkpoint(ckpt.state_dict, found, {}, ckpt.provenance)
    return check_checkpoint(ckpt, found, str(path))
