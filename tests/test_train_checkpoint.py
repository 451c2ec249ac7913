"""Checkpoint files: atomic writes, safe loading, clear errors for damaged files."""

from __future__ import annotations

import pytest
import torch

from bdmm_cli.errors import CheckpointError, InputError
from bdmm_cli.train.checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state


def _payload():
    return {"step": 3, "config": {"seed": 0}, "G": {"w": torch.arange(4.0)}, "D": {}, "D_V": {},
            "opt_G": {"state": {}, "param_groups": [{"lr": 1e-4, "betas": (0.0, 0.999)}]}, "opt_D": {}, "rng": rng_state()}


def test_round_trip_with_rng_state_and_no_partial_files(tmp_path):
    path = save_checkpoint(tmp_path / "ck" / "latest.pt", _payload())
    data = load_checkpoint(path)
    assert data["step"] == 3 and torch.equal(data["G"]["w"], torch.arange(4.0))
    assert data["opt_G"]["param_groups"][0]["betas"] == (0.0, 0.999)
    set_rng_state(data["rng"])
    a = torch.rand(3)
    set_rng_state(data["rng"])
    assert torch.equal(a, torch.rand(3))
    save_checkpoint(path, {**_payload(), "step": 4})            # replaced atomically
    assert load_checkpoint(path)["step"] == 4
    assert [p.name for p in path.parent.iterdir()] == ["latest.pt"]


def test_truncated_foreign_and_incomplete_checkpoints_are_checkpoint_errors(tmp_path):
    path = save_checkpoint(tmp_path / "latest.pt", _payload())
    raw = path.read_bytes()
    (tmp_path / "cut.pt").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(CheckpointError, match="corrupt"):
        load_checkpoint(tmp_path / "cut.pt")
    # a pickle holding arbitrary objects (a whole module) is refused by weights_only loading
    torch.save({"format": "bdmm-train", "net": torch.nn.Linear(1, 1)}, tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="corrupt or not"):
        load_checkpoint(tmp_path / "foreign.pt")
    torch.save({"G": {}}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a bdmm training checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
    torch.save({"format": "bdmm-train", "version": 1, "step": 1}, tmp_path / "partial.pt")
    with pytest.raises(CheckpointError, match="lacks"):
        load_checkpoint(tmp_path / "partial.pt")
    with pytest.raises(InputError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")
