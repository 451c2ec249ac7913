"""`bdmm body ...`: install and inspect the SMPL body model."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from bdmm_cli.commands._common import handle_errors

group = typer.Typer(
    help=(
        "Manage the SMPL body model (users supply the licensed file from https://smpl.is.tue.mpg.de).\n\n"
        "Examples:\n\n"
        "  bdmm body install smpl_model.pkl\n\n"
        "  bdmm body install SMPL_NEUTRAL.pkl --force\n\n"
        "  bdmm body info"
    ),
    no_args_is_help=True,
)


@group.command("install")
@handle_errors
def install(
    path: Path = typer.Argument(..., help="SMPL model: HMR smpl_model.pkl, SMPL_*.pkl or .npz."),
    force: bool = typer.Option(False, "--force/--no-force", "-f", help="Replace a different installed model."),
) -> None:
    """Convert an SMPL model file once into bdmm's data directory (no chumpy needed).

    Examples:

      bdmm body install ~/Downloads/smpl_model.pkl

      bdmm body install basicModel_neutral_lbs_10_207_0_v1.0.0.pkl --force
    """
    from bdmm_cli.body.body_model import install_body_model

    dest, changed = install_body_model(path, force=force)
    if changed:
        typer.echo(f"installed {path.name} -> {dest}")
    else:
        typer.echo(f"{path.name} is already installed at {dest}")


@group.command("info")
@handle_errors
def info(
    path: Optional[Path] = typer.Argument(None, help="A model file to inspect (default: the installed one)."),
) -> None:
    """Show the installed body model (or a given model file).

    Examples:

      bdmm body info

      bdmm body info SMPL_NEUTRAL.pkl
    """
    import numpy as np

    from bdmm_cli.body.body_model import MISSING_MODEL_MESSAGE, installed_model_path
    from bdmm_cli.body.smpl_file import read_smpl_file
    from bdmm_cli.errors import MissingResourceError

    target = path if path is not None else installed_model_path()
    if path is None and not target.is_file():
        raise MissingResourceError(MISSING_MODEL_MESSAGE)
    model = read_smpl_file(target)
    kind = str(np.asarray(model.get("kind", "smpl")))
    typer.echo(f"file: {target}")
    typer.echo(f"kind: {kind}" + (" (procedural stand-in, not SMPL)" if kind == "synthetic" else ""))
    typer.echo(f"vertices: {model['v_template'].shape[0]}  faces: {model['f'].shape[0]}  joints: 24  betas: 10")
    if "cocoplus_regressor" in model:
        typer.echo(f"cocoplus_regressor: {model['cocoplus_regressor'].shape[0]} joints")
    if path is None:
        with np.load(target, allow_pickle=False) as z:
            if "source_name" in z.files:
                typer.echo(f"installed from: {z['source_name']} (sha256 {str(z['source_sha256'])[:12]}...)")


def register(app: typer.Typer) -> None:
    app.add_typer(group, name="body")
