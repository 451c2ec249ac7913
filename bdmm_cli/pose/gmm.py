"""SMPLify's GMM pose prior (``gmm_08.pkl``): safe reading, installation, the prior term.

The authors' file (``docs/smplify.md`` section 4) is a Python pickle (latin1) of a
dict with ``means`` (8, 69), ``covars`` (8, 69, 69) and ``weights`` (8,): a Gaussian
mixture over the 69-D SMPL body pose (23 joints x 3, no global orientation). It is read
with :class:`bdmm_cli.body.smpl_file.SafeUnpickler` (numpy arrays only; any other global
is refused, so a file cannot run code) and installed once as ``.npz`` (read back with
``allow_pickle=False``).

Where it is looked for (:func:`find_gmm_prior`): the installed copy
(:func:`installed_gmm_path`, written by ``bdmm setup`` or :func:`install_gmm_prior`), then a
cached copy of the weights registry entry ``smplify-gmm``.

The prior (:class:`MaxMixturePrior`), exactly as the authors' code evaluates it:

    P_k      = inverse(float32 covariance k), inverted in float32
    sqrtdet_k = sqrt(det Sigma_k) of the covariances as stored
    c_k      = w_k / ((2 pi)^(69/2) sqrtdet_k / min_m sqrtdet_m)    (float64, then float32)
    E(theta) = min_k [ 0.5 (theta - mu_k)^T P_k (theta - mu_k) - ln c_k ]   (ln in float32)

i.e. the best component's negative log-likelihood up to a constant; the gradient flows
through that component only.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from bdmm_cli.errors import InputError, MissingResourceError

POSE_DIM = 69
GMM_REGISTRY_NAME = "smplify-gmm"
GMM_FILE_NAME = "gmm_08.pkl"
GMM_KEYS = ("means", "covars", "weights")

MISSING_GMM_MESSAGE = (
    "SMPLify's GMM pose prior (gmm_08.pkl, in the authors' SMPLDataset checkpoints) is not installed: "
    "run `bdmm setup --from ARCHIVE_OR_FOLDER` with the authors' archive"
)


def installed_gmm_path() -> Path:
    """Where the converted prior is installed (by ``bdmm setup`` and :func:`install_gmm_prior`):
    beside the other weights ``bdmm setup`` installs (``hub.installed.installed_root()``)."""
    from bdmm_cli.hub.installed import installed_root

    return installed_root() / GMM_REGISTRY_NAME / "gmm_08.npz"


def save_gmm_npz(gmm: dict[str, np.ndarray], path: str | Path, source_sha256: str, source_name: str) -> None:
    """Write a validated prior (``read_gmm_file``) as an uncompressed ``.npz`` (no pickle),
    with the sha256 and name of the file it came from."""
    with open(path, "wb") as fh:
        np.savez(fh, **gmm, source_sha256=np.asarray(source_sha256), source_name=np.asarray(source_name))


def validate_gmm(raw: dict, source: str = "GMM prior") -> dict[str, np.ndarray]:
    """Check the authors' layout; returns ``means`` (K, 69), ``covars`` (K, 69, 69),
    ``weights`` (K,) with their stored dtypes (InputError otherwise)."""
    if not isinstance(raw, dict):
        raise InputError(f"{source} does not hold a GMM (a dict with {', '.join(GMM_KEYS)})")
    missing = [k for k in GMM_KEYS if k not in raw]
    if missing:
        raise InputError(f"{source} is not SMPLify's GMM prior: missing {', '.join(missing)}")
    out = {}
    for key in GMM_KEYS:
        arr = np.asarray(raw[key])
        if arr.dtype.kind != "f":
            raise InputError(f"{source}: {key} is not a floating-point array ({arr.dtype})")
        out[key] = arr
    k = out["weights"].shape[0] if out["weights"].ndim == 1 else -1
    shapes = {"means": (k, POSE_DIM), "covars": (k, POSE_DIM, POSE_DIM), "weights": (k,)}
    for key, want in shapes.items():
        if out[key].shape != want or k < 1:
            raise InputError(f"{source}: {key} has shape {out[key].shape}, expected {want} (K components)")
        if not np.all(np.isfinite(out[key])):
            raise InputError(f"{source}: {key} holds NaN or infinite values")
    if np.any(out["weights"] <= 0):
        raise InputError(f"{source}: mixture weights must be positive")
    cov = out["covars"].astype(np.float64)
    if not np.allclose(cov, np.swapaxes(cov, 1, 2), rtol=1e-5, atol=1e-8):
        raise InputError(f"{source}: covariances are not symmetric")
    if np.any(np.linalg.eigvalsh(cov) <= 0):
        raise InputError(f"{source}: covariances are not positive definite")
    return out


def read_gmm_file(path: str | Path) -> dict[str, np.ndarray]:
    """Read ``gmm_08.pkl`` (the authors' pickle, read without running code) or our ``.npz``."""
    from bdmm_cli.body.smpl_file import safe_unpickle

    path = Path(path).expanduser()
    if not path.is_file():
        raise InputError(f"GMM prior file {path} does not exist")
    data = path.read_bytes()
    if data[:2] == b"PK":
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as z:
                raw = {k: z[k] for k in z.files if k in GMM_KEYS}
        except (ValueError, OSError) as exc:
            raise InputError(f"{path} is not a readable .npz GMM prior ({exc})") from None
    else:
        raw = safe_unpickle(data, path, "GMM prior")
        if isinstance(raw, dict):
            raw = {k: v for k, v in raw.items() if isinstance(k, str)}
    return validate_gmm(raw, source=str(path))


def install_gmm_prior(source: str | Path, force: bool = False) -> tuple[Path, bool]:
    """Validate ``gmm_08.pkl`` and install it as :func:`installed_gmm_path` (atomic write).

    Returns (installed path, changed). The same file again is a no-op; replacing a
    different installed prior needs ``force``.
    """
    from bdmm_cli.fileio import install_converted

    source = Path(source).expanduser()
    gmm = read_gmm_file(source)
    return install_converted(source, installed_gmm_path(), "a GMM prior", lambda tmp, digest: save_gmm_npz(
        gmm, tmp, digest, source.name), force)


def find_gmm_prior() -> Path | None:
    """The installed prior, else a cached copy of the registry entry ``smplify-gmm``, else None.

    Never touches the network.
    """
    installed = installed_gmm_path()
    if installed.is_file():
        return installed
    try:
        from bdmm_cli.hub.download import cached_path

        return cached_path(GMM_REGISTRY_NAME)
    except (MissingResourceError, InputError, OSError, ValueError, ImportError):
        return None


def load_gmm_prior(path: str | Path | None = None, device: str | torch.device = "cpu") -> "MaxMixturePrior":
    """The prior from `path`, or from :func:`find_gmm_prior` (MissingResourceError if none)."""
    if path is None:
        path = find_gmm_prior()
        if path is None:
            raise MissingResourceError(MISSING_GMM_MESSAGE)
    return MaxMixturePrior(read_gmm_file(path)).to(device)


def gmm_constants(gmm: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(means float32 (K, 69), precisions float32 (K, 69, 69), c_k float32 (K,)), computed as
    the authors' code does (see the module docstring)."""
    means = np.asarray(gmm["means"], dtype=np.float32)
    precisions = np.linalg.inv(np.asarray(gmm["covars"]).astype(np.float32))
    sqrtdets = np.sqrt(np.linalg.det(np.asarray(gmm["covars"])))
    if not np.all(np.isfinite(sqrtdets)) or np.any(sqrtdets <= 0):
        raise InputError("GMM prior: a covariance determinant is zero or not finite")
    const = (2 * math.pi) ** (POSE_DIM / 2.0)
    c = (np.asarray(gmm["weights"], dtype=np.float64) / (const * (sqrtdets / sqrtdets.min()))).astype(np.float32)
    if np.any(c <= 0):
        raise InputError("GMM prior: a mixture constant underflows float32")
    return means, precisions.astype(np.float32), c


class MaxMixturePrior(nn.Module):
    """E(theta) = min_k [0.5 (theta - mu_k)^T P_k (theta - mu_k) - ln c_k] (module docstring).

    Buffers: means (K, 69), precisions (K, 69, 69), nll_weights (K,) = c_k, all float32.
    """

    def __init__(self, gmm: dict[str, np.ndarray]) -> None:
        super().__init__()
        means, precisions, c = gmm_constants(gmm)
        self.register_buffer("means", torch.from_numpy(means), persistent=False)
        self.register_buffer("precisions", torch.from_numpy(precisions), persistent=False)
        self.register_buffer("nll_weights", torch.from_numpy(c), persistent=False)

    @property
    def num_components(self) -> int:
        return int(self.means.shape[0])

    def forward(self, body_pose: Tensor) -> Tensor:
        """(B, 69) body pose -> (B,) prior energies."""
        diff = body_pose[:, None, :] - self.means                       # (B, K, 69)
        quad = torch.einsum("bki,kij,bkj->bk", diff, self.precisions, diff)
        nll = 0.5 * quad - torch.log(self.nll_weights)
        return nll.min(dim=1).values


__all__ = [
    "GMM_FILE_NAME",
    "GMM_KEYS",
    "GMM_REGISTRY_NAME",
    "MISSING_GMM_MESSAGE",
    "MaxMixturePrior",
    "find_gmm_prior",
    "gmm_constants",
    "install_gmm_prior",
    "installed_gmm_path",
    "load_gmm_prior",
    "read_gmm_file",
    "validate_gmm",
]
