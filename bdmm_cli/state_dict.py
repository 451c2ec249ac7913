"""Checkpoint files read safely, and strict state-dict layout checks, shared by every loader.

- `read_torch_file` / `read_weights_file`: `torch.load(weights_only=True)` (tensors, plain
  containers and numbers; numpy scalars and arrays, which old checkpoints store, are
  allow-listed explicitly) or safetensors; anything else is refused with a one-line
  CheckpointError, and no pickled code ever runs.
- `check_layout`: compare a state dict's keys and shapes with what a module expects; a
  CheckpointError names the missing, unexpected and misshaped keys (a few, then a count).
"""

from __future__ import annotations

import contextlib
import pickle
import re
import zipfile
from collections.abc import Mapping
from pathlib import Path

import torch

from bdmm_cli.errors import CheckpointError, InputError

_SHOW = 5


def few(items: list[str]) -> str:
    """The first few items, comma-separated, and how many more there are."""
    head = ", ".join(items[:_SHOW])
    return head + (f", ... ({len(items) - _SHOW} more)" if len(items) > _SHOW else "")


def _shape(value) -> tuple[int, ...] | None:
    shape = getattr(value, "shape", None)
    return tuple(shape) if shape is not None else None


def check_layout(found: Mapping[str, object], expected: Mapping[str, object], message: str) -> None:
    """Raise CheckpointError(`message: ...`) unless `found` has exactly `expected`'s keys and shapes.

    Args:
        found: the checkpoint's {key: tensor or array}.
        expected: {key: tensor, array or shape tuple} of the module it should fit.
        message: the start of the error, e.g. "latest_net_G.pth does not fit a BDMM generator".
    """
    want = {k: (tuple(v) if isinstance(v, (tuple, list, torch.Size)) else _shape(v)) for k, v in expected.items()}
    missing = [k for k in want if k not in found]
    unexpected = [k for k in found if k not in want]
    misshaped = [f"{k} (file {_shape(found[k])}, expected {want[k]})"
                 for k in want if k in found and _shape(found[k]) != want[k]]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing: {few(missing)}")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected: {few(unexpected)}")
    if misshaped:
        problems.append(f"{len(misshaped)} misshaped: {few(misshaped)}")
    if problems:
        raise CheckpointError(f"{message}: " + "; ".join(problems))


# --- reading checkpoints safely --------------------------------------------------------

_NUMPY_GLOBALS = ("numpy.core.multiarray.scalar", "numpy._core.multiarray.scalar", "numpy.dtype",
                  "numpy.core.multiarray._reconstruct", "numpy._core.multiarray._reconstruct", "numpy.ndarray")


def _numpy_safe_globals() -> list:
    import numpy as np

    found = [np.dtype, np.ndarray]
    for mod in ("numpy.core.multiarray", "numpy._core.multiarray"):
        with contextlib.suppress(Exception):
            import importlib

            m = importlib.import_module(mod)
            found += [m.scalar, m._reconstruct]
    found += [type(np.dtype(t)) for t in ("float32", "float64", "int64", "int32", "bool", "uint8")]
    return found


def read_torch_file(path: Path) -> object:
    """`torch.load(path, weights_only=True)` on CPU; CheckpointError with a one-line reason."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"checkpoint {path} not found")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        unsafe: list[str] = []
        with contextlib.suppress(Exception):  # zip-format files only
            unsafe = list(torch.serialization.get_unsafe_globals_in_checkpoint(str(path)))
        if not unsafe:  # legacy (PyTorch < 1.6) files: the unpickler names the first global
            unsafe = re.findall(r"GLOBAL ([\w.]+)", str(exc))[:1]
        if unsafe and all(u in _NUMPY_GLOBALS or u.startswith("numpy.dtypes.") for u in unsafe):
            if not hasattr(torch.serialization, "safe_globals"):  # torch < 2.5: process-wide allow-list
                torch.serialization.add_safe_globals(_numpy_safe_globals())
            ctx = getattr(torch.serialization, "safe_globals", lambda _: contextlib.nullcontext())
            with ctx(_numpy_safe_globals()):
                try:
                    return torch.load(path, map_location="cpu", weights_only=True)
                except Exception as exc2:  # noqa: BLE001 - reported as one line
                    raise CheckpointError(f"{path} cannot be read safely: {str(exc2).splitlines()[0]}") from None
        if not unsafe:  # no global named at all: garbage, not a dangerous pickle
            raise CheckpointError(
                f"{path} is not a readable PyTorch checkpoint (truncated or corrupt?): {str(exc).splitlines()[0][:120]}"
            ) from None
        what = f" (it needs {few(unsafe)})"
        raise CheckpointError(
            f"{path} contains pickled objects other than tensors{what}; bdmm only loads checkpoints with "
            "torch.load(weights_only=True) and refuses to run arbitrary pickled code"
        ) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError, IndexError, KeyError) as exc:
        detail = str(exc).splitlines()[0].split(". ")[0] if str(exc) else type(exc).__name__
        raise CheckpointError(f"{path} is not a readable PyTorch checkpoint (truncated or corrupt?): {detail}") from None


def read_weights_file(path: str | Path) -> object:
    """A `.safetensors` file as {key: tensor}, anything else through `read_torch_file`."""
    path = Path(path)
    if path.suffix.lower() != ".safetensors":
        return read_torch_file(path)
    if not path.is_file():
        raise InputError(f"checkpoint {path} not found")
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path} is not a valid safetensors file: {str(exc).splitlines()[0][:120]}") from None
