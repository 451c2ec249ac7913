"""Weights: the registry in weights/, downloads with verification, what `bdmm setup` installed.

    from bdmm_cli.hub import fetch, resolve_weights, registry

- `registry`: the registry module (`registry.load_registry()`, entries, aliases).
- `fetch(name)`: registry entry -> verified local file (HF cache / pooch cache).
- `resolve_weights(name_or_path, kind)`: the one rule for which file a weights argument
  names (path, folder layout, installed by `bdmm setup`, or fetched).
- `installed_path(name)`: what `bdmm setup` installed for a registry name (or None).
- `export_release`: a Hub-ready folder.

hub/ knows no network: the loaders live beside their networks
(`bdmm_cli.model.load_generator`, `bdmm_cli.pose.hmr.load_pose_regressor`) and call
`resolve_weights`. Names are imported lazily, so `import bdmm_cli.hub` does not import torch.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "fetch": "bdmm_cli.hub.download",
    "cached_path": "bdmm_cli.hub.download",
    "resolve_weights": "bdmm_cli.hub.resolve",
    "names_a_path": "bdmm_cli.hub.resolve",
    "installed_path": "bdmm_cli.hub.installed",
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
