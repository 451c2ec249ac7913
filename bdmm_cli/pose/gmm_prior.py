"""SMPLify's GMM pose prior (`gmm_08.pkl` of the authors' SMPLDataset release), read safely.

The file (official_smplify.md) is a latin-1 pickle of a dict with `means` (K, 69), `covars`
(K, 69, 69) and `weights` (K,), K = 8: a mixture over the 69 body-pose parameters (the
global orientation excluded). It is read with the SMPL reader's restricted unpickler
(`body.smpl_file.SafeUnpickler`: numpy arrays only, no code runs) and `bdmm setup`
installs it as an `.npz` (read back with `allow_pickle=False`).

    prior = read_gmm_prior(installed_path("smplify-gmm"))   # .pkl or .npz
"""

from __future__ import annotations

import io
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bdmm_cli.body.smpl_file import SafeUnpickler
from bdmm_cli.errors import InputError

POSE_DIM = 69


@dataclass(frozen=True)
class GMMPrior:
    """A Gaussian mixture over body poses.

    Fields:
        means: (K, 69) float64.
        covars: (K, 69, 69) float64, symmetric positive definite.
        weights: (K,) float64, positive, summing to 1 (within 1e-3).
    """

    means: np.ndarray
    covars: np.ndarray
    weights: np.ndarray

    def arrays(self) -> dict[str, np.ndarray]:
        return {"means": self.means, "covars": self.covars, "weights": self.weights}


def _validate(data: object, source: str) -> GMMPrior:
    if not isinstance(data, dict) or not all(k in data for k in ("means", "covars", "weights")):
        raise InputError(f"{source} is not SMPLify's GMM prior (expected a dict with means, covars, weights)")
    try:
        means, covars, weights = (np.asarray(data[k], dtype=np.float64) for k in ("means", "covars", "weights"))
    except (TypeError, ValueError) as exc:
        raise InputError(f"{source}: GMM prior entries are not numeric arrays ({exc})") from None
    k = means.shape[0] if means.ndim == 2 else -1
    if means.shape != (k, POSE_DIM) or covars.shape != (k, POSE_DIM, POSE_DIM) or weights.shape != (k,) or k < 1:
        raise InputError(f"{source}: GMM prior shapes means {means.shape}, covars {covars.shape}, weights "
                         f"{weights.shape}; expected (K, {POSE_DIM}), (K, {POSE_DIM}, {POSE_DIM}), (K,)")
    if not (np.isfinite(means).all() and np.isfinite(covars).all() and np.isfinite(weights).all()):
        raise InputError(f"{source}: GMM prior holds non-finite values")
    if (weights <= 0).any() or abs(weights.sum() - 1.0) > 1e-3:
        raise InputError(f"{source}: GMM prior weights must be positive and sum to 1 (sum {weights.sum():.4f})")
    try:
        np.linalg.cholesky(covars)
    except np.linalg.LinAlgError:
        raise InputError(f"{source}: GMM prior covariances are not positive definite") from None
    return GMMPrior(means, covars, weights)


def read_gmm_prior(path: str | Path) -> GMMPrior:
    """`gmm_08.pkl` (restricted unpickler) or our `.npz` -> a checked :class:`GMMPrior`."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"GMM prior {path} not found")
    if path.suffix.lower() == ".npz":
        try:
            with np.load(path, allow_pickle=False) as z:
                data = {k: z[k] for k in z.files}
        except (ValueError, OSError, zipfile.BadZipFile, EOFError) as exc:
            raise InputError(f"{path} is not a readable .npz GMM prior ({exc})") from None
        return _validate(data, str(path))
    try:
        data = SafeUnpickler(io.BytesIO(path.read_bytes()), encoding="latin1").load()
    except pickle.UnpicklingError as exc:
        raise InputError(f"{path} is not a usable GMM prior pickle: {exc}") from None
    except (EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError, ImportError) as exc:
        raise InputError(f"{path} is not a readable GMM prior pickle ({type(exc).__name__}: {exc})") from None
    return _validate(data, str(path))


def save_gmm_prior(prior: GMMPrior, path: Path) -> Path:
    """Write `prior` as an uncompressed `.npz` (no pickle) at `path`."""
    with open(path, "wb") as f:
        np.savez(f, **prior.arrays())
    return path
