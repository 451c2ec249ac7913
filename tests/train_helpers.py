"""Shared pieces of the train/dataset tests: a synthetic body model, generated data sets in
the official layout, and a tiny training config (same code, fewer channels, S = 128)."""

from __future__ import annotations

from pathlib import Path

import torch

from bdmm_cli.train.config import TrainConfig

TINY = dict(
    image_size=128, clip_len=6, window=6, batch_size=1, num_workers=0, iterations=2,
    model_ngf=4, model_img_f=16, disc_ndf=4, disc_img_f=8,
    vgg_weights="random", vgg_width_divisor=16,
    log_every=1, sample_every=0, checkpoint_every=1, tensorboard=False,
)


def make_body(folder: Path) -> Path:
    from bdmm_cli.body import write_synthetic_body_model

    return write_synthetic_body_model(Path(folder) / "synthetic_body.npz")


def make_dataset(root: Path, body: Path, num_videos: int = 2, num_frames: int = 8, **kw) -> Path:
    from bdmm_cli.dataset.synthetic import write_synthetic_dataset

    return write_synthetic_dataset(root, body, num_videos=num_videos, num_frames=num_frames, image_size=128, **kw)


def tiny_config(data: Path, body: Path, **overrides) -> TrainConfig:
    return TrainConfig(**{**TINY, "data": str(data), "body_model": str(body), **overrides})


def state_tensors(sd, prefix: str = "") -> dict[str, torch.Tensor]:
    """Flatten nested (optimizer) state dicts into {path: tensor}."""
    out: dict[str, torch.Tensor] = {}
    if isinstance(sd, torch.Tensor):
        out[prefix] = sd
    elif isinstance(sd, dict):
        for k, v in sd.items():
            out.update(state_tensors(v, f"{prefix}.{k}" if prefix else str(k)))
    elif isinstance(sd, (list, tuple)):
        for i, v in enumerate(sd):
            out.update(state_tensors(v, f"{prefix}.{i}"))
    return out
