"""Weights: the registry in weights/, Hub downloads with verification, checkpoint import/export, loaders.

    from bdmm_cli.hub import load_generator, load_discriminators, load_pose_regressor, fetch, registry

- `registry`: the registry module (`registry.load_registry()`, entries, aliases).
- `fetch(name)`: registry entry -> verified local file (HF cache / pooch cache).
- `load_generator`, `load_discriminators`, `load_pose_regressor`: ready networks.
- `save_generator`, `save_discriminators`, `export_release`: our safetensors format / a Hub-ready folder.

Names are imported lazily, so `import bdmm_cli.hub` does not import torch.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "fetch": "bdmm_cli.hub.download",
    "cached_path": "bdmm_cli.hub.download",
    "load_generator": "bdmm_cli.hub.loading",
    "load_discriminators": "bdmm_cli.hub.loading",
    "load_pose_regressor": "bdmm_cli.hub.loading",
    "load_checkpoint": "bdmm_cli.hub.loading",
    "save_generator": "bdmm_cli.hub.loading",
    "save_discriminators": "bdmm_cli.hub.loading",
    "save_network": "bdmm_cli.hub.loading",
    "read_checkpoint": "bdmm_cli.hub.checkpoint",
    "write_folder": "bdmm_cli.hub.checkpoint",
    "Checkpoint": "bdmm_cli.hub.checkpoint",
    "export_release": "bdmm_cli.hub.export",
    "load_registry": "bdmm_cli.hub.registry",
}

__all__ = sorted([*_EXPORTS, "registry"])


def __getattr__(name: str):
    if name == "registry":
        return importlib.import_module("bdmm_cli.hub.registry")
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'bdmm_cli.hub' has no attribute {name!r}")
