"""`bdmm train`: the paper's training loop (resumable; multi-GPU under torchrun)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from bdmm_cli.commands._common import err_console, handle_errors


@handle_errors
def train_command(
    data: Optional[str] = typer.Option(
        None, "--data", "-d", help="fashionvideo | iper (under --data-root) or a folder in the official layout."),
    out: Path = typer.Option(Path("runs/bdmm"), "--out", "-o", help="Run directory (config, checkpoints, logs, samples)."),
    resume: bool = typer.Option(False, "--resume/--no-resume", help="Continue the run in --out from its latest checkpoint."),
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="TOML file of TrainConfig keys (flat)."),
    overrides: List[str] = typer.Option([], "--set", help="Override any config key: --set lr_g=2e-4 (repeatable)."),
    iterations: Optional[int] = typer.Option(None, "--iterations", help="Training clips per process (paper: 50000)."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="Clips per process and step (paper: 1)."),
    data_root: Optional[str] = typer.Option(None, "--data-root", help="Where named data sets live ($BDMM_HOME/datasets)."),
    body_model: Optional[str] = typer.Option(None, "--body-model", help="SMPL model file (default: the installed one)."),
    device: Optional[str] = typer.Option(
        None, "--device", help="auto (CUDA when available; the local rank's GPU under torchrun), cpu, cuda or cuda:N."
    ),
    amp: Optional[str] = typer.Option(None, "--amp", help="Mixed precision on CUDA: bf16 | fp16 | off."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Seed of initialisation and data order."),
    workers: Optional[int] = typer.Option(None, "--workers", help="DataLoader worker processes."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar (--no-progress: none)."),
) -> None:
    """Train BDMM with the paper's loop and settings.

    Defaults are the paper's: Adam lr 1e-4 (G) / 1e-5 (D, D_V), betas (0, 0.999), 30-frame
    clips in windows of 6, losses L1 5, perceptual 0.5, style 500, contextual 0.1, LSGAN 2 + 2,
    50,000 iterations. Ctrl-C saves a checkpoint after the current iteration; --resume
    continues it exactly. Under torchrun every process runs this same command.

    Initialisation (--set init=...): the default is none, every layer's own initialisation,
    under which the networks learn from the first iteration. The authors' init (orthogonal,
    gain 0.02, on every conv and linear layer) is --set init=orthogonal: it starts the
    generator's output near zero (~1e-27 at the paper's widths) with the gradients of all
    its layers but the last below Adam's epsilon, so it starts learning late (~35 iterations
    at the paper's widths, ~100-140 in a tiny model; measured in docs/training_init.md).
    Also: --set init=kaiming.

    Learning is visible: the progress bar shows the L1 per frame (G/l1_per_frame in
    stats.jsonl, mean |generated - real| on [-1, 1]); after --set stall_check=N iterations
    (500) one warning says so if the generator's output is still near zero or its L1 is no
    better than a constant image's.

    Examples:

      bdmm train --data fashionvideo --out runs/fv

      bdmm train --data data/mine --out runs/mine --set ema_decay=0.999

      bdmm train --data fashionvideo --out runs/authors --set init=orthogonal

      bdmm train --out runs/fv --resume

      torchrun --nproc_per_node 8 -m bdmm_cli train --data fashionvideo --out runs/fv8
    """
    from bdmm_cli.train.checkpoint import latest_checkpoint, load_checkpoint
    from bdmm_cli.train.config import config_from_dict, load_config
    from bdmm_cli.train.distributed import env_world, teardown
    from bdmm_cli.train.loop import train

    base = None
    if resume:
        found = latest_checkpoint(out)
        if found is None:
            from bdmm_cli.errors import InputError

            raise InputError(f"nothing to resume in {out}: no checkpoints/latest.pt")
        base = config_from_dict(load_checkpoint(found)["config"])
    named = dict(data=data, iterations=iterations, batch_size=batch_size, data_root=data_root,
                 body_model=body_model, device=device, amp=amp, seed=seed, num_workers=workers)
    cfg = load_config(config, overrides, base=base, **named)
    main = env_world()[0] == 0
    try:
        result = train(cfg, out, resume=resume, progress=progress)
    finally:
        teardown()
    if not main:
        return
    if result.finished:
        err_console.print(f"trained {result.step} iterations; checkpoint {result.checkpoint}; "
                          f"weights in {result.run_dir / 'release'}")
        return
    err_console.print(f"stopped at iteration {result.step}; checkpoint saved to {result.checkpoint}; "
                      f"continue with: bdmm train --out {result.run_dir} --resume")
    raise typer.Exit(130)


def register(app: typer.Typer) -> None:
    app.command("train")(train_command)
