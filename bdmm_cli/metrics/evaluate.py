"""`evaluate(pred, gt, config)`: the Python API behind `bdmm eval`.

    result = evaluate("results/", "test_frames/", EvalConfig(metrics="all", protocol="bdmm", seed=0))
    result["ssim"], result["fid"], result["fvd_16f"]["mean"], result["meta"]["counts"]

Steps:
  1. check_inputs: metric names, protocol, device; pair --pred with --gt (inputs.py).
  2. Load the feature networks the metrics need (registry names, local files or modules).
  3. One pass over the frame pairs, in batches: SSIM, PSNR, L1, LPIPS per image, and
     Inception features of generated (and, unless cached, real) frames.
  4. FID against the real statistics: a given `fid_stat.npz`, else the ground-truth frames
     (cached on disk, keyed by data + detector + protocol).
  5. FVD per variant of the protocol: generated clips once, real clips per run (cached).
  6. The result: one key per metric (FVD: one per variant, {"mean", "std"}) and `meta`.
"""

from __future__ import annotations

import platform
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
import torch
from torch import nn

from bdmm_cli.device import resolve_device
from bdmm_cli.errors import InputError
from bdmm_cli.metrics import feature_cache
from bdmm_cli.metrics.frechet import GaussianStats, frechet_distance, stats_from_features
from bdmm_cli.metrics.fvd import (
    clip_features,
    compute_fvd,
    load_i3d,
    random_start,
    run_rng,
    usable_videos,
)
from bdmm_cli.metrics.inception import load_inception
from bdmm_cli.metrics.inputs import PairedVideos, Video, load_videos, pair_inputs
from bdmm_cli.metrics.l1 import l1
from bdmm_cli.metrics.lpips import load_lpips
from bdmm_cli.metrics.protocol import Protocol, get_protocol
from bdmm_cli.metrics.psnr import psnr
from bdmm_cli.metrics.ssim import data_range_for, ssim

ALL_METRICS = ("ssim", "psnr", "l1", "lpips", "fid", "fvd")
PAIRED_METRICS = frozenset({"ssim", "psnr", "l1", "lpips"})
FID_DIMS = 2048


@dataclass(frozen=True)
class FeatureNetworks:
    """Where each feature network comes from: a registry name, a local file, or a module.

    inception:      None = the protocol's registry name (`Protocol.fid_network`); a file
                    holds torchvision-named Inception-v3 weights of the protocol's kind
    lpips_backbone: AlexNet weights (torchvision names) or an AlexNet module
    lpips_linear:   LPIPS v0.1 linear layers (file, registry name or state dict)
    i3d:            TorchScript I3D detector (file or registry name) or a module with the
                    same call signature
    """

    inception: str | Path | nn.Module | None = None
    lpips_backbone: str | Path | nn.Module = "alexnet"
    lpips_linear: str | Path | dict | None = "lpips-alex"
    i3d: str | Path | nn.Module = "i3d"


@dataclass(frozen=True)
class EvalConfig:
    """Settings of one `bdmm eval` run (the CLI options, one field each).

    Attributes:
        metrics: names or a comma list from ssim, psnr, l1, lpips, fid, fvd; or "all".
        protocol: "bdmm" (the authors') or "standard"; see metrics/README.md.
        seed: FVD real-clip sampling seed (results are deterministic given it).
        device: "auto" (CUDA when available), "cpu", "cuda" or "cuda:N".
        batch_size: images per batch for the image networks.
        fid_stats: real FID statistics (.npz with mu, sigma, e.g. the data set's
            fid_stat.npz); None = computed from the ground truth and cached.
        fvd_runs: override the protocol's number of FVD runs per variant.
        use_cache: read and write real-data statistics in the feature cache.
        layout: "auto" (a --pred folder of 5-panel strips without --gt is read as the
            authors' result strips), "strips" (insist on it) or "files" (never).
        fvd_real: the real videos of FVD (e.g. the data set's test_frames/); None = the
            ground truth.
    """

    metrics: str | tuple[str, ...] = "all"
    protocol: str = "bdmm"
    seed: int = 0
    device: str = "auto"
    batch_size: int = 16
    fid_stats: Path | None = None
    fvd_runs: int | None = None
    use_cache: bool = True
    layout: str = "auto"
    fvd_real: Path | None = None


@dataclass
class _Scoring:
    """One evaluate() call: its resolved settings, progress bars and the growing result."""

    config: EvalConfig
    names: tuple[str, ...]
    proto: Protocol
    device: torch.device
    bars: "_Progress"
    result: dict = field(default_factory=dict)
    meta: dict = field(default_factory=dict)


def parse_metrics(metrics: str | Sequence[str]) -> tuple[str, ...]:
    """'ssim,psnr' / ['fid'] / 'all' -> names in canonical order; InputError for unknown ones."""
    names = metrics.split(",") if isinstance(metrics, str) else list(metrics)
    names = [n.strip().lower() for n in names if n.strip()]
    if not names:
        raise InputError("no metric given; choose from " + ", ".join(ALL_METRICS) + " or all")
    if "all" in names:
        return ALL_METRICS
    unknown = [n for n in names if n not in ALL_METRICS]
    if unknown:
        raise InputError(f"unknown metric {unknown[0]!r}; choose from {', '.join(ALL_METRICS)} or all")
    return tuple(n for n in ALL_METRICS if n in names)


class _Progress:
    """Rich progress bars (or nothing): `with p.task(desc, total) as advance: advance(n)`."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._progress = None

    def __enter__(self) -> "_Progress":
        if self.enabled:
            from bdmm_cli.progress import progress_bar

            self._progress = progress_bar(transient=True)
            self._progress.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self._progress is not None:
            self._progress.__exit__(*exc)

    @contextmanager
    def task(self, description: str, total: int) -> Iterator[Callable[[int], None]]:
        if self._progress is None:
            yield lambda n: None
            return
        tid = self._progress.add_task(description, total=total)
        try:
            yield lambda n: self._progress.advance(tid, n)
        finally:
            self._progress.remove_task(tid)


def _to_tensor(frames: list[np.ndarray], device: torch.device) -> torch.Tensor:
    """list of (H, W, 3) uint8 -> (B, 3, H, W) float32 on 0..255."""
    return torch.from_numpy(np.stack(frames)).to(device).permute(0, 3, 1, 2).float()


def _batches(pairs: Iterator[tuple[np.ndarray, ...]], size: int) -> Iterator[list[tuple[np.ndarray, ...]]]:
    """Group items into lists of at most `size`, starting a new list when the frame shape changes."""
    batch: list = []
    for item in pairs:
        if batch and (len(batch) == size or item[0].shape != batch[0][0].shape):
            yield batch
            batch = []
        batch.append(item)
    if batch:
        yield batch


def _frames_of(videos: Sequence[Video]) -> Iterator[tuple[np.ndarray]]:
    for v in videos:
        for f in v.frames():
            yield (f,)


def _inception_features(net, frames: list[np.ndarray], device) -> np.ndarray:
    return net(_to_tensor(frames, device) / 255.0).double().cpu().numpy()


def _versions() -> dict:
    import scipy
    import torchvision

    from bdmm_cli import __version__

    return {
        "bdmm": __version__, "torch": torch.__version__, "torchvision": torchvision.__version__,
        "numpy": np.__version__, "scipy": scipy.__version__, "python": platform.python_version(),
    }


def _describe_network(source, module: nn.Module) -> dict:
    name = source if isinstance(source, str) else (str(source) if isinstance(source, Path) else type(source).__name__)
    return {"source": name, "sha256": feature_cache.module_fingerprint(module)}


LAYOUTS = ("auto", "strips", "files")


def pair_or_strips(pred: str | Path, gt: str | Path | None, layout: str = "auto",
                   paired_frames: bool = True) -> PairedVideos:
    """`--pred`/`--gt` paired (`inputs.pair_inputs`), or a folder of the authors' result strips
    read as generated (panel 5) and ground truth (panel 3) videos (`metrics.strips`)."""
    from bdmm_cli.metrics.strips import is_strip_folder, strip_videos

    if layout not in LAYOUTS:
        raise InputError(f"unknown layout {layout!r}; choose one of: {', '.join(LAYOUTS)}")
    if layout == "strips" or (layout == "auto" and gt is None and is_strip_folder(pred)):
        if gt is not None:
            raise InputError("the result strips carry their ground truth (panel 3): drop --gt "
                             "(--fvd-real or --data sets the real videos of FVD)")
        gen, real = strip_videos(pred)
        return PairedVideos("strips", tuple(gen), tuple(real))
    if gt is None:
        raise InputError(f"give --gt (or make --pred a folder of the authors' 256x1280 result strips; {pred} is not)")
    return pair_inputs(pred, gt, paired_frames=paired_frames)


def evaluate(
    pred: str | Path,
    gt: str | Path | None,
    config: EvalConfig = EvalConfig(),
    networks: FeatureNetworks | None = None,
    progress: bool = False,
) -> dict:
    """Score generated frames/videos `pred` against ground truth `gt`.

    pred, gt:   two folders of frames, two folders of videos, or two video files; or pred
                a folder of the authors' result strips and gt None (config.layout)
    config:     metrics, protocol, seed, device, ... (EvalConfig)
    networks:   where the feature networks come from (FeatureNetworks)
    progress:   show rich progress bars
    returns:    {"ssim": float, "psnr": float, "l1": float, "lpips": float, "fid": float,
                 "fvd_16f": {"mean": float, "std": float}, ..., "meta": {...}}
                with only the requested metrics; an FVD variant no video is long enough
                for is None (meta["fvd"][variant]["skipped"] says why)
    """
    t0 = time.time()
    # 1. check inputs
    names = parse_metrics(config.metrics)
    proto = get_protocol(config.protocol)
    dev = resolve_device(config.device)
    if config.batch_size < 1:
        raise InputError("--batch must be at least 1")
    if config.fvd_runs is not None and config.fvd_runs < 1:
        raise InputError("the number of FVD runs must be at least 1")
    nets = networks or FeatureNetworks()
    paired = pair_or_strips(pred, gt, config.layout, paired_frames=bool(PAIRED_METRICS & set(names)))
    fvd_real = None
    if "fvd" in names and config.fvd_real is not None:
        _, fvd_real = load_videos(config.fvd_real)
    fid_real_file = None
    if "fid" in names and config.fid_stats is not None:
        fid_real_file = Path(config.fid_stats).expanduser()
        if not fid_real_file.is_file():
            raise InputError(f"FID statistics file {fid_real_file} does not exist")

    # 2. networks
    meta_networks: dict = {}
    lpips_net = inception = i3d = None
    if "lpips" in names:
        lpips_net = load_lpips(nets.lpips_backbone, nets.lpips_linear or "lpips-alex", dev)
        meta_networks["lpips"] = _describe_network(nets.lpips_backbone, lpips_net)
    if "fid" in names:
        source = nets.inception if nets.inception is not None else proto.fid_network
        inception = load_inception(source, proto.fid_input, dev)
        meta_networks["inception"] = _describe_network(source, inception)
    if "fvd" in names:
        i3d = load_i3d(nets.i3d, dev)
        meta_networks["i3d"] = _describe_network(nets.i3d, i3d)

    meta: dict = {
        "protocol": proto.name, "metrics": list(names), "seed": config.seed, "device": str(dev),
        "pred": str(pred), "gt": str(gt) if gt is not None else f"{pred} (panel 3 of each strip)",
        "layout": paired.layout, "fvd_real": str(config.fvd_real) if fvd_real is not None else "gt",
        "counts": {"videos": len(paired.pred), "videos_gt": len(paired.gt), "frames_pred": paired.num_frames,
                   "frames_gt": sum(v.num_frames for v in paired.gt)},
        "networks": meta_networks, "cache_hits": [],
    }

    with _Progress(progress) as bars:
        job = _Scoring(config, names, proto, dev, bars, meta=meta)
        # 3 + 4. per-image metrics and FID
        if PAIRED_METRICS & set(names) or "fid" in names:
            _image_metrics(job, paired, lpips_net, inception, fid_real_file)
        # 5. FVD
        if "fvd" in names:
            _fvd_metrics(job, paired, i3d, fvd_real)

    # 6. result
    meta["versions"] = _versions()
    meta["seconds"] = round(time.time() - t0, 3)
    ordered = {k: job.result[k] for k in _result_order(names, proto) if k in job.result}
    ordered["meta"] = meta
    return ordered


def _result_order(names: Sequence[str], proto: Protocol) -> list[str]:
    keys = []
    for n in names:
        keys.extend([v.name for v in proto.fvd_variants] if n == "fvd" else [n])
    return keys


def _image_metrics(job: _Scoring, paired: PairedVideos, lpips_net, inception, fid_real_file) -> None:
    """Steps 3 and 4: SSIM, PSNR, L1, LPIPS per frame pair and FID, into ``job.result``."""
    proto, dev, meta, result, bars = job.proto, job.device, job.meta, job.result, job.bars
    batch_size, use_cache = job.config.batch_size, job.config.use_cache
    wanted = set(job.names)
    per_image: dict[str, list[np.ndarray]] = {n: [] for n in PAIRED_METRICS & wanted}
    fake_feats: list[np.ndarray] = []
    real_feats: list[np.ndarray] = []

    # Real FID statistics: a given file, a cache hit, or computed from gt below.
    real_stats: GaussianStats | None = None
    real_key = None
    if inception is not None:
        if fid_real_file is not None:
            real_stats = GaussianStats.load(fid_real_file)
            meta["fid_real"] = str(fid_real_file)
            if real_stats.mu.shape[0] != FID_DIMS:  # fail before any feature is computed
                raise InputError(
                    f"{fid_real_file} holds {real_stats.mu.shape[0]}-d statistics of different sizes than the "
                    f"{FID_DIMS}-d Inception features; were they computed with another network?"
                )
        else:
            real_key = {
                "data": feature_cache.data_fingerprint(paired.gt),
                "detector": meta["networks"]["inception"]["sha256"],
                "protocol": proto.name, "input": proto.fid_input, "ddof": proto.fid_cov_ddof,
            }
            meta["fid_real"] = "gt"
            real_stats = feature_cache.load_cached("fid", real_key) if use_cache else None
            if real_stats is not None:
                meta["cache_hits"].append("fid")
    need_real = inception is not None and real_stats is None
    total = paired.num_frames

    if per_image:  # one pass over (pred, gt) pairs
        with bars.task("scoring frames", total) as advance:
            for batch in _batches(paired.frame_pairs(), batch_size):
                p = _to_tensor([a for a, _ in batch], dev)
                g = _to_tensor([b for _, b in batch], dev)
                if "ssim" in per_image:
                    per_image["ssim"].append(ssim(p, g, data_range_for(p, proto.ssim_range)).cpu().numpy())
                if "psnr" in per_image:
                    per_image["psnr"].append(psnr(p, g).cpu().numpy())
                if "l1" in per_image:
                    per_image["l1"].append(l1(p, g).cpu().numpy())
                if "lpips" in per_image:
                    per_image["lpips"].append(lpips_net(p / 127.5 - 1.0, g / 127.5 - 1.0).double().cpu().numpy())
                if inception is not None:
                    fake_feats.append(inception(p / 255.0).double().cpu().numpy())
                    if need_real:
                        real_feats.append(inception(g / 255.0).double().cpu().numpy())
                advance(len(batch))
    elif inception is not None:  # FID only: frames need not pair up
        with bars.task("Inception features (generated)", total) as advance:
            for batch in _batches(_frames_of(paired.pred), batch_size):
                fake_feats.append(_inception_features(inception, [f for (f,) in batch], dev))
                advance(len(batch))
        if need_real:
            with bars.task("Inception features (real)", meta["counts"]["frames_gt"]) as advance:
                for batch in _batches(_frames_of(paired.gt), batch_size):
                    real_feats.append(_inception_features(inception, [f for (f,) in batch], dev))
                    advance(len(batch))

    for n, values in per_image.items():
        result[n] = float(np.concatenate(values).mean())
    if inception is not None:
        fake = stats_from_features(np.concatenate(fake_feats), ddof=proto.fid_cov_ddof)
        if need_real:
            computed = stats_from_features(np.concatenate(real_feats), ddof=proto.fid_cov_ddof)
            real_stats, _ = feature_cache.cached_stats("fid", real_key, lambda: computed, enabled=use_cache)
        result["fid"] = frechet_distance(fake, real_stats)
        meta["counts"]["fid_fake_images"] = fake.count
        meta["counts"]["fid_real_images"] = real_stats.count


def _fvd_metrics(job: _Scoring, paired: PairedVideos, i3d, fvd_real: Sequence[Video] | None = None) -> None:
    """Step 5: every FVD variant of the protocol, into ``job.result`` (real videos: `fvd_real`,
    else the ground truth)."""
    proto, dev, meta, result, bars = job.proto, job.device, job.meta, job.result, job.bars
    seed, fvd_runs, use_cache = job.config.seed, job.config.fvd_runs, job.config.use_cache
    detector_sha = meta["networks"]["i3d"]["sha256"]
    meta["fvd"] = {}
    for variant in proto.fvd_variants:
        fake_videos = usable_videos(paired.pred, variant, proto.fvd_max_videos)
        real_videos = usable_videos(paired.gt if fvd_real is None else fvd_real, variant, proto.fvd_max_videos)
        runs = 1 if proto.fvd_real_start == "zero" else (fvd_runs or variant.runs)
        info = {"num_frames": variant.num_frames, "stride": variant.stride, "runs": runs,
                "videos_fake": len(fake_videos), "videos_real": len(real_videos)}
        meta["fvd"][variant.name] = info
        if not fake_videos or not real_videos:
            info["skipped"] = f"no video has the {variant.span} frames this variant needs"
            result[variant.name] = None
            continue
        with bars.task(f"{variant.name}: I3D features (generated)", len(fake_videos)) as advance:
            fake_stats = stats_from_features(
                clip_features(i3d, fake_videos, [0] * len(fake_videos), variant, dev, advance=advance),
                ddof=proto.fvd_cov_ddof,
            )
        data_fp = feature_cache.data_fingerprint(real_videos)
        hits = 0

        def real_stats(run: int) -> GaussianStats:
            nonlocal hits
            key = {"data": data_fp, "detector": detector_sha, "protocol": proto.name,
                   "variant": [variant.name, variant.num_frames, variant.stride],
                   "start": proto.fvd_real_start, "seed": seed if proto.fvd_real_start == "random" else None,
                   "run": run if proto.fvd_real_start == "random" else 0, "ddof": proto.fvd_cov_ddof}

            def compute() -> GaussianStats:
                if proto.fvd_real_start == "random":
                    rng = run_rng(seed, variant, run)
                    starts = [random_start(v.num_frames, variant, rng) for v in real_videos]
                else:
                    starts = [0] * len(real_videos)
                feats = clip_features(i3d, real_videos, starts, variant, dev)
                return stats_from_features(feats, ddof=proto.fvd_cov_ddof)

            stats, hit = feature_cache.cached_stats("fvd", key, compute, enabled=use_cache)
            hits += int(hit)
            advance_runs(1)
            return stats

        with bars.task(f"{variant.name}: real clips, {runs} runs", runs) as advance_runs:
            mean, std, _ = compute_fvd(fake_stats, real_stats, runs)
        if hits:
            meta["cache_hits"].append(f"{variant.name} ({hits}/{runs} runs)")
        result[variant.name] = {"mean": mean, "std": std}
