"""`bdmm animate --retarget` end to end: two different synthetic bodies (betas, scale, position).

Independent expectation: the body model rasterized with the source's shape and the camera
rule of the issue computed here from the raw poses; the driver's own body for contrast.
The mesh the frames are generated on is read from the preview's right half (the photo
warped onto the target body, the rest faded to grey).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from animate_helpers import MODEL_SIZE, crop_image, save_png, synthetic_body
from bdmm_cli.body import load_body_model, project_ndc, rasterize
from bdmm_cli.cli import app
from bdmm_cli.dataset.kptsmpl import FramePose, write_kptsmpl
from bdmm_cli.pipeline import AnimateConfig, RunSettings, resolve_retarget
from bdmm_cli.video import iter_frames
from media import make_test_video

N = 7
SRC_BETA = np.array([2.0, 2.5, -1.0, 0, 0, 0, 0, 0, 0, 0], np.float32)  # taller, wider, longer legs
DRV_BETA = np.array([-2.0, -0.5, 1.0, 0, 0, 0, 0, 0, 0, 0], np.float32)  # shorter, thinner
SRC_CAM = np.array([1.05, -0.25, 0.08], np.float32)  # big, left
DRV_CAM = np.array([0.6, 0.35, -0.1], np.float32)  # small, right


def _theta(t: float) -> np.ndarray:
    theta = np.zeros(72, np.float32)
    theta[0] = math.pi
    theta[16 * 3 + 2] = -0.9 + 0.5 * math.sin(t)
    theta[17 * 3 + 2] = 0.9 + 0.5 * math.sin(t)
    return theta


def _pose(body, theta, beta, cam) -> FramePose:
    with torch.no_grad():
        j = body.body25(torch.tensor(beta)[None], torch.tensor(theta)[None])[0, :, :2].numpy()
    kp = np.zeros((25, 3), np.float32)
    kp[:, :2] = (cam[0] * (j + cam[1:]) + 1.0) * 128.0
    kp[:, 2] = 0.9
    return FramePose(keypoints=kp, bbox_xyxy=np.concatenate([kp[:, :2].min(0), kp[:, :2].max(0)]), cam=cam,
                     pose_theta=theta, shape_beta=beta)


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    root = tmp_path_factory.mktemp("retarget_env")
    smpl = synthetic_body(root)
    body = load_body_model(smpl)
    poses = root / "poses"
    (poses / "frames").mkdir(parents=True)
    (poses / "kptsmpls").mkdir()
    driving = []
    for i in range(N):
        cam = DRV_CAM + np.array([0.0, 0.03 * i, 0.0], np.float32)  # the dancer walks right
        p = _pose(body, _theta(0.5 * i), DRV_BETA, cam)
        driving.append(p)
        save_png(poses / "frames" / f"frame_{i:05d}.png", crop_image(0.4 * i))
        write_kptsmpl(poses / "kptsmpls" / f"frame_{i:05d}.json", p)
    photo = root / "person.png"
    save_png(photo, _colourful(256))
    source = _pose(body, _theta(0.0), SRC_BETA, SRC_CAM)  # same pose as driving frame 0
    write_kptsmpl(root / "person.json", source)
    video = make_test_video(root / "drive.mp4", frames=N, fps=10, size=(64, 48), audio=False)
    return dict(root=root, smpl=smpl, body=body, poses=poses, photo=photo, source_pose=root / "person.json",
                video=video, source=source, driving=driving)


def _colourful(size: int) -> np.ndarray:
    """Saturated everywhere (three sinusoids 120 degrees apart: max - min >= 0.87 * 255)."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    a = 6.0 * xx + 4.0 * yy
    img = np.stack([255 * (0.5 + 0.5 * np.sin(a + k * 2 * np.pi / 3)) for k in range(3)], axis=-1)
    return np.clip(img, 0, 255).astype(np.uint8)


def _coverage(body, beta, theta, cam) -> np.ndarray:
    with torch.no_grad():
        v = body(torch.tensor(beta)[None], torch.tensor(theta)[None])
        frags = rasterize(project_ndc(v, torch.tensor(cam, dtype=torch.float32)[None]), body.faces, MODEL_SIZE)
    return (frags.pix_to_face[0] >= 0).numpy()


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


def _matches(got: np.ndarray, want: np.ndarray) -> bool:
    """Same silhouette up to a pixel at the edge (video coding blurs the outline): 90% of the
    body's inner pixels are found, 90% of the pixels found lie on the body or next to it."""
    from scipy.ndimage import binary_dilation, binary_erosion

    inner, near = binary_erosion(want), binary_dilation(want, iterations=2)
    return got[inner].mean() > 0.9 and near[got].mean() > 0.9


def _rule_cam(env, t: int) -> np.ndarray:
    """The issue's camera rule for shape+camera, from the raw poses (pelvis = SMPL root joint)."""
    body, src, drv = env["body"], env["source"], env["driving"]

    def pelvis(beta):
        with torch.no_grad():
            _, j = body.forward_with_joints(torch.tensor(beta)[None], torch.tensor(_theta(0.0))[None])
        return j[0, 0, :2].double().numpy()  # the root joint depends on the shape only

    s_src, s0, st = float(src.cam[0]), float(drv[0].cam[0]), float(drv[t].cam[0])
    r_src = s_src * (pelvis(SRC_BETA) + src.cam[1:])
    r0 = s0 * (pelvis(DRV_BETA) + drv[0].cam[1:])
    rt = st * (pelvis(DRV_BETA) + drv[t].cam[1:])
    s_new = s_src * st / s0
    r_new = r_src + s_src / s0 * (rt - r0)
    return np.concatenate([[s_new], r_new / s_new - pelvis(SRC_BETA)]).astype(np.float32)


def _args(env, out, *extra):
    return ["animate", str(env["photo"]), str(env["video"]), "-o", str(out), "--poses", str(env["poses"]),
            "--source-pose", str(env["source_pose"]), "--weights", "not-loaded-for-a-preview", "--smpl", str(env["smpl"]),
            "--model-size", str(MODEL_SIZE), "--size", str(MODEL_SIZE), "--device", "cpu", "--quiet", "--preview",
            *extra]


def _preview_coverage(out) -> np.ndarray:
    """(N, S, S) bool: where the preview's right half shows the warped photo (saturated colour)."""
    frames = np.stack(list(iter_frames(out))).astype(np.int32)[:, :, MODEL_SIZE:]
    return (frames.max(-1) - frames.min(-1)) > 45


@pytest.mark.parametrize("mode", ["auto", "shape+camera"])
def test_cli_preview_mesh_follows_the_source_body_not_the_driver(env, tmp_path, mode):
    out = tmp_path / "p.mp4"
    res = CliRunner().invoke(app, _args(env, out, "--retarget", mode))
    assert res.exit_code == 0, res.output
    assert "retarget shape+camera" in res.output
    got = _preview_coverage(out)
    body = env["body"]
    src_photo = _coverage(body, SRC_BETA, _theta(0.0), SRC_CAM)  # frame 0 = the source's pose: its own silhouette
    drv0 = _coverage(body, DRV_BETA, _theta(0.0), env["driving"][0].cam)
    assert _matches(got[0], src_photo) and _iou(got[0], drv0) < 0.2
    for t in (3, N - 1):
        want = _coverage(body, SRC_BETA, _theta(0.5 * t), _rule_cam(env, t))
        drv = _coverage(body, DRV_BETA, _theta(0.5 * t), env["driving"][t].cam)
        assert _matches(got[t], want) and _iou(got[t], drv) < 0.2, t


def test_cli_retarget_none_keeps_the_driver_body(env, tmp_path):
    out = tmp_path / "n.mp4"
    res = CliRunner().invoke(app, _args(env, out, "--retarget", "none"))
    assert res.exit_code == 0, res.output
    assert "retarget none" in res.output
    got = _preview_coverage(out)
    for t in (0, 3):
        drv = _coverage(env["body"], DRV_BETA, _theta(0.5 * t), env["driving"][t].cam)
        assert _matches(got[t], drv), t


def test_cli_rejects_an_unknown_mode(env, tmp_path):
    res = CliRunner().invoke(app, _args(env, tmp_path / "x.mp4", "--retarget", "shape"))
    assert res.exit_code != 0 and "--retarget must be one of" in res.output and "Traceback" not in res.output
    assert not (tmp_path / "x.mp4").exists()


def test_auto_is_none_for_a_source_frame_from_the_driving_pose_folder(env):
    folder = env["poses"]
    assert resolve_retarget(RunSettings(poses=folder, source_pose=folder)) == "none"
    assert resolve_retarget(RunSettings(poses=folder, source_pose=folder / "kptsmpls" / "frame_00003.json")) == "none"
    assert resolve_retarget(RunSettings(poses=folder, source_pose=env["source_pose"])) == "shape+camera"
    assert resolve_retarget(RunSettings()) == "shape+camera"  # a photo, poses estimated
    assert resolve_retarget(AnimateConfig(retarget="camera", poses=folder, source_pose=folder)) == "camera"


def test_the_mode_is_part_of_the_run_key(env):
    from bdmm_cli.pipeline import AnimatePipeline

    pipe = AnimatePipeline(None, env["body"])
    docs = {m: pipe._key_doc(env["photo"], env["video"], RunSettings(poses=env["poses"], source_pose=env["source_pose"],
                                                                       retarget=m))
            for m in ("auto", "none", "camera", "shape+camera")}
    assert docs["auto"] == docs["shape+camera"]
    assert len({str(sorted(d.items())) for d in docs.values()}) == 3
