"""The one table of network kinds (`bdmm_cli.kinds`): every kind is detected from a state
dict its real network produces, imports with provenance, and loads back bit-identically
through the one strict path; every other list of kinds agrees with the table."""

from __future__ import annotations

import hashlib

import pytest
import torch

from bdmm_cli.checkpoints import KINDS as CHECKPOINT_KINDS, import_checkpoint, read_checkpoint
from bdmm_cli.errors import CheckpointError
from bdmm_cli.kinds import IMPORTABLE, KINDS, ONNX, TABLE
from bdmm_cli.state_dict import detect_kind, read_checkpoint_file, write_folder

from weights_helpers import same_state


def _network(kind: str) -> torch.nn.Module:
    """The real network of `kind`, built by its own constructor (tiny widths where configurable)."""
    torch.manual_seed(0)
    if kind == "generator":
        from weights_helpers import tiny_generator

        return tiny_generator()
    if kind in ("discriminator", "temporal_discriminator"):
        from bdmm_cli.model.discriminators import DiscriminatorConfig, SpatialDiscriminator, TemporalDiscriminator

        cfg = DiscriminatorConfig(ndf=4, img_f=16, layers=3, input_length=6)
        return (SpatialDiscriminator if kind == "discriminator" else TemporalDiscriminator)(cfg)
    if kind == "spin":
        from bdmm_cli.pose.hmr import HMR

        return HMR()
    if kind == "openpose_body25":
        from bdmm_cli.pose.openpose import OpenPoseBody25

        return OpenPoseBody25()
    raise AssertionError(kind)


def _load(kind: str, folder):
    """The kind's own loader (the one the main job uses) on an imported folder."""
    if kind == "generator":
        from bdmm_cli.model.checkpoint import load_generator

        return load_generator(folder)
    if kind in ("discriminator", "temporal_discriminator"):
        from bdmm_cli.model.checkpoint import load_network

        return load_network(read_checkpoint_file(folder), kind, str(folder))
    if kind == "spin":
        from bdmm_cli.pose.hmr import load_pose_regressor

        return load_pose_regressor(folder)
    from bdmm_cli.pose.openpose import load_openpose

    return load_openpose(folder)


@pytest.mark.parametrize("kind", IMPORTABLE)
def test_every_kind_is_detected_imported_and_loaded(kind, tmp_path):
    net = _network(kind)
    sd = {k: v.detach().clone() for k, v in net.state_dict().items()}
    assert detect_kind(sd) == kind
    authors_file = tmp_path / KINDS[kind].files[0]
    torch.save(sd, authors_file)

    ckpt = import_checkpoint(authors_file, None, "test import")  # kind detected from the keys
    assert ckpt.kind == kind and same_state(ckpt.state_dict, sd)
    assert ckpt.provenance["source_file"] == authors_file.name
    assert ckpt.provenance["source_sha256"] == hashlib.sha256(authors_file.read_bytes()).hexdigest()
    assert ckpt.provenance["converted_by"].endswith("(test import)")

    folder = write_folder(ckpt, tmp_path / "imported")
    again = read_checkpoint(folder, kind=kind)
    assert again.kind == kind and again.provenance == ckpt.provenance and same_state(again.state_dict, sd)
    loaded = _load(kind, folder)
    assert type(loaded) is type(net) and same_state(loaded.state_dict(), sd)


@pytest.mark.parametrize("kind", IMPORTABLE)
def test_a_file_of_another_kind_is_named(kind, tmp_path):
    other = next(k for k in IMPORTABLE if k != kind and k in ("generator", "discriminator"))
    path = tmp_path / "x.pth"
    torch.save(_network(other).state_dict(), path)
    with pytest.raises(CheckpointError) as err:
        import_checkpoint(path, kind, "test")
    assert f"is not a {KINDS[kind].title} checkpoint: it holds a {KINDS[other].title}" in str(err.value)


def test_onnx_kinds_open_through_their_loader(tmp_path):
    pytest.importorskip("onnxruntime")
    from dwpose_helpers import write_standins

    det, pose = write_standins(tmp_path)
    for kind, path in ((KINDS["dwpose_det"], det), (KINDS["dwpose_pose"], pose)):
        assert kind.format == ONNX and not kind.importable and path.name in kind.files
        assert kind.checker()(kind.setup_name, path) is not None
    with pytest.raises(CheckpointError):  # the detector's file is not the pose network's
        KINDS["dwpose_pose"].checker()("dwpose-pose", det)


def test_every_list_of_kinds_reads_the_table():
    from bdmm_cli.commands.weights import _KINDS
    from bdmm_cli.hub.registry import load_registry
    from bdmm_cli.hub.resolve import AUTHORS_NAMES
    from bdmm_cli.model.checkpoint import NETWORK_KINDS
    from bdmm_cli.setup import ITEMS

    assert CHECKPOINT_KINDS == IMPORTABLE == _KINDS
    assert "openpose_body25" in IMPORTABLE and {"dwpose_det", "dwpose_pose"} <= set(KINDS)
    assert all(NETWORK_KINDS[k] == KINDS[k].title for k in NETWORK_KINDS)
    assert AUTHORS_NAMES == {k.name: k.files for k in TABLE}
    items = {i.name: i for i in ITEMS}
    registry = load_registry()
    for kind in TABLE:  # each kind is a setup item with its files, and a registry entry of that kind
        assert items[kind.setup_name].files == kind.files
        assert registry.get(kind.setup_name).kind == kind.name
        if kind.prefix:
            assert kind.setup_name.startswith(kind.prefix)
