"""The paper's metrics (SSIM, PSNR, L1, LPIPS, FID, FVD), one module per metric.

`evaluate(pred, gt, EvalConfig(metrics=..., protocol=..., seed=...))` is the API behind `bdmm eval`; the
protocols (`bdmm`, `standard`) and every difference between them are in README.md here.
"""

from __future__ import annotations

from bdmm_cli.metrics.evaluate import ALL_METRICS, EvalConfig, FeatureNetworks, evaluate, parse_metrics
from bdmm_cli.metrics.frechet import GaussianStats, frechet_distance, stats_from_features
from bdmm_cli.metrics.fvd import load_i3d
from bdmm_cli.metrics.inception import InceptionFeatures, build_inception, load_inception
from bdmm_cli.metrics.inputs import pair_inputs
from bdmm_cli.metrics.lpips import LPIPS, load_lpips
from bdmm_cli.metrics.protocol import PROTOCOLS, FVDVariant, Protocol, get_protocol

__all__ = [
    "ALL_METRICS", "EvalConfig", "FVDVariant", "FeatureNetworks", "GaussianStats", "InceptionFeatures",
    "LPIPS", "PROTOCOLS", "Protocol", "build_inception", "evaluate", "frechet_distance", "get_protocol",
    "load_i3d", "load_inception", "load_lpips", "pair_inputs", "parse_metrics", "stats_from_features",
]
