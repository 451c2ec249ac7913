"""The training loop: the authors' per-window GAN updates, resumable and distributed.

One iteration = one batch of clips (one clip per process in the paper). A clip of L
frames is cut into L / T windows of T = 6; for each window, in order
(`rocketappslab/BDMM` `model/dance_model.py` `update`):

1. G generates the window from the carried state (None for the first window).
2. Critic update: D on one random frame (real vs the detached fake) and D_V on the whole
   window, LSGAN, one Adam step for both (lr 1e-5).
3. Generator update with D and D_V frozen: 5 L1 + 0.5 perceptual + 500 style + 0.1
   contextual (summed over the window's frames) + 2 LSGAN(D, another random frame) +
   2 LSGAN(D_V, window); one Adam step (lr 1e-4, betas (0, 0.999)).
4. The state is detached and handed to the next window (truncated BPTT).

Random frame choices come from a generator seeded by (seed, step, window), the data from
`ClipSampler` (a pure function of seed and step): with the full state in the checkpoint
(`checkpoint.py`), a resumed run repeats an uninterrupted one exactly on CPU.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import signal
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from bdmm_cli.dataset.layout import resolve_dataset
from bdmm_cli.device import flushed_denormals
from bdmm_cli.errors import BdmmWarning, CheckpointError, InputError
from bdmm_cli.fileio import atomic_output
from bdmm_cli.train import checkpoint as ckpt
from bdmm_cli.train.config import TrainConfig, config_from_dict
from bdmm_cli.train.data import ClipDataset, ClipSampler, clip_windows, generator, make_loader, window_inputs
from bdmm_cli.train.distributed import DistInfo, any_flag, barrier, setup
from bdmm_cli.train.init import initialise
from bdmm_cli.train.losses import (LossWeights, ReconstructionLoss, constant_image_l1, l1_per_frame, load_vgg19,
                                   lsgan_d_loss, lsgan_g_loss)
from bdmm_cli.train.monitor import LearningMonitor

#: Config keys that may change when a run is resumed (they do not change the maths).
RESUMABLE_CHANGES = frozenset({
    "iterations", "num_workers", "log_every", "checkpoint_every", "sample_every", "tensorboard",
    "data", "data_root", "body_model", "device", "stall_check",
})
#: What a run directory holds; a folder with only these and no checkpoint may be reused.
RUN_FILES = frozenset({"config.toml", "stats.jsonl", "tensorboard", "samples", "checkpoints", "release"})


# ---------------------------------------------------------------------------- networks


@dataclass
class Networks:
    """The three networks (bare modules, not DDP wrappers) and the optional EMA of G."""

    G: nn.Module
    D: nn.Module
    D_V: nn.Module
    G_ema: nn.Module | None = None


def build_networks(cfg: TrainConfig, device: str | torch.device = "cpu") -> Networks:
    """G, D, D_V at the config's widths, seeded by cfg.seed, initialised as cfg.init says."""
    from bdmm_cli.model import (BDMMGenerator, DiscriminatorConfig, GeneratorConfig, SpatialDiscriminator,
                                TemporalDiscriminator)

    torch.manual_seed(cfg.seed)
    ngf, img_f = cfg.model_ngf, cfg.model_img_f
    try:
        gcfg = GeneratorConfig(ngf=ngf, img_f=img_f, style_dim=ngf * min(32, img_f // ngf))
        dcfg = DiscriminatorConfig(ndf=cfg.disc_ndf, img_f=cfg.disc_img_f, input_length=cfg.window)
    except ValueError as exc:
        raise InputError(f"invalid network widths: {exc}") from None
    nets = [BDMMGenerator(gcfg), SpatialDiscriminator(dcfg), TemporalDiscriminator(dcfg)]
    for net in nets:
        initialise(net, cfg.init, cfg.init_gain)
    G, D, D_V = (n.to(device) for n in nets)
    G_ema = copy.deepcopy(G).requires_grad_(False).eval() if cfg.ema_decay > 0 else None
    return Networks(G, D, D_V, G_ema)


# ---------------------------------------------------------------------------- trainer


def amp_autocast(device: str, amp: str) -> contextlib.AbstractContextManager:
    """The autocast context of ``TrainConfig.amp`` ("off", "bf16", "fp16"); a no-op off CUDA."""
    if not device.startswith("cuda") or amp == "off":
        return contextlib.nullcontext()
    return torch.autocast("cuda", dtype=torch.bfloat16 if amp == "bf16" else torch.float16)


@dataclass
class WindowLog:
    values: dict[str, list[Tensor]] = field(default_factory=dict)

    def add(self, **items: Tensor) -> None:
        for k, v in items.items():
            self.values.setdefault(k, []).append(v.detach().float())

    def means(self) -> dict[str, float]:
        return {k: float(torch.stack(v).mean()) for k, v in self.values.items()}


class Trainer:
    """Optimisers, losses and the per-window update for one process.

    `G`, `D`, `D_V` are DistributedDataParallel wrappers when `info.enabled`; the bare
    modules are `nets.G` etc. The critics are called bare in the generator update (their
    parameters are frozen there, as in the authors' code).
    """

    def __init__(self, cfg: TrainConfig, info: DistInfo, nets: Networks, vgg: nn.Module, body: nn.Module) -> None:
        self.cfg, self.info, self.nets, self.body = cfg, info, nets, body
        self.device = info.device
        betas = (cfg.beta1, cfg.beta2)
        self.opt_G = torch.optim.Adam(nets.G.parameters(), lr=cfg.lr_g, betas=betas)
        self.opt_D = torch.optim.Adam(list(nets.D.parameters()) + list(nets.D_V.parameters()), lr=cfg.lr_d, betas=betas)
        self.recon = ReconstructionLoss(vgg, LossWeights(
            l1=cfg.w_l1, perceptual=cfg.w_perceptual, style=cfg.w_style, contextual=cfg.w_contextual,
            cx_bandwidth=cfg.cx_bandwidth))
        fp16 = self.device.startswith("cuda") and cfg.amp == "fp16"
        self.scaler_G = torch.amp.GradScaler("cuda") if fp16 else None
        self.scaler_D = torch.amp.GradScaler("cuda") if fp16 else None
        if info.enabled:
            from torch.nn.parallel import DistributedDataParallel as DDP

            # G computes warp_encoder level 1 without using it (as the authors' code does), so
            # DDP must look for unused parameters or their buckets would never be reduced.
            self.G = DDP(nets.G, find_unused_parameters=True)
            self.D, self.D_V = DDP(nets.D), DDP(nets.D_V)
        else:
            self.G, self.D, self.D_V = nets.G, nets.D, nets.D_V
        self.last_sample: dict[str, Tensor] | None = None

    # -- state
    def state_dict(self, step: int) -> dict[str, Any]:
        n = self.nets
        return {
            "step": int(step),
            "config": self.cfg.to_dict(),
            "G": n.G.state_dict(), "D": n.D.state_dict(), "D_V": n.D_V.state_dict(),
            "G_ema": n.G_ema.state_dict() if n.G_ema is not None else None,
            "opt_G": self.opt_G.state_dict(), "opt_D": self.opt_D.state_dict(),
            "scaler_G": self.scaler_G.state_dict() if self.scaler_G else None,
            "scaler_D": self.scaler_D.state_dict() if self.scaler_D else None,
            "rng": ckpt.rng_state(),
            "world_size": self.info.world_size,
        }

    def load_state_dict(self, data: dict[str, Any], source: Path) -> int:
        n = self.nets
        try:
            n.G.load_state_dict(data["G"])
            n.D.load_state_dict(data["D"])
            n.D_V.load_state_dict(data["D_V"])
            if n.G_ema is not None:
                n.G_ema.load_state_dict(data["G_ema"] if data.get("G_ema") is not None else data["G"])
            self.opt_G.load_state_dict(data["opt_G"])
            self.opt_D.load_state_dict(data["opt_D"])
            for name in ("scaler_G", "scaler_D"):
                scaler = getattr(self, name)
                if scaler is not None and data.get(name):
                    scaler.load_state_dict(data[name])
            ckpt.set_rng_state(data["rng"])
        except (RuntimeError, KeyError, ValueError, TypeError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise CheckpointError(f"checkpoint {source} does not fit this configuration: {first[:200]}") from None
        return int(data["step"])

    # -- one window
    def _update(self, loss: Tensor, opt: torch.optim.Optimizer, scaler, params) -> None:
        opt.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(loss).backward()
            if self.cfg.grad_clip > 0:
                scaler.unscale_(opt)
                torch.nn.utils.clip_grad_norm_(params, self.cfg.grad_clip)
            scaler.step(opt)
            scaler.update()
        else:
            loss.backward()
            if self.cfg.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(params, self.cfg.grad_clip)
            opt.step()

    def train_window(self, inputs, real: Tensor, state, rng: torch.Generator, log: WindowLog):
        """One window: generate, update D and D_V, update G. Returns the detached state."""
        cfg, n = self.cfg, self.nets
        t = real.shape[1]
        autocast = lambda: amp_autocast(self.device, cfg.amp)  # noqa: E731
        with autocast():
            out = self.G(inputs, state)
        fake = out.frames

        # critics first, on the detached fakes (authors' backward_D)
        i = int(torch.randint(0, t, (1,), generator=rng))
        n.D.requires_grad_(True)
        n.D_V.requires_grad_(True)
        with autocast():
            d_real, d_fake = self.D(real[:, i]), self.D(fake[:, i].detach())
            v_real, v_fake = self.D_V(real), self.D_V(fake.detach())
        loss_d = lsgan_d_loss(d_real.float(), d_fake.float())
        loss_dv = lsgan_d_loss(v_real.float(), v_fake.float())
        self._update(loss_d + loss_dv, self.opt_D, self.scaler_D,
                     list(n.D.parameters()) + list(n.D_V.parameters()))

        # generator with frozen critics (authors' backward_G)
        n.D.requires_grad_(False)
        n.D_V.requires_grad_(False)
        j = int(torch.randint(0, t, (1,), generator=rng))
        with autocast():
            terms = self.recon(fake, real)
            adv = lsgan_g_loss(n.D(fake[:, j]).float()) * cfg.w_adv
            adv_v = lsgan_g_loss(n.D_V(fake).float()) * cfg.w_adv_video
        loss_g = sum(terms.values()) + adv + adv_v
        self._update(loss_g, self.opt_G, self.scaler_G, list(n.G.parameters()))
        n.D.requires_grad_(True)
        n.D_V.requires_grad_(True)

        if n.G_ema is not None:
            with torch.no_grad():
                for pe, p in zip(n.G_ema.parameters(), n.G.parameters()):
                    pe.lerp_(p.detach(), 1.0 - cfg.ema_decay)
                for be, b in zip(n.G_ema.buffers(), n.G.buffers()):
                    be.copy_(b)
        log.add(**{f"G/{k}": v for k, v in terms.items()}, **{"G/adv": adv, "G/adv_video": adv_v, "G/total": loss_g,
                   "D/loss": loss_d, "D_V/loss": loss_dv, "D/real": d_real.mean(), "D/fake": d_fake.mean(),
                   "D_V/real": v_real.mean(), "D_V/fake": v_fake.mean()})
        # is it learning? (unweighted, and what a constant image would score; monitor.py)
        with torch.no_grad():
            log.add(**{"G/l1_per_frame": l1_per_frame(fake, real), "G/out_abs": fake.float().abs().mean(),
                       "ref/l1_constant": constant_image_l1(real)})
        self.last_sample = {"source": inputs.source[:1].detach(), "real": real[:1].detach(), "fake": fake[:1].detach()}
        return out.state.detach()

    def train_step(self, batch: dict[str, Tensor], step: int) -> dict[str, float]:
        """One iteration (all windows of the batch's clips); returns the mean of each logged value."""
        cfg = self.cfg
        batch = {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}
        self.nets.G.train()
        self.nets.D.train()
        self.nets.D_V.train()
        log = WindowLog()
        state = None
        for w in clip_windows(batch, cfg.window):
            inputs, real = window_inputs(batch, self.body, w)
            state = self.train_window(inputs, real, state, generator(cfg.seed, 3, step, w.index), log)
        return log.means()


# ---------------------------------------------------------------------------- run


@dataclass(frozen=True)
class TrainResult:
    """run_dir; step reached; finished (all iterations done) or interrupted; last checkpoint."""

    run_dir: Path
    step: int
    finished: bool
    checkpoint: Path | None


class _StopFlag:
    """SIGINT sets a flag (the loop saves and stops after the current iteration); a second SIGINT aborts."""

    def __init__(self) -> None:
        self.set = False
        self._old = None

    def __enter__(self) -> "_StopFlag":
        if threading.current_thread() is threading.main_thread():
            self._old = signal.signal(signal.SIGINT, self._handler)
        return self

    def _handler(self, signum, frame) -> None:
        if self.set:
            raise KeyboardInterrupt
        self.set = True

    def __exit__(self, *exc) -> None:
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)


def _check_resume_config(cfg: TrainConfig, stored: dict, path: Path) -> None:
    try:
        old = config_from_dict(stored)
    except (InputError, TypeError) as exc:
        raise CheckpointError(f"checkpoint {path} holds an unreadable config: {exc}") from None
    changed = [k for k, v in cfg.to_dict().items() if k not in RESUMABLE_CHANGES and old.to_dict().get(k) != v]
    if changed:
        raise InputError(
            f"the config differs from the run's checkpoint in {', '.join(changed)}; "
            "resume with the run's config (only iterations, data paths, logging and workers may change) or start a new run"
        )


def _truncate_stats(path: Path, step: int) -> None:
    """Drop stats lines logged after the checkpoint we resume from."""
    if not path.is_file():
        return
    keep = [line for line in path.read_text().splitlines() if line.strip() and json.loads(line).get("step", 0) <= step]
    path.write_text("".join(line + "\n" for line in keep))


def _save_sample(path: Path, sample: dict[str, Tensor]) -> None:
    """Grid PNG: top row source + real frames, bottom row source + generated frames."""
    from PIL import Image
    from torchvision.utils import make_grid

    src, real, fake = sample["source"][0], sample["real"][0], sample["fake"][0]
    tiles = torch.cat([src[None], real, src[None], fake]).float().clamp(-1, 1)
    grid = make_grid((tiles + 1) / 2, nrow=real.shape[0] + 1, padding=2)
    arr = (grid.permute(1, 2, 0).cpu().numpy() * 255).round().astype("uint8")
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(path, force=True) as tmp:
        Image.fromarray(arr).save(tmp, format="PNG")


def export_release(nets: Networks, folder: Path, step: int) -> Path:
    """Write the trained networks in the weights format (`bdmm_cli.model.save_generator`):
    folder/model.safetensors + config.json (G, or its EMA when kept), and
    folder/discriminator/, folder/temporal_discriminator/ (loadable by `load_generator(folder)`)."""
    from bdmm_cli.model.checkpoint import save_discriminators, save_generator

    provenance = {"source": "bdmm train", "step": int(step), "ema": nets.G_ema is not None}
    save_generator(nets.G_ema if nets.G_ema is not None else nets.G, folder, provenance=provenance, force=True)
    save_discriminators(nets.D, nets.D_V, folder, provenance=provenance, force=True)
    return Path(folder)


def _progress(enabled: bool, total: int, start: int):
    from bdmm_cli.progress import progress_bar

    progress = progress_bar(unit="it", enabled=enabled, field="info")
    task = progress.add_task("train", total=total, completed=start, info="")
    return progress, task


def train(cfg: TrainConfig, run_dir: Path | str, resume: bool = False, progress: bool = True,
          stop_at: int | None = None) -> TrainResult:
    """Train (or resume) a run in `run_dir`. Works in one process or under torchrun.

    stop_at: stop (with a checkpoint) once this many iterations are done, as if
    interrupted; for tests and time-boxed jobs.
    """
    run_dir = Path(run_dir).expanduser()
    info = setup(cfg.device)
    device = info.device
    ck_path = ckpt.checkpoint_dir(run_dir) / ckpt.LATEST
    stored = None
    if resume:
        if not ck_path.is_file():
            raise InputError(f"nothing to resume: {ck_path} does not exist")
        stored = ckpt.load_checkpoint(ck_path, map_location="cpu")
        _check_resume_config(cfg, stored["config"], ck_path)
        if stored.get("world_size", 1) != info.world_size:
            raise InputError(
                f"the run was trained with {stored.get('world_size')} processes; resume it with the same number "
                f"(got {info.world_size}) so the data order stays the same"
            )
    elif run_dir.exists():
        foreign = sorted(p.name for p in run_dir.iterdir() if p.name not in RUN_FILES)
        if ck_path.is_file() or foreign:
            raise InputError(f"run directory {run_dir} already holds a run or other files; use --resume to continue "
                             "it or choose another --out")
    data_root = resolve_dataset(cfg.data, cfg.data_root)
    from bdmm_cli.body import load_body_model
    from bdmm_cli.dataset.layout import OfficialDataset

    from bdmm_cli.dataset.validate import check_dataset

    check_dataset(data_root, "train", progress=progress and info.is_main)  # every file, before iteration 1
    dataset = ClipDataset(OfficialDataset(data_root, "train").videos, cfg.image_size, cfg.clip_len, cfg.source_first_n)
    body = load_body_model(Path(cfg.body_model).expanduser() if cfg.body_model else None, device=device)
    vgg = load_vgg19(cfg.vgg_weights, cfg.vgg_width_divisor, device=device)
    barrier(info)
    if info.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.toml").write_text(cfg.to_toml())
    if cfg.deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)

    nets = build_networks(cfg, device)
    trainer = Trainer(cfg, info, nets, vgg, body)
    step = 0
    if stored is not None:
        step = trainer.load_state_dict(stored, ck_path)
        del stored
    sampler = ClipSampler(len(dataset), cfg.batch_size, cfg.seed, info.rank, info.world_size)
    stop = cfg.iterations if stop_at is None else min(cfg.iterations, stop_at)
    loader = make_loader(dataset, sampler, step, stop, cfg.num_workers, pin_memory=device.startswith("cuda"))

    writer = None
    stats_path = run_dir / "stats.jsonl"
    if info.is_main:
        _truncate_stats(stats_path, step)  # drop lines of a crashed attempt past the checkpoint
        if cfg.tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            writer = SummaryWriter(log_dir=str(run_dir / "tensorboard"), purge_step=step)

    def save(at: int) -> Path | None:
        if info.is_main:
            return ckpt.save_checkpoint(ck_path, trainer.state_dict(at))
        return None

    last_ckpt: Path | None = ck_path if resume else None
    bar, task = _progress(progress and info.is_main, cfg.iterations, step)
    monitor = LearningMonitor(cfg.stall_check, cfg.init)
    t_last, steps_since = time.perf_counter(), 0
    interrupted = False
    try:
        # From the authors' init (~1e-27 signal) many products are subnormal, which a CPU
        # computes ~15x slower per iteration (docs/training_init.md); flushing them changes
        # nothing Adam (eps 1e-8) can see.
        with _StopFlag() as flag, bar, flushed_denormals(device):
            for batch in loader:
                logs = trainer.train_step(batch, step)
                step += 1
                steps_since += 1
                if info.is_main:
                    bar.update(task, completed=step, info=f"L1/frame {logs.get('G/l1_per_frame', math.nan):.4f}")
                    stalled = monitor.update(step, logs)
                    if stalled:
                        warnings.warn(BdmmWarning(stalled), stacklevel=2)
                if info.is_main and (step % cfg.log_every == 0 or step == stop):
                    now = time.perf_counter()
                    rate = steps_since / max(now - t_last, 1e-9)
                    t_last, steps_since = now, 0
                    record = {"step": step, "time": time.time(), "it_s": rate,
                              "lr_g": trainer.opt_G.param_groups[0]["lr"], "lr_d": trainer.opt_D.param_groups[0]["lr"], **logs}
                    with open(stats_path, "a") as f:
                        f.write(json.dumps(record) + "\n")
                    if writer is not None:
                        for k, v in record.items():
                            if k not in ("step", "time"):
                                writer.add_scalar(k if "/" in k else f"train/{k}", v, step)
                        writer.flush()
                if info.is_main and cfg.sample_every and step % cfg.sample_every == 0 and trainer.last_sample:
                    _save_sample(run_dir / "samples" / f"step_{step:07d}.png", trainer.last_sample)
                if cfg.checkpoint_every and step % cfg.checkpoint_every == 0 and step < stop:
                    last_ckpt = save(step) or last_ckpt
                if any_flag(flag.set, info, device):
                    interrupted = True
                    break
    finally:
        if writer is not None:
            writer.close()
    last_ckpt = save(step) or last_ckpt
    finished = step >= cfg.iterations and not interrupted
    if finished and info.is_main:
        export_release(nets, run_dir / "release", step)
    barrier(info)
    return TrainResult(run_dir, step, finished, last_ckpt)
