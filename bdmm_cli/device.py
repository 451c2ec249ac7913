"""Turning a `--device` option into a torch device, the same way in every command."""

from __future__ import annotations

import torch

from bdmm_cli.errors import InputError


def resolve_device(name: str | torch.device, local_rank: int | None = None) -> torch.device:
    """"auto" -> CUDA when available, else CPU; InputError for a device that is not there.

    Args:
        name: "auto", "cpu", "cuda", "cuda:N" (or a torch.device).
        local_rank: under torchrun, "auto" and a bare "cuda" mean this process's GPU
            ("cuda:<local_rank>").
    """
    text = str(name)
    if text == "auto":
        if not torch.cuda.is_available():
            return torch.device("cpu")
        text = "cuda"
    try:
        device = torch.device(text)
    except (RuntimeError, ValueError) as exc:
        raise InputError(f"--device {text!r} is not a device (use auto, cpu, cuda or cuda:N)") from exc
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise InputError("--device cuda: no CUDA GPU is available (use --device cpu)")
        if device.index is None and local_rank is not None:
            device = torch.device("cuda", local_rank)
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise InputError(f"--device {device}: only {torch.cuda.device_count()} GPU(s) present")
    elif device.type != "cpu":
        raise InputError(f"--device {text!r} is not supported (use auto, cpu, cuda or cuda:N)")
    return device
