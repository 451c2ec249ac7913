"""`bdmm pose`: placeholder until its issue lands."""

from __future__ import annotations

import typer

from bdmm_cli.commands._common import not_available


def pose_command() -> None:
    """Estimate SMPL and BODY_25 keypoints for a video or photo.

    Example:

      bdmm pose dance.mp4 -o dance_poses/
    """
    not_available("pose")


def register(app: typer.Typer) -> None:
    app.command("pose")(pose_command)
