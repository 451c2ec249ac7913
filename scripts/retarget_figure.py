"""Draw docs/retarget_modes.png: one `bdmm animate --preview` frame per `--retarget` mode.

    python scripts/retarget_figure.py [--out docs/retarget_modes.png] [--size 160]

Two different synthetic bodies (``bdmm_cli.body.synthetic``, not SMPL: no real SPIN fit is
reachable here): a small "dancer" on the right of the driving crop and a tall, broad
"person" on the left of the photo. Each row is the preview the pipeline draws
(``AnimatePipeline.preview``): left the driving crop with the dancer's fitted mesh, right
the photo warped onto the retargeted body (outlined; the photo faded elsewhere).
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bdmm_cli.body import BodyModel, project_ndc, rasterize, synthetic_body_arrays  # noqa: E402
from bdmm_cli.dataset.kptsmpl import FramePose  # noqa: E402
from bdmm_cli.dataset.pose_dir import PosedFrame  # noqa: E402
from bdmm_cli.pipeline.animate import AnimatePipeline, Source  # noqa: E402
from bdmm_cli.video.image import to_tensor  # noqa: E402
from bdmm_cli.window import RETARGET_MODES, Retargeter, WindowFrames, WindowSchedule  # noqa: E402

T = 6
SHOW = 4  # which frame of the window the figure shows


def theta(t: float) -> np.ndarray:
    th = np.zeros(72, np.float32)
    th[0] = math.pi
    th[16 * 3 + 2] = -0.9 + 0.6 * math.sin(t)
    th[17 * 3 + 2] = 0.9 + 0.6 * math.sin(t)
    th[1 * 3] = 0.35 * math.sin(t)
    th[2 * 3] = -0.35 * math.sin(t)
    return th


def pose(body, th, beta, cam) -> FramePose:
    with torch.no_grad():
        j = body.body25(torch.tensor(beta)[None], torch.tensor(th)[None])[0, :, :2].numpy()
    kp = np.concatenate([(cam[0] * (j + cam[1:]) + 1.0) * 128.0, np.full((25, 1), 0.9)], axis=1)
    return FramePose(keypoints=kp, bbox_xyxy=np.concatenate([kp[:, :2].min(0), kp[:, :2].max(0)]), cam=cam,
                     pose_theta=th, shape_beta=beta)


def paint(body, p: FramePose, background, colour_fn) -> np.ndarray:
    """A 256 crop: the body of ``p`` filled by ``colour_fn(yy, xx)`` over ``background``."""
    with torch.no_grad():
        v = body(torch.tensor(p.shape_beta)[None], torch.tensor(p.pose_theta)[None])
        cov = (rasterize(project_ndc(v, torch.tensor(p.cam)[None]), body.faces, 256).pix_to_face[0] >= 0).numpy()
    yy, xx = np.mgrid[0:256, 0:256].astype(np.float32) / 256
    img = np.broadcast_to(np.asarray(background, np.float32), (256, 256, 3)).copy()
    img[cov] = colour_fn(yy, xx)[cov]
    return img.astype(np.uint8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "docs" / "retarget_modes.png")
    parser.add_argument("--size", type=int, default=128, help="model size of the preview (multiple of 64)")
    args = parser.parse_args()
    from PIL import Image, ImageDraw

    body = BodyModel(synthetic_body_arrays(0))
    pipe = AnimatePipeline(None, body)
    src_beta = np.array([2.0, 2.5, -1.0, 0, 0, 0, 0, 0, 0, 0], np.float32)
    drv_beta = np.array([-1.0, 0.0, 0.5, 0, 0, 0, 0, 0, 0, 0], np.float32)
    src_pose = pose(body, theta(0.0), src_beta, np.array([1.0, -0.3, 0.08], np.float32))
    stripes = lambda yy, xx: np.stack([200 + 50 * np.sin(40 * yy), 90 + 80 * np.sin(25 * xx), 60 + 0 * xx], -1)  # noqa: E731
    photo = paint(body, src_pose, (225, 225, 215), stripes)
    frames = []
    for i in range(T + 1):
        p = pose(body, theta(0.5 * i), drv_beta, np.array([0.65, 0.4 + 0.03 * i, -0.12], np.float32))
        crop = paint(body, p, (200, 210, 230), lambda yy, xx: np.stack([60 + 0 * xx, 70 + 0 * xx, 160 + 0 * xx], -1))
        frames.append(PosedFrame(index=i, image=crop, pose=p))
    w = WindowSchedule(T).window_at(0, None)
    item = WindowFrames(w, tuple(frames[k] for k in w.frames), frames[w.pre], frames[w.post])
    source = Source(photo, src_pose)
    src_t = to_tensor(photo, args.size)
    rows = []
    for mode in RETARGET_MODES:
        rt = Retargeter(src_pose, frames[0].pose, body, mode)
        inputs, _ = pipe.window_inputs(source, src_t, [item], rt)
        prev = pipe.preview(source, src_t, inputs, [item], args.size, retargeted=mode != "none")
        rows.append(prev[SHOW])
    label_h = 16
    s = args.size
    sheet = Image.new("RGB", (2 * s, len(rows) * (s + label_h)), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for r, (mode, img) in enumerate(zip(RETARGET_MODES, rows)):
        y = r * (s + label_h)
        draw.text((4, y + 2), f"--retarget {mode}:  dancer's fit | on the photo", fill=(0, 0, 0))
        sheet.paste(Image.fromarray(img), (0, y + label_h))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(args.out, optimize=True)
    print(f"wrote {args.out} ({args.out.stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main()
