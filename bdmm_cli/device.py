"""Turning a `--device` option into a torch device, the same way in every command; flushing
subnormal floats on the CPU."""

from __future__ import annotations

import contextlib
import ctypes
import functools
from collections.abc import Callable, Iterator
from pathlib import Path

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


def set_flush_denormal(on: bool) -> bool:
    """Flush subnormal floats (below 1.2e-38 in float32) to zero on the CPU, or stop, on the
    calling thread and on every thread of torch's OpenMP pool. False where the CPU cannot
    (`torch.set_flush_denormal`'s answer).

    The flag (x86's FTZ/DAZ) belongs to each thread, and a new thread copies it from the thread
    that starts it; `torch.set_flush_denormal` sets the calling thread only, so the pool's
    threads that already run keep theirs (measured with 2 threads: half of an element-wise
    product's subnormal results stayed). They are reached by one parallel region of the OpenMP
    runtime that torch loaded (`GOMP_parallel` of its libgomp) whose body sets the flag; where
    that runtime is not found, only the threads started later follow.
    """
    if not torch.set_flush_denormal(on):
        return False
    _on_every_pool_thread(lambda: torch.set_flush_denormal(on))
    return True


@contextlib.contextmanager
def flushed_denormals(device: str | torch.device) -> Iterator[None]:
    """`set_flush_denormal(True)` for the block when `device` is the CPU; off again after it."""
    on = torch.device(device).type == "cpu" and set_flush_denormal(True)
    try:
        yield
    finally:
        if on:
            set_flush_denormal(False)


@functools.lru_cache(maxsize=1)
def _gomp_parallel() -> Callable | None:
    """`GOMP_parallel(fn, data, num_threads, flags)` of the libgomp in torch's wheel, or None."""
    for lib in sorted((Path(torch.__file__).parent / "lib").glob("libgomp*.so*")):
        try:
            fn = ctypes.CDLL(str(lib)).GOMP_parallel
        except (OSError, AttributeError):
            continue
        fn.restype = None
        fn.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint, ctypes.c_uint]
        return fn
    return None


def _on_every_pool_thread(body: Callable[[], object]) -> bool:
    """Run `body` once on each thread of torch's OpenMP team (torch.get_num_threads() threads)."""
    parallel = _gomp_parallel()
    if parallel is None:
        return False
    callback = ctypes.CFUNCTYPE(None, ctypes.c_void_p)(lambda _data: body())
    parallel(ctypes.cast(callback, ctypes.c_void_p), None, torch.get_num_threads(), 0)
    return True
