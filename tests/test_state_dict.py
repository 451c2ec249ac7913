"""The shared safe checkpoint reader and strict layout check."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from bdmm_cli.errors import CheckpointError, InputError
from bdmm_cli.state_dict import check_layout, read_weights_file


def test_check_layout_names_every_kind_of_problem():
    expected = {f"k{i}": (2, 3) for i in range(8)}
    found = {f"k{i}": torch.zeros(2, 3) for i in range(1, 7)}
    found["k6"] = torch.zeros(3, 2)
    found["extra"] = torch.zeros(1)
    with pytest.raises(CheckpointError) as err:
        check_layout(found, expected, "x.pth does not fit a net")
    assert str(err.value) == ("x.pth does not fit a net: 2 missing: k0, k7; 1 unexpected: extra; "
                              "1 misshaped: k6 (file (3, 2), expected (2, 3))")
    check_layout({"a": np.zeros((2, 3))}, {"a": torch.zeros(2, 3)}, "ok")  # arrays and tensors alike


def test_check_layout_shortens_long_lists():
    with pytest.raises(CheckpointError, match=r"^m: 9 missing: a0, a1, a2, a3, a4, \.\.\. \(4 more\)$"):
        check_layout({}, {f"a{i}": (1,) for i in range(9)}, "m")


def test_read_weights_file_formats(tmp_path):
    sd = {"w": torch.arange(6.0).reshape(2, 3)}
    save_file(sd, tmp_path / "a.safetensors")
    torch.save({"model": sd}, tmp_path / "a.pth")
    assert torch.equal(read_weights_file(tmp_path / "a.safetensors")["w"], sd["w"])
    assert torch.equal(read_weights_file(tmp_path / "a.pth")["model"]["w"], sd["w"])


def test_read_weights_file_refuses_garbage_and_code(tmp_path):
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable PyTorch checkpoint"):
        read_weights_file(tmp_path / "junk.pth")
    (tmp_path / "junk.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}")
    with pytest.raises(CheckpointError, match="not a valid safetensors file"):
        read_weights_file(tmp_path / "junk.safetensors")
    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    torch.save({"w": Evil()}, tmp_path / "evil.pth")
    with pytest.raises(CheckpointError, match="pickled objects other than tensors"):
        read_weights_file(tmp_path / "evil.pth")
    assert not marker.exists()
    good = tmp_path / "a.pth"
    torch.save({"w": torch.zeros(2)}, good)
    cut = tmp_path / "cut.pth"
    cut.write_bytes(good.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        read_weights_file(cut)
    with pytest.raises(InputError, match="not found"):
        read_weights_file(tmp_path / "missing.pth")
