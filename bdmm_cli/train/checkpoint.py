"""Full-state training checkpoints: everything needed to resume bit-exactly.

A checkpoint is one `torch.save` file holding only tensors and plain Python types
(dict, list, tuple, str, int, float, bool, None), so it loads with
`torch.load(weights_only=True)`:

    format      "bdmm-train"            version  CHECKPOINT_VERSION
    step        iterations done (also the data position: the sampler is a pure
                function of seed and step)
    config      TrainConfig as a dict
    G, D, D_V   state dicts;  G_ema  state dict or None
    opt_G, opt_D, scaler   optimiser / grad-scaler state dicts (scaler None off AMP fp16)
    rng         {"torch": ByteTensor, "cuda": [ByteTensor, ...]}
    world_size  number of processes that wrote it

Files are written atomically (temporary file + rename), so an interruption never leaves
a half-written checkpoint; a file that cannot be read or lacks a field raises
CheckpointError.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from bdmm_cli.errors import CheckpointError, InputError
from bdmm_cli.fileio import atomic_output

CHECKPOINT_FORMAT = "bdmm-train"
CHECKPOINT_VERSION = 1
REQUIRED_KEYS = ("format", "version", "step", "config", "G", "D", "D_V", "opt_G", "opt_D", "rng")
LATEST = "latest.pt"


def checkpoint_dir(run_dir: Path) -> Path:
    return Path(run_dir) / "checkpoints"


def latest_checkpoint(run_dir: Path) -> Path | None:
    """`<run_dir>/checkpoints/latest.pt` if it exists."""
    path = checkpoint_dir(run_dir) / LATEST
    return path if path.is_file() else None


def rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    state["cuda"] = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: Path, payload: dict[str, Any]) -> Path:
    """Write `payload` (plus format/version) atomically to `path`, replacing an older file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, **payload}
    missing = [k for k in REQUIRED_KEYS if k not in data]
    if missing:
        raise ValueError(f"checkpoint payload lacks {missing}")
    with atomic_output(path, force=True) as tmp:
        torch.save(data, tmp)
    return path


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a training checkpoint safely (`weights_only=True`); CheckpointError if unusable."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"checkpoint {path} does not exist")
    try:
        data = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - truncated zip, pickle error, foreign objects...
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"checkpoint {path} is corrupt or not a bdmm training checkpoint ({reason[:160]})") from None
    if not isinstance(data, dict) or data.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} is not a bdmm training checkpoint (no format {CHECKPOINT_FORMAT!r})")
    if data.get("version") != CHECKPOINT_VERSION:
        raise CheckpointError(f"checkpoint {path} has version {data.get('version')}, this bdmm reads {CHECKPOINT_VERSION}")
    missing = [k for k in REQUIRED_KEYS if k not in data]
    if missing:
        raise CheckpointError(f"checkpoint {path} lacks {', '.join(missing)}")
    return data
