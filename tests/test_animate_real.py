"""`bdmm animate` with the real SMPL model and the released weights on the bundled assets.

Skipped (with the reason) unless the SMPL model is installed (`bdmm body install`) and the
generator and SPIN weights are in the local cache (`bdmm weights download ...`): neither can
be redistributed or downloaded in CI.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bdmm_cli.video import count_frames, probe_video

REPO = Path(__file__).resolve().parents[1]
ASSETS = REPO / "assets"


def _require_real_resources():
    import os

    from bdmm_cli.body import installed_model_path
    from bdmm_cli.hub.download import cached_path

    # conftest points BDMM_HOME / HF_HOME at a temp dir; the real files live in the user's dirs.
    smpl = os.environ.get("BDMM_REAL_SMPL")
    if not smpl and not installed_model_path().is_file():
        pytest.skip("real SMPL model not available (set BDMM_REAL_SMPL=/path/to/SMPL_NEUTRAL.pkl)")
    weights = os.environ.get("BDMM_REAL_GENERATOR")
    if not weights:
        try:
            found = cached_path("generator-fashionvideo")
        except Exception:  # noqa: BLE001 - any registry problem means "not available"
            found = None
        if found is None:
            pytest.skip("released generator weights not available (set BDMM_REAL_GENERATOR=latest_net_G.pth or a folder)")
        weights = "fashionvideo"
    spin = os.environ.get("BDMM_REAL_SPIN")
    if not spin:
        pytest.skip("SPIN weights not available (set BDMM_REAL_SPIN=model_checkpoint.pt)")
    return smpl, weights, spin


def test_animate_assets_with_real_weights(tmp_path):
    smpl, weights, spin = _require_real_resources()
    from bdmm_cli.pipeline import AnimateConfig, animate

    cfg = AnimateConfig(weights=weights, smpl=Path(smpl) if smpl else None, pose_weights=spin,
                        stop=6, skip_missing=True, side_by_side=True)
    out = tmp_path / "walk.mp4"
    result = animate(ASSETS / "person.jpg", ASSETS / "walk.mp4", out, cfg)
    assert result.num_frames == 6 == count_frames(out)
    assert probe_video(out).fps == probe_video(ASSETS / "walk.mp4").fps
