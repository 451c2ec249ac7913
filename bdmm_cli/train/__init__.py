"""The paper's training loop: config, data, losses, loop, checkpoints, distributed.

    from bdmm_cli.train import TrainConfig, load_config, train
    result = train(load_config(None, ["iterations=1000"], data="data/mine"), "runs/mine")

Modules: `config` (TrainConfig, TOML + overrides), `data` (clips, sampler, windows),
`losses` (VGG19, L1/perceptual/style/contextual, LSGAN), `init` (initialisations: each
layer's own by default, the authors' orthogonal gain 0.02 as `init=orthogonal`, see
docs/training_init.md), `monitor` (the warning when G has not learnt), `loop` (Trainer,
train), `checkpoint` (full-state, atomic), `distributed` (torchrun).
"""

from __future__ import annotations

from bdmm_cli.train.checkpoint import load_checkpoint
from bdmm_cli.train.config import TrainConfig, load_config
from bdmm_cli.train.init import init_weights, initialise
from bdmm_cli.train.loop import Trainer, TrainResult, build_networks, train

__all__ = ["TrainConfig", "TrainResult", "Trainer", "build_networks", "init_weights", "initialise", "load_checkpoint", "load_config", "train"]
