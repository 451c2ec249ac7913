"""The paper's metrics (SSIM, PSNR, L1, LPIPS, FID, FVD), one module per metric.

`evaluate(pred, gt, EvalConfig(metrics=..., protocol=..., seed=...))` is the API behind `bdmm eval`; the
protocols (`bdmm`, `standard`) and every difference between them are in README.md here.
Heavy modules (torch, torchvision) are imported on first use of these names.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "evaluate": "bdmm_cli.metrics.evaluate",
    "EvalConfig": "bdmm_cli.metrics.evaluate",
    "FeatureNetworks": "bdmm_cli.metrics.evaluate",
    "ALL_METRICS": "bdmm_cli.metrics.evaluate",
    "parse_metrics": "bdmm_cli.metrics.evaluate",
    "Protocol": "bdmm_cli.metrics.protocol",
    "FVDVariant": "bdmm_cli.metrics.protocol",
    "PROTOCOLS": "bdmm_cli.metrics.protocol",
    "get_protocol": "bdmm_cli.metrics.protocol",
    "GaussianStats": "bdmm_cli.metrics.frechet",
    "frechet_distance": "bdmm_cli.metrics.frechet",
    "stats_from_features": "bdmm_cli.metrics.frechet",
    "LPIPS": "bdmm_cli.metrics.lpips",
    "load_lpips": "bdmm_cli.metrics.lpips",
    "InceptionFeatures": "bdmm_cli.metrics.inception",
    "build_inception": "bdmm_cli.metrics.inception",
    "load_inception": "bdmm_cli.metrics.inception",
    "load_i3d": "bdmm_cli.metrics.fvd",
    "pair_inputs": "bdmm_cli.metrics.inputs",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'bdmm_cli.metrics' has no attribute {name!r}")
