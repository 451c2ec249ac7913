"""Helpers for the weights tests: the parity fixture's weights, test registries, tiny models."""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

import torch


def fixture_weights(fixture_dir: Path):
    """The fixture's weights.py module (make_state_dict, load_spec), imported from its path."""
    spec = importlib.util.spec_from_file_location("official_bdmm_weights", fixture_dir / "weights.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def authors_state_dict(fixture_dir: Path, net: str, seed: int = 1, prefix: str = "") -> dict[str, torch.Tensor]:
    """The reference network's state dict in the authors' layout (optionally `module.`-prefixed)."""
    w = fixture_weights(fixture_dir)
    return {prefix + k: torch.from_numpy(v) for k, v in w.make_state_dict(w.load_spec(), net, seed).items()}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_registry(path: Path, *, repo: str, revision: str, entries: dict[str, dict]) -> Path:
    """A registry.toml with the given [hub] and [models.*] tables (values: str, int, bool)."""
    def value(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int):
            return str(v)
        return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'

    lines = ["schema = 1", "", "[hub]", f"repo = {value(repo)}", f"revision = {value(revision)}", ""]
    for name, table in entries.items():
        lines.append(f"[models.{name}]")
        lines += [f"{k} = {value(v)}" for k, v in table.items()]
        lines.append("")
    path.write_text("\n".join(lines))
    return path


def tiny_generator(seed: int = 0):
    """A tiny BDMMGenerator (ngf 8) with deterministic random weights."""
    from bdmm_cli.model import BDMMGenerator, GeneratorConfig

    torch.manual_seed(seed)
    return BDMMGenerator(GeneratorConfig(ngf=8, img_f=32, style_dim=32)).eval()


def same_state(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    """Same keys and bit-identical tensors."""
    return set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)
