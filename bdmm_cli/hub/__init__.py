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
`resolve_weights`.
"""

from __future__ import annotations

from bdmm_cli.hub import registry
from bdmm_cli.hub.download import cached_path, fetch
from bdmm_cli.hub.export import export_release
from bdmm_cli.hub.installed import installed_path
from bdmm_cli.hub.registry import load_registry
from bdmm_cli.hub.resolve import names_a_path, resolve_weights

__all__ = [
    "cached_path", "export_release", "fetch", "installed_path", "load_registry", "names_a_path",
    "resolve_weights", "registry",
]
