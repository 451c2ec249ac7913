"""Any network's checkpoint, checked against the network it holds (above model/ and pose/).

    ckpt = read_checkpoint("latest_net_G.pth")            # kind detected from the keys
    ckpt = read_checkpoint("spin_ckpt.pth", kind="spin")  # or required
    ckpt = import_checkpoint("latest_net_G.pth", "generator", "bdmm weights import")  # + provenance
    write_folder(ckpt, "out/generator")                   # our format (bdmm_cli.state_dict)

Used by `bdmm weights import | verify | export` and `bdmm setup`: the file is read once
(`state_dict.read_checkpoint_file`), its kind detected from the key names unless the file
says (`state_dict.detect_kind`), and checked strictly, once, against the network's own
layout on the meta device by the checker the table of kinds names (`bdmm_cli.kinds`:
`model.checkpoint.check_network` for G / D / D_V, `pose.hmr.check_spin_checkpoint` for
SPIN, `pose.openpose.check_openpose_checkpoint` for OpenPose BODY_25).
"""

from __future__ import annotations

from pathlib import Path

from bdmm_cli.errors import CheckpointError, InputError
from bdmm_cli.kinds import IMPORTABLE, KINDS as _TABLE
from bdmm_cli.state_dict import Checkpoint, detect_kind, read_checkpoint_file, write_folder

#: The kinds a checkpoint file can hold (state dicts), in the table's order.
KINDS = IMPORTABLE

__all__ = ["KINDS", "Checkpoint", "check_checkpoint", "import_checkpoint", "read_checkpoint", "write_folder"]


def check_checkpoint(ckpt: Checkpoint, kind: str, source: str) -> Checkpoint:
    """`ckpt` checked strictly as a `kind` network; returned with kind and config filled in."""
    if kind not in KINDS:
        raise CheckpointError(f"{source}: unknown kind {kind!r}")
    return _TABLE[kind].checker()(ckpt, kind, source)


def read_checkpoint(path: str | Path, kind: str | None = None) -> Checkpoint:
    """Any supported file or folder -> a checked Checkpoint (kind detected unless given; a
    file holding another network than `kind` is a CheckpointError naming both)."""
    path = Path(path).expanduser()
    if kind is not None and kind not in KINDS:
        raise InputError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
    ckpt = read_checkpoint_file(path)
    found = ckpt.kind or detect_kind(ckpt.state_dict, str(path))
    if found not in KINDS:
        raise CheckpointError(f"{path}: unknown kind {found!r}")
    if kind and kind != found:
        raise CheckpointError(f"{path} is not a {_TABLE[kind].title} checkpoint: it holds a {_TABLE[found].title}")
    if ckpt.kind != found:
        ckpt = Checkpoint(ckpt.state_dict, found, {}, ckpt.provenance)
    return check_checkpoint(ckpt, found, str(path))


def import_checkpoint(path: str | Path, kind: str | None, origin: str, *, source: str | None = None,
                      sha256: str | None = None) -> Checkpoint:
    """An original file read and checked (:func:`read_checkpoint`), with its provenance:
    the file's name, sha256 (`sha256`, or hashed now for a file), where it came from
    (`source`, e.g. an archive member) and which bdmm command (`origin`) converted it.

    The one provenance rule of `bdmm weights import | export` and `bdmm setup`; the result
    is ready for `write_folder`.
    """
    from bdmm_cli import __version__
    from bdmm_cli.fileio import sha256_file

    path = Path(path).expanduser()
    ckpt = read_checkpoint(path, kind=kind)
    if sha256 is None:
        sha256 = sha256_file(path) if path.is_file() else ""
    provenance = {**ckpt.provenance, "source_file": path.name, **({"source": source} if source else {}),
                  "source_sha256": sha256, "converted_by": f"bdmm {__version__} ({origin})"}
    return Checkpoint(ckpt.state_dict, ckpt.kind, ckpt.config, provenance)
