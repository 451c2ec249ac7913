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


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _reason(exc: BaseException) -> str:
    """The first sentence of a library's error, whole (no ANSI codes, never cut mid-word)."""
    text = _ANSI.sub("", str(exc)).strip()
    if not text:
        return type(exc).__name__
    first = text.splitlines()[0].strip()
    return first.split(". ")[0].rstrip(".:; ")


def pickle_globals(path: Path) -> list[str]:
    """Every global (``module.name``) the pickles of a checkpoint reference, in order, found
    statically (``pickletools``: nothing is executed). Zip checkpoints: ``*/data.pkl``;
    legacy (PyTorch < 1.6) files: the pickles at the start of the file."""
    import io
    import pickletools

    def scan(stream) -> list[str]:
        found, strings = [], []
        for op, arg, _ in pickletools.genops(stream):
            if op.name in ("GLOBAL", "INST") and isinstance(arg, str):
                found.append(arg.replace(" ", ".", 1))
            elif op.name in ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE", "BINUNICODE8", "SHORT_BINSTRING",
                             "BINSTRING", "STRING"):
                strings.append(str(arg))
            elif op.name == "STACK_GLOBAL" and len(strings) >= 2:
                found.append(f"{strings[-2]}.{strings[-1]}")
        return found

    names: list[str] = []
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as z:
                for member in z.namelist():
                    if member.endswith("data.pkl"):
                        names += scan(io.BytesIO(z.read(member)))
        else:
            with open(path, "rb") as f:
                for _ in range(4):  # magic number, protocol, system info, the object
                    names += scan(f)
    except Exception:  # noqa: BLE001 - a damaged file: whatever was found so far
        pass
    py2 = {"__builtin__": "builtins", "copy_reg": "copyreg"}  # protocol-2 pickles name Python 2 modules
    names = [py2.get(n.split(".", 1)[0], n.split(".", 1)[0]) + n[len(n.split(".", 1)[0]):] for n in names]
    return list(dict.fromkeys(names))


def _allowed_globals() -> set[str]:
    allowed = set(_NUMPY_GLOBALS)
    with contextlib.suppress(Exception):
        from torch import _weights_only_unpickler

        allowed |= set(_weights_only_unpickler._get_allowed_globals())
    with contextlib.suppress(Exception):
        allowed |= {f"{g.__module__}.{g.__qualname__}" for g in torch.serialization.get_safe_globals()
                    if hasattr(g, "__qualname__")}
    return allowed


def refused_globals(path: Path) -> list[str]:
    """The globals of `path` that ``torch.load(weights_only=True)`` (plus the numpy scalars
    and arrays old checkpoints hold) does not allow: code bdmm will never run."""
    allowed = _allowed_globals()
    return [g for g in pickle_globals(path) if g not in allowed and not g.startswith("numpy.dtypes.")]


def _refusal(path: Path, refused: list[str]) -> CheckpointError:
    return CheckpointError(
        f"{path} contains pickled objects other than tensors: it references {', '.join(refused)}; bdmm loads "
        "checkpoints with torch.load(weights_only=True) and refuses to run pickled code, so this file "
        "cannot be used (ask its author for a safetensors or plain state-dict copy)"
    )


def read_torch_file(path: Path) -> object:
    """`torch.load(path, weights_only=True)` on CPU; CheckpointError with a one-line reason.

    A file that references globals other than tensors and plain data is refused, naming
    every such global (found statically, nothing runs); numpy scalars and arrays, which
    old checkpoints hold, are allowed explicitly.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"checkpoint {path} not found")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        refused = refused_globals(path)
        if refused:
            raise _refusal(path, refused) from None
        named = re.findall(r"GLOBAL ([\w.]+)", _ANSI.sub("", str(exc)))
        if named and all(u in _NUMPY_GLOBALS or u.startswith("numpy.dtypes.") for u in named):
            if not hasattr(torch.serialization, "safe_globals"):  # torch < 2.5: process-wide allow-list
                torch.serialization.add_safe_globals(_numpy_safe_globals())
            ctx = getattr(torch.serialization, "safe_globals", lambda _: contextlib.nullcontext())
            with ctx(_numpy_safe_globals()):
                try:
                    return torch.load(path, map_location="cpu", weights_only=True)
                except pickle.UnpicklingError as exc2:
                    more = re.findall(r"GLOBAL ([\w.]+)", _ANSI.sub("", str(exc2)))
                    raise _refusal(path, more or ["objects other than tensors"]) from None
                except Exception as exc2:  # noqa: BLE001 - reported as one line
                    raise CheckpointError(f"{path} is not a readable PyTorch checkpoint (truncated or corrupt?): "
                                          f"{_reason(exc2)}") from None
        if named:
            raise _refusal(path, named) from None
        raise CheckpointError(
            f"{path} is not a readable PyTorch checkpoint (truncated or corrupt?): {_reason(exc)}"
        ) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError, IndexError, KeyError) as exc:
        raise CheckpointError(f"{path} is not a readable PyTorch checkpoint (truncated or corrupt?): "
                              f"{_reason(exc)}") from None


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
        raise CheckpointError(f"{path} is not a valid safetensors file: {_reason(exc)}") from None
