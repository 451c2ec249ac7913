"""Strict loading of checkpoints with the authors' key layout."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from bdmm_cli.errors import CheckpointError
from bdmm_cli.model import (
    BDMMGenerator,
    GeneratorConfig,
    SpatialDiscriminator,
    TemporalDiscriminator,
    load_official_state_dict,
)

TINY = GeneratorConfig(ngf=8, img_f=32, style_dim=32)


def test_state_dict_keys_equal_the_authors_keys(fixture_dir):
    spec = json.loads((fixture_dir / "spec.json").read_text())
    for net, module in (("G", BDMMGenerator()), ("D", SpatialDiscriminator()), ("D_V", TemporalDiscriminator())):
        ours = {k: list(v.shape) for k, v in module.state_dict().items()}
        theirs = {k: e["shape"] for k, e in spec[net].items()}
        assert ours == theirs, net
    assert len(spec["G"]) == 241 and len(spec["D"]) == 28


def test_numpy_and_module_prefix_load_identically():
    src = BDMMGenerator(TINY)
    sd_np = {f"module.{k}": v.numpy().copy() for k, v in src.state_dict().items()}
    a, b = BDMMGenerator(TINY), BDMMGenerator(TINY)
    load_official_state_dict(a, sd_np)
    load_official_state_dict(b, src.state_dict())
    for (k, va), (_, vb), (_, vs) in zip(a.state_dict().items(), b.state_dict().items(), src.state_dict().items()):
        assert torch.equal(va, vs) and torch.equal(vb, vs), k


def test_missing_unexpected_and_misshaped_keys_are_named():
    g = BDMMGenerator(TINY)
    sd = dict(g.state_dict())
    del sd["forconv1.offset_conv.bias"]
    sd["extra.weight"] = torch.zeros(1)
    sd["conv1up.bias"] = torch.zeros(1, 5, 1, 1)
    with pytest.raises(CheckpointError) as err:
        load_official_state_dict(g, sd)
    msg = str(err.value)
    assert "1 missing: forconv1.offset_conv.bias" in msg
    assert "1 unexpected: extra.weight" in msg
    assert "conv1up.bias (file (1, 5, 1, 1), expected (1, 16, 1, 1))" in msg
    assert "\n" not in msg


def test_many_missing_keys_are_counted():
    with pytest.raises(CheckpointError, match=r"241 missing: .*\(236 more\)"):
        load_official_state_dict(BDMMGenerator(), {})
    sd = dict(SpatialDiscriminator().state_dict())
    with pytest.raises(CheckpointError, match="28 unexpected"):
        load_official_state_dict(BDMMGenerator(TINY), {**BDMMGenerator(TINY).state_dict(), **{f"d.{k}": v for k, v in sd.items()}})


def test_not_a_state_dict():
    g = BDMMGenerator(TINY)
    with pytest.raises(CheckpointError, match="not a state dict"):
        load_official_state_dict(g, [1, 2])  # type: ignore[arg-type]
    sd = dict(g.state_dict())
    sd["conv1up.bias"] = "oops"
    with pytest.raises(CheckpointError, match="conv1up.bias"):
        load_official_state_dict(g, sd)
    sd["conv1up.bias"] = np.zeros((1, 16, 1, 1), dtype=np.int64)
    with pytest.raises(CheckpointError, match="non-float"):
        load_official_state_dict(g, sd)
