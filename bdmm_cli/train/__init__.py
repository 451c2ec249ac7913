"""The paper's training loop: config, data, losses, loop, checkpoints, distributed.

    from bdmm_cli.train import TrainConfig, load_config, train
    result = train(load_config(None, ["iterations=1000"], data="data/mine"), "runs/mine")

Modules: `config` (TrainConfig, TOML + overrides), `data` (clips, sampler, windows),
`losses` (VGG19, L1/perceptual/style/contextual, LSGAN), `init` (the authors' init),
`loop` (Trainer, train), `checkpoint` (full-state, atomic), `distributed` (torchrun).
"""

from __future__ import annotations

from bdmm_cli.train.checkpoint import load_checkpoint
from bdmm_cli.train.config import TrainConfig, load_config
from bdmm_cli.train.init import init_weights
from bdmm_cli.train.loop import Trainer, TrainResult, build_networks, train

__all__ = ["TrainConfig", "TrainResult", "Trainer", "build_networks", "init_weights", "load_checkpoint", "load_config", "train"]
