"""The paper's training loop: config, data, losses, loop, checkpoints, distributed.

    from bdmm_cli.train import TrainConfig, load_config, train
    result = train(load_config(None, ["iterations=1000"], data="data/mine"), "runs/mine")

Modules: `config` (TrainConfig, TOML + overrides), `data` (clips, sampler, windows),
`losses` (VGG19, L1/perceptual/style/contextual, LSGAN), `init` (the authors' init),
`loop` (Trainer, train), `checkpoint` (full-state, atomic), `distributed` (torchrun).
Names are imported lazily, so `import bdmm_cli.train` does not import torch.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "TrainConfig": "bdmm_cli.train.config",
    "load_config": "bdmm_cli.train.config",
    "train": "bdmm_cli.train.loop",
    "Trainer": "bdmm_cli.train.loop",
    "TrainResult": "bdmm_cli.train.loop",
    "build_networks": "bdmm_cli.train.loop",
    "load_checkpoint": "bdmm_cli.train.checkpoint",
    "init_weights": "bdmm_cli.train.init",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'bdmm_cli.train' has no attribute {name!r}")
