"""The paper's training loop: config, data, losses, loop, checkpoints, distributed."""
