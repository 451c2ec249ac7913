"""--device parsing shared by animate, eval and train."""

from __future__ import annotations

import pytest
import torch

from bdmm_cli.device import resolve_device
from bdmm_cli.errors import InputError


def test_auto_and_cpu():
    want = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == want
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu"), local_rank=3) == torch.device("cpu")


@pytest.mark.parametrize("name, message", [("bogus", "is not a device"), ("meta", "is not supported")])
def test_bad_names(name, message):
    with pytest.raises(InputError, match=message):
        resolve_device(name)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without CUDA")
def test_cuda_without_gpu_is_a_clear_error():
    with pytest.raises(InputError, match="no CUDA GPU is available"):
        resolve_device("cuda:0")


@pytest.mark.gpu
def test_cuda_local_rank():
    assert resolve_device("cuda", local_rank=0) == torch.device("cuda", 0)
    assert resolve_device("auto", local_rank=0) == torch.device("cuda", 0)
    with pytest.raises(InputError, match="GPU\\(s\\) present"):
        resolve_device(f"cuda:{torch.cuda.device_count()}")
