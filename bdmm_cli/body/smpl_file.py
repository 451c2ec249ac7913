"""Reading SMPL model files without chumpy and without running pickled code.

Accepted inputs:
- HMR's `smpl_model.pkl` (neutral model with `cocoplus_regressor`, used by the authors),
- the standard `SMPL_{NEUTRAL,MALE,FEMALE}.pkl` / `basicModel_*.pkl` files,
- `.npz` files with the same keys (smplx's format, and ours).

The pickles were written with Python 2 and hold chumpy arrays and scipy sparse matrices.
:class:`SafeUnpickler` resolves only a short allow-list of globals: numpy array
reconstruction, chumpy classes (mapped to inert stand-ins whose state is read as plain
numpy arrays), and scipy sparse matrix classes (rebuilt from their index arrays). Any
other global (``os.system``, ``builtins.eval``, ...) is refused, so a malicious file cannot
execute code. chumpy itself is never imported.

The converted model is a dict of numpy arrays (:data:`MODEL_KEYS`), saved with
:func:`save_model_npz` (``np.savez``, no pickle) and read back with
``np.load(allow_pickle=False)``.
"""

from __future__ import annotations

import io
import pickle
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse

from bdmm_cli.errors import InputError

__all__ = [
    "MODEL_KEYS",
    "NUM_JOINTS",
    "NUM_BETAS",
    "SafeUnpickler",
    "read_smpl_file",
    "save_model_npz",
    "load_model_npz",
    "validate_model",
]

NUM_JOINTS = 24
NUM_BETAS = 10
FORMAT_VERSION = 1

#: Arrays of a converted model: name -> (shape with V = vertices, F = faces, dtype).
MODEL_KEYS: dict[str, tuple[tuple, Any]] = {
    "v_template": (("V", 3), np.float64),
    "shapedirs": (("V", 3, NUM_BETAS), np.float64),
    "posedirs": (("V", 3, 9 * (NUM_JOINTS - 1)), np.float64),
    "J_regressor": ((NUM_JOINTS, "V"), np.float64),
    "weights": (("V", NUM_JOINTS), np.float64),
    "kintree_table": ((2, NUM_JOINTS), np.int64),
    "f": (("F", 3), np.int64),
}
OPTIONAL_KEYS = ("cocoplus_regressor",)


class _InertState:
    """Base of the unpickler's stand-ins: constructed with anything, keeps the pickled state, runs nothing."""

    state: Any = None

    def __init__(self, *args, **kwargs) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        self.state = state


class _ChumpyStub(_InertState):
    """Inert stand-in for a pickled chumpy object: keeps its state, runs nothing."""

    module = "chumpy"
    name = "Ch"

    def to_array(self) -> np.ndarray:
        state = self.state
        if isinstance(state, tuple) and len(state) == 2 and isinstance(state[0], dict):
            state = state[0]
        if isinstance(state, dict) and "x" in state:
            return np.asarray(_plain(state["x"]))
        raise InputError(
            f"the model file stores a computed chumpy expression ({self.module}.{self.name}) "
            "instead of an array; re-export it as plain arrays"
        )


class _SparseStub(_InertState):
    """Stand-in for a pickled scipy sparse matrix, rebuilt from its index arrays."""

    fmt = "csc"

    def to_sparse(self):
        st = self.state
        if isinstance(st, tuple) and len(st) == 2 and isinstance(st[0], dict):
            st = st[0]
        if not isinstance(st, dict):
            raise InputError("the model file holds a sparse matrix in an unknown layout")
        shape = st.get("_shape", st.get("shape"))
        try:
            shape = tuple(int(s) for s in shape)
            if self.fmt in ("csc", "csr"):
                cls = scipy.sparse.csc_matrix if self.fmt == "csc" else scipy.sparse.csr_matrix
                return cls((np.asarray(st["data"]), np.asarray(st["indices"]), np.asarray(st["indptr"])), shape=shape)
            if self.fmt == "coo":
                rows = st.get("row", st.get("coords", (None, None))[0])
                cols = st.get("col", st.get("coords", (None, None))[1])
                return scipy.sparse.coo_matrix((np.asarray(st["data"]), (np.asarray(rows), np.asarray(cols))), shape=shape)
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"the model file holds a corrupt sparse matrix ({exc})") from exc
        raise InputError(f"the model file holds an unsupported sparse format {self.fmt}")


def _sparse_class(fmt: str) -> type:
    return type(f"{fmt}_matrix_stub", (_SparseStub,), {"fmt": fmt})


def _chumpy_class(module: str, name: str) -> type:
    return type(f"chumpy_{name}", (_ChumpyStub,), {"module": module, "name": name})


def _safe_reconstructor(cls, base, state):
    """copy_reg._reconstructor (Python 2 pickles, protocols 0-1), restricted to our stand-ins."""
    if isinstance(cls, type) and issubclass(cls, (_ChumpyStub, _SparseStub)):
        return cls()
    raise pickle.UnpicklingError(f"refusing to reconstruct {cls!r}")


def _latin1_bytes(text: str, encoding: str = "latin1") -> bytes:
    """What Python 3 pickles (protocol < 3) use for bytes: _codecs.encode(text, 'latin1')."""
    if not isinstance(text, str) or encoding.replace("-", "").lower() != "latin1":
        raise pickle.UnpicklingError(f"refusing _codecs.encode with encoding {encoding!r}")
    return text.encode("latin1")


def _frombuffer(buf, dtype, shape, order):
    """numpy's protocol-5 array reconstructor, rewritten so no numpy internals run."""
    if not isinstance(dtype, np.dtype) or dtype.hasobject:
        raise pickle.UnpicklingError("refusing an array of Python objects")
    arr = np.frombuffer(bytes(buf), dtype=dtype)
    return arr.reshape(shape, order="F" if order == "F" else "C").copy()


def _numpy_global(module: str, name: str):
    if (module, name) == ("numpy", "ndarray"):
        return np.ndarray
    if (module, name) == ("numpy", "dtype"):
        return np.dtype
    if module in ("numpy.core.multiarray", "numpy._core.multiarray") and name in ("_reconstruct", "scalar"):
        try:
            from numpy._core import multiarray as ma  # numpy >= 2
        except ImportError:  # pragma: no cover - numpy 1.x
            from numpy.core import multiarray as ma
        return getattr(ma, name)
    if module in ("numpy.core.numeric", "numpy._core.numeric") and name == "_frombuffer":
        return _frombuffer  # protocol-5 pickles of numpy arrays
    if module == "numpy" and name in ("float64", "float32", "int64", "int32", "uint32", "bool_"):
        return getattr(np, name)
    return None


class SafeUnpickler(pickle.Unpickler):
    """An unpickler that resolves only numpy, chumpy (as stand-ins) and scipy sparse globals."""

    def find_class(self, module: str, name: str):
        g = _numpy_global(module, name)
        if g is not None:
            return g
        if module.split(".")[0] == "chumpy":
            return _chumpy_class(module, name)
        if module.startswith("scipy.sparse"):
            for fmt in ("csc", "csr", "coo"):
                if name == f"{fmt}_matrix" or name == f"{fmt}_array":
                    return _sparse_class(fmt)
        if module == "_codecs" and name == "encode":
            return _latin1_bytes
        if module in ("copy_reg", "copyreg") and name == "_reconstructor":
            return _safe_reconstructor
        if module in ("__builtin__", "builtins") and name == "object":
            return object
        if module in ("__builtin__", "builtins") and name in ("set", "frozenset", "dict", "list", "tuple"):
            return {"set": set, "frozenset": frozenset, "dict": dict, "list": list, "tuple": tuple}[name]
        raise pickle.UnpicklingError(f"refusing to load global {module}.{name} from a model file")


def _plain(value: Any) -> Any:
    """Turn stand-ins into numpy / scipy objects."""
    if isinstance(value, _ChumpyStub):
        return value.to_array()
    if isinstance(value, _SparseStub):
        return value.to_sparse()
    return value


def _dense(value: Any) -> np.ndarray:
    value = _plain(value)
    if scipy.sparse.issparse(value):
        return np.asarray(value.toarray())
    return np.asarray(value)


def safe_unpickle(data: bytes, path: Path, what: str) -> object:
    """Unpickle `data` (latin1, as the SMPL and SMPLify pickles need) with :class:`SafeUnpickler`;
    a refused global or a damaged pickle is one InputError naming `path` and `what` it should be."""
    try:
        return SafeUnpickler(io.BytesIO(data), encoding="latin1").load()
    except pickle.UnpicklingError as exc:
        raise InputError(f"{path} is not a usable {what} file: {exc}") from None
    except (EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError, ImportError) as exc:
        raise InputError(f"{path} is not a readable {what} pickle ({type(exc).__name__}: {exc})") from None


def _read_pickle(path: Path) -> dict:
    obj = safe_unpickle(path.read_bytes(), path, "SMPL model")
    if not isinstance(obj, dict):
        raise InputError(f"{path} does not hold an SMPL model (a dict of arrays)")
    return obj


def _read_npz(path: Path) -> dict:
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as exc:
        raise InputError(f"{path} is not a readable .npz SMPL model ({exc})") from exc


def validate_model(model: dict[str, np.ndarray], source: str = "model") -> dict[str, np.ndarray]:
    """Check shapes and dtypes; returns the normalised dict (raises InputError)."""
    missing = [k for k in MODEL_KEYS if k not in model]
    if missing:
        raise InputError(f"{source} is not an SMPL model: missing {', '.join(missing)}")
    out: dict[str, np.ndarray] = {}
    nv = int(np.asarray(model["v_template"]).shape[0]) if np.ndim(model["v_template"]) == 2 else -1
    nf = int(np.asarray(model["f"]).shape[0]) if np.ndim(model["f"]) == 2 else -1
    dims = {"V": nv, "F": nf}
    for key, (shape, dtype) in MODEL_KEYS.items():
        arr = np.asarray(model[key])
        if key == "shapedirs" and arr.ndim == 3 and arr.shape[2] > NUM_BETAS:
            arr = arr[:, :, :NUM_BETAS]  # SMPL 1.1 ships 300 betas; the HMR vector has 10
        want = tuple(dims[s] if isinstance(s, str) else s for s in shape)
        if arr.shape != want or -1 in want:
            raise InputError(f"{source}: {key} has shape {arr.shape}, expected {want}")
        if not np.all(np.isfinite(arr)):
            raise InputError(f"{source}: {key} holds NaN or infinite values")
        out[key] = np.ascontiguousarray(arr.astype(dtype))
    if out["f"].min() < 0 or out["f"].max() >= nv:
        raise InputError(f"{source}: faces index vertices outside 0..{nv - 1}")
    parents = out["kintree_table"][0].copy()
    parents[0] = -1
    if any(not (0 <= parents[i] < i) for i in range(1, NUM_JOINTS)):
        raise InputError(f"{source}: kintree_table is not a tree in topological order")
    out["kintree_table"][0] = parents
    for key in OPTIONAL_KEYS:
        if key in model:
            arr = np.asarray(model[key], dtype=np.float64)
            if arr.ndim == 2 and arr.shape[1] == nv:
                out[key] = arr
    if "kind" in model:
        out["kind"] = np.asarray(str(np.asarray(model["kind"])))
    return out


def read_smpl_file(path: Path) -> dict[str, np.ndarray]:
    """Read an SMPL model (.pkl in HMR or standard layout, or .npz) as numpy arrays.

    Returns a dict with :data:`MODEL_KEYS` (dense float64 / int64 arrays, 10 betas,
    ``kintree_table[0, 0] = -1``) and ``cocoplus_regressor`` when present.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise InputError(f"SMPL model file {path} does not exist")
    with open(path, "rb") as fh:
        magic = fh.read(4)
    raw = _read_npz(path) if magic.startswith(b"PK") else _read_pickle(path)
    model: dict[str, Any] = {}
    for key, value in raw.items():
        if not isinstance(key, str):
            continue
        if key in MODEL_KEYS or key in OPTIONAL_KEYS or key == "kind":
            model[key] = _dense(value)
    if "kintree_table" in model:
        kt = np.asarray(model["kintree_table"]).astype(np.int64)
        kt[kt > np.iinfo(np.int32).max] = -1  # uint32(-1) of the original files
        model["kintree_table"] = kt
    return validate_model(model, source=str(path))


def save_model_npz(model: dict[str, np.ndarray], path: Path, extra: dict[str, np.ndarray] | None = None) -> Path:
    """Write a converted model with np.savez (no pickle). `path` is written as given.

    `extra` adds metadata arrays (numbers or strings, e.g. the source file's sha256).
    """
    arrays = {k: np.asarray(v) for k, v in model.items() if k in MODEL_KEYS or k in OPTIONAL_KEYS}
    arrays["kind"] = np.asarray(str(model.get("kind", "smpl")))
    arrays["format_version"] = np.asarray(FORMAT_VERSION)
    for key, value in (extra or {}).items():
        arrays[key] = np.asarray(value)
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)
    return Path(path)


def load_model_npz(path: Path) -> dict[str, np.ndarray]:
    """Read a model written by :func:`save_model_npz` (or any .npz in SMPL layout)."""
    return read_smpl_file(path)
