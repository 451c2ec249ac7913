"""Checkpoint files read safely, and strict state-dict layout checks, shared by every loader.

- `read_torch_file` / `read_weights_file`: `torch.load(weights_only=True)` (tensors, plain
  containers and numbers; numpy scalars and arrays, which old checkpoints store, are
  allow-listed explicitly) or safetensors; anything else is refused with a one-line
  CheckpointError, and no pickled code ever runs.
- `check_layout`: compare a state dict's keys and shapes with what a module expects; a
  CheckpointError names the missing, unexpected and misshaped keys (a few, then a count).
- `read_checkpoint_file`: any weights file or folder read once into a `Checkpoint` (one
  state dict: `flatten_state_dict` unwraps "model"/"state_dict" entries and strips
  `module.`); `write_folder` writes our folder format.
- `load_strict`: the one load of every network's weights file (G, D, D_V, SPIN, OpenPose,
  VGG19, Inception and AlexNet; not I3D, a TorchScript program, nor a training run's
  resume, which restores the modules that wrote it): check the state dict against the
  network (built on the meta device: nothing allocated until the check passed), then load
  it strictly.
- `detect_kind`: which network an authors' state dict holds (the key signatures of the one
  table of kinds, `bdmm_cli.kinds`).
"""

from __future__ import annotations

import contextlib
import json
import pickle
import re
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch

from bdmm_cli.errors import CheckpointError, InputError

_SHOW = 5


def few(items: list[str]) -> str:
    """The first few items, comma-separated, and how many more there are."""
    head = ", ".join(items[:_SHOW])
    return head + (f", ... ({len(items) - _SHOW} more)" if len(items) > _SHOW else "")


def shape_of(value) -> tuple[int, ...] | None:
    """The shape of a tensor or array (None for anything else, e.g. a missing entry)."""
    shape = getattr(value, "shape", None)
    return tuple(shape) if shape is not None else None


def check_layout(found: Mapping[str, object], expected: Mapping[str, object], message: str) -> None:
    """Raise CheckpointError(`message: ...`) unless `found` has exactly `expected`'s keys and shapes.

    Args:
        found: the checkpoint's {key: tensor or array}.
        expected: {key: tensor, array or shape tuple} of the module it should fit.
        message: the start of the error, e.g. "latest_net_G.pth does not fit a BDMM generator".
    """
    want = {k: (tuple(v) if isinstance(v, (tuple, list, torch.Size)) else shape_of(v)) for k, v in expected.items()}
    missing = [k for k in want if k not in found]
    unexpected = [k for k in found if k not in want]
    misshaped = [f"{k} (file {shape_of(found[k])}, expected {want[k]})"
                 for k in want if k in found and shape_of(found[k]) != want[k]]
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


# --- one state dict per file ---------------------------------------------------------------
#
# Our folder format (written by `bdmm weights import`, `bdmm setup` and training's release
# export): `model.safetensors` with the authors' key names, and `config.json`
# {"bdmm_format": 1, "kind": ..., <config fields>, "provenance": {...}}, whose content is also
# embedded in the safetensors metadata (key "bdmm_config") so the weights file alone is enough.

FORMAT_VERSION = 1
WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"
_WRAPPERS = ("model", "state_dict", "model_state_dict")
_PREFIX = "module."


def flatten_state_dict(obj: object, source: str = "checkpoint") -> dict[str, torch.Tensor]:
    """The one {key: tensor} inside a loaded checkpoint.

    The object itself, or its "model" / "state_dict" / "model_state_dict" entry (SPIN's
    model_checkpoint.pt keeps the weights under "model"); numpy arrays become tensors; a
    DataParallel ``module.`` prefix is stripped. CheckpointError when it is no such mapping.
    """
    import numpy as np

    if isinstance(obj, Mapping):
        for key in _WRAPPERS:
            inner = obj.get(key)
            if isinstance(inner, Mapping) and inner:
                obj = inner
                break
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{source} is not a state dict (got {type(obj).__name__})")
    out: dict[str, torch.Tensor] = {}
    for key, value in obj.items():
        if not isinstance(key, str):
            raise CheckpointError(f"{source} is not a state dict of tensors (key {key!r})")
        if isinstance(value, np.ndarray | np.generic):
            value = torch.from_numpy(np.ascontiguousarray(value))
        if not isinstance(value, torch.Tensor):
            raise CheckpointError(f"{source} is not a state dict of tensors (entry {key!r}: {type(value).__name__})")
        name = key[len(_PREFIX):] if key.startswith(_PREFIX) else key
        if name in out:
            raise CheckpointError(f"{source} has key {name!r} twice (with and without {_PREFIX!r})")
        out[name] = value
    return out


@dataclass(frozen=True)
class Checkpoint:
    """A state dict with what it is.

    Fields:
        state_dict: {authors' key: tensor} (no `module.` prefix), CPU tensors.
        kind: a kind of `bdmm_cli.kinds.KINDS` ("generator", "spin", ...), or "" when
            the file does not say (an authors' `.pth`).
        config: the network config's fields ({} when the layout is fixed or not known).
        provenance: where it came from (free-form, JSON-serialisable).
    """

    state_dict: dict[str, torch.Tensor]
    kind: str = ""
    config: dict = field(default_factory=dict)
    provenance: dict = field(default_factory=dict)

    def config_json(self) -> dict:
        return {"bdmm_format": FORMAT_VERSION, "kind": self.kind, **self.config, "provenance": self.provenance}


def _read_json(path: Path) -> dict:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path} is not valid JSON: {exc}") from None


def _from_config_json(data: object, source: str) -> tuple[str, dict, dict]:
    if not isinstance(data, dict) or "kind" not in data:
        raise CheckpointError(f"{source}: config has no 'kind'")
    version = data.get("bdmm_format", FORMAT_VERSION)
    if version != FORMAT_VERSION:
        raise CheckpointError(f"{source}: unsupported bdmm_format {version!r} (this bdmm reads {FORMAT_VERSION})")
    provenance = data.get("provenance", {})
    config = {k: v for k, v in data.items() if k not in ("bdmm_format", "kind", "provenance")}
    return str(data["kind"]), config, provenance


def _read_safetensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            meta = f.metadata() or {}
            sd = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path} is not a valid safetensors file (truncated or corrupt?): {_reason(exc)}") from None
    return sd, meta


def read_checkpoint_file(path: str | Path) -> Checkpoint:
    """Read a weights file or folder once, safely, into a :class:`Checkpoint`.

    - a folder in our format (model.safetensors + config.json; config.json wins);
    - a `.safetensors` file (its embedded config, or a config.json beside it, or none);
    - anything else: a pickled PyTorch checkpoint (the authors' `latest_net_*.pth`, SPIN's
      `model_checkpoint.pt`, BDMM's `spin_ckpt.pth`, `openpose_body25.pth`) read with
      `torch.load(weights_only=True)` and flattened by :func:`flatten_state_dict`
      (kind "" : the caller knows or detects what it is).
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise InputError(f"checkpoint {path} not found")
    if path.is_dir():
        weights = path / WEIGHTS_NAME
        if not weights.is_file():
            raise CheckpointError(f"{path} has no {WEIGHTS_NAME} (expected a folder written by `bdmm weights import`)")
        path = weights
    if path.suffix.lower() != ".safetensors":
        return Checkpoint(flatten_state_dict(read_torch_file(path), str(path)), "", {}, {"source_file": path.name})
    sd, meta = _read_safetensors(path)
    config_json = path.parent / CONFIG_NAME
    if config_json.is_file():
        data = _read_json(config_json)
    elif "bdmm_config" in meta:
        try:
            data = json.loads(meta["bdmm_config"])
        except json.JSONDecodeError:
            raise CheckpointError(f"{path}: its embedded bdmm_config is not valid JSON") from None
    else:
        return Checkpoint(flatten_state_dict(sd, str(path)), "", {}, {"source_file": path.name})
    kind, config, provenance = _from_config_json(data, str(path))
    return Checkpoint(flatten_state_dict(sd, str(path)), kind, config, provenance)


def write_folder(ckpt: Checkpoint, folder: str | Path, force: bool = False) -> Path:
    """Write `ckpt` in our format to `folder`, atomically: everything goes to a temporary
    folder next to it that is renamed into place at the end. An existing non-empty folder
    is an error unless `force` (then it is replaced only after the new one is complete)."""
    from safetensors.torch import save_file

    from bdmm_cli.fileio import atomic_output_dir

    folder = Path(folder).expanduser()
    config = ckpt.config_json()
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in ckpt.state_dict.items()}
    with atomic_output_dir(folder, force) as tmp:
        save_file(tensors, str(tmp / WEIGHTS_NAME), metadata={"bdmm_config": json.dumps(config, sort_keys=True)})
        (tmp / CONFIG_NAME).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return folder


def check_weights(sd: Mapping[str, torch.Tensor], expected: torch.nn.Module | Mapping, message: str) -> None:
    """The one strict check: `sd` has exactly the keys and shapes of `expected` (a module,
    which may live on the meta device: only shapes are read; or {key: shape}) and float
    tensors wherever weights belong (BatchNorm's integer `num_batches_tracked` counters excepted)."""
    check_layout(sd, expected.state_dict() if isinstance(expected, torch.nn.Module) else expected, message)
    nonfloat = [k for k, v in sd.items() if not v.is_floating_point() and not k.endswith("num_batches_tracked")]
    if nonfloat:
        raise CheckpointError(f"{message}: non-float tensors where weights belong: {few(nonfloat)}")


def load_strict(module: torch.nn.Module, sd: Mapping[str, torch.Tensor], message: str) -> torch.nn.Module:
    """Check `sd` against `module` once (:func:`check_weights`) and load it (strict).

    A module built on the meta device is materialised on the CPU without its random
    initialisation when the state dict covers every parameter and buffer it holds (the
    usual case); a module with non-persistent buffers must be built on a real device.
    Values are copied and cast to the module's dtypes. Returns the (CPU) module.
    """
    check_weights(sd, module, message)
    if any(t.is_meta for t in (*module.parameters(), *module.buffers())):
        held = {n for n, _ in module.named_parameters()} | {n for n, _ in module.named_buffers()}
        if not held <= set(module.state_dict()):
            raise CheckpointError(f"{type(module).__name__} has non-persistent buffers: build it on a real device")
        module = module.to_empty(device="cpu")
    module.load_state_dict(dict(sd), strict=True)
    return module


def detect_kind(sd: Mapping[str, torch.Tensor], source: str = "checkpoint") -> str:
    """What an authors' state dict holds, from its key names alone: the first kind of the one
    table (`bdmm_cli.kinds.TABLE`) whose key signature matches; CheckpointError otherwise."""
    from bdmm_cli.kinds import IMPORTABLE, detect, title

    found = detect(sd)
    if found is None:
        names = ", ".join(title(k) for k in IMPORTABLE)
        raise CheckpointError(f"{source} is not a BDMM generator, discriminator or SPIN checkpoint, nor any "
                              f"network bdmm knows ({names}); its keys start with {few(sorted(sd))}")
    return found
