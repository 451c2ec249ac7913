"""Synthetic OpenPose outputs for tests: heatmaps and PAFs rendered from known skeletons.

The geometry is restated from ``docs/openpose.md`` section 3 (not taken from the code
under test): scale = 368 / H, resized width round(W * scale), padded width
ceil(max(w', 368) / 8) * 8, left pad floor((Wt - w') / 2). A network output pixel c maps
to upsampled pixel 4c + 1.5 (cv2's pixel-centre convention) and so to input pixel 8c + 3,
so a joint at input pixel p is rendered at output coordinate (p - 3) / 8.
"""

from __future__ import annotations

import math

import numpy as np
import torch

# Standing person, y down, height 1, centred on x = 0 (BODY_25 order).
TEMPLATE = np.array([
    (0.0, 0.06), (0.0, 0.16), (-0.1, 0.17), (-0.13, 0.32), (-0.15, 0.45), (0.1, 0.17), (0.13, 0.32),
    (0.15, 0.45), (0.0, 0.5), (-0.06, 0.5), (-0.07, 0.72), (-0.07, 0.93), (0.06, 0.5), (0.07, 0.72),
    (0.07, 0.93), (-0.025, 0.045), (0.025, 0.045), (-0.05, 0.06), (0.05, 0.06), (0.1, 0.99),
    (0.13, 0.98), (0.065, 0.965), (-0.1, 0.99), (-0.13, 0.98), (-0.065, 0.965),
])

# (joint a, joint b) -> PAF channels, restated from the facts document (section 4).
LIMBS = [
    ((1, 8), (0, 1)), ((1, 2), (14, 15)), ((1, 5), (22, 23)), ((2, 3), (16, 17)), ((3, 4), (18, 19)),
    ((5, 6), (24, 25)), ((6, 7), (26, 27)), ((8, 9), (6, 7)), ((9, 10), (2, 3)), ((10, 11), (4, 5)),
    ((8, 12), (8, 9)), ((12, 13), (10, 11)), ((13, 14), (12, 13)), ((1, 0), (30, 31)),
    ((0, 15), (32, 33)), ((15, 17), (36, 37)), ((0, 16), (34, 35)), ((16, 18), (38, 39)),
    ((2, 17), (20, 21)), ((5, 18), (28, 29)), ((14, 19), (40, 41)), ((19, 20), (42, 43)),
    ((14, 21), (44, 45)), ((11, 22), (46, 47)), ((22, 23), (48, 49)), ((11, 24), (50, 51)),
]


def skeleton(cx: float, top: float, height: float, missing: tuple[int, ...] = ()) -> np.ndarray:
    """(25, 3) x, y, present (1/0) in image pixels: the template scaled and placed."""
    kp = np.zeros((25, 3))
    kp[:, 0] = cx + TEMPLATE[:, 0] * height
    kp[:, 1] = top + TEMPLATE[:, 1] * height
    kp[:, 2] = 1.0
    kp[list(missing), :] = (0.0, 0.0, 0.0)
    return kp


def geometry(image_hw: tuple[int, int]) -> tuple[float, tuple[int, int, int, int], tuple[int, int]]:
    """scale, pad (top, left, bottom, right), network output size (h, w) for an image H x W."""
    h, w = image_hw
    scale = 368 / h
    wr = int(round(w * scale))
    hr = int(round(h * scale))
    ht = math.ceil(max(hr, 368) / 8) * 8
    wt = math.ceil(max(wr, 368) / 8) * 8
    top, left = (ht - hr) // 2, (wt - wr) // 2
    return scale, (top, left, ht - hr - top, wt - wr - left), (ht // 8, wt // 8)


def render(people: list[np.ndarray], image_hw: tuple[int, int], sigma: float = 1.0, width: float = 1.0,
           heat_noise: float = 0.0, paf_noise: float = 0.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Heatmaps (26, h, w) and PAFs (52, h, w) of `people` at the network output size."""
    scale, pad, (h, w) = geometry(image_hw)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    heat = np.zeros((26, h, w))
    paf = np.zeros((52, h, w))
    count = np.zeros((26, h, w))
    for kp in people:
        # +0.013: no blob centre exactly between two pixels (a symmetric plateau has no peak)
        c = np.stack([(kp[:, 0] * scale + pad[1] - 3) / 8, (kp[:, 1] * scale + pad[0] - 3) / 8], 1) + 0.013
        for j in range(25):
            if kp[j, 2] > 0:
                heat[j] = np.maximum(heat[j], np.exp(-((xx - c[j, 0]) ** 2 + (yy - c[j, 1]) ** 2) / (2 * sigma ** 2)))
        for k, ((a, b), (px, py)) in enumerate(LIMBS):
            if kp[a, 2] <= 0 or kp[b, 2] <= 0:
                continue
            v = c[b] - c[a]
            n = np.linalg.norm(v)
            u = v / n
            t = ((xx - c[a, 0]) * u[0] + (yy - c[a, 1]) * u[1])
            d = np.abs((xx - c[a, 0]) * u[1] - (yy - c[a, 1]) * u[0])
            on = (t >= -width) & (t <= n + width) & (d <= width)
            paf[px][on] += u[0]
            paf[py][on] += u[1]
            count[k][on] += 1
    for k, (_, (px, py)) in enumerate(LIMBS):
        many = count[k] > 1
        paf[px][many] /= count[k][many]
        paf[py][many] /= count[k][many]
    heat[25] = np.clip(1 - heat[:25].max(0), 0, 1)
    rng = np.random.default_rng(seed)
    if heat_noise:
        heat[:25] += rng.uniform(0, heat_noise, heat[:25].shape)
    if paf_noise:
        paf += rng.normal(0, paf_noise, paf.shape)
    return heat.astype(np.float32), paf.astype(np.float32)


class StandInNet(torch.nn.Module):
    """An OpenPose stand-in for detector tests: frame i is a constant image of grey 20 + 8 i;
    the net reads i back from its input and returns the maps rendered for frames[i]."""

    def __init__(self, frames: list[list[np.ndarray]], image_hw: tuple[int, int]) -> None:
        super().__init__()
        self.maps = [render(people, image_hw) for people in frames]
        self.calls: list[int] = []  # batch sizes seen

    @staticmethod
    def frame(i: int, image_hw: tuple[int, int]) -> np.ndarray:
        return np.full((*image_hw, 3), 20 + 8 * i, dtype=np.uint8)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self.calls.append(x.shape[0])
        centre = x[:, 0, x.shape[2] // 2, x.shape[3] // 2]
        idx = [int(round((float(v) * 256 + 128 - 20) / 8)) for v in centre]
        heat = torch.stack([torch.from_numpy(self.maps[i][0]) for i in idx])
        paf = torch.stack([torch.from_numpy(self.maps[i][1]) for i in idx])
        return heat, paf


def dot_detector_state_dict(blurs: int = 3, gain: float = 4.0) -> dict[str, torch.Tensor]:
    """Hand-set weights in the authors' exact layout (so they load with ``load_openpose``) that
    make the real network find bright dots on a dark background: the stem passes the
    brightness through (channel 0, ReLU/PReLU inactive), the last heatmap stage blurs it
    (`blurs` 3x3 binomial convs) so every joint's heatmap peaks at every dot, and the PAF
    stages output a constant downward field. A column of dots then assembles into people
    (each dot linked to the next one down). For end-to-end tests of the CLI and the stage;
    the keypoints mean nothing anatomically."""
    from bdmm_cli.pose.openpose import OpenPoseBody25

    with torch.device("meta"):
        layout = OpenPoseBody25().state_dict()
    sd = {k: torch.zeros(v.shape) for k, v in layout.items()}
    binomial = torch.tensor([1.0, 2.0, 1.0])
    binomial = torch.outer(binomial, binomial) / 16
    for k, v in sd.items():
        if "prelu" in k.lower():
            v.fill_(1.0)  # identity activations
        elif k.endswith(".weight") and v.dim() == 4:
            if k == "model0.conv1_1.weight":
                v[0, :, 1, 1] = 1.0  # B + G + R (normalised), in [-1.5, 1.5)
            elif v.shape[-1] == 3:
                blur = k.startswith("block11.") and int(k.split(".")[2]) == 0 and int(k.split("split")[1][0]) < blurs
                if blur:
                    v[0, 0] = binomial
                else:
                    v[0, 0, 1, 1] = 1.0
            elif ".Mconv6_" in k:
                v[0, 0, 0, 0] = 1.0
            elif k == "block11.main.6.split0.Mconv7_stage1_L1.weight":
                v[:25, 0, 0, 0] = gain / 3
    sd["model0.conv1_1.bias"][0] = 1.5  # brightness + 1.5 >= 0: ReLU passes it
    paf_bias = sd["block32.main.6.split0.Mconv7_stage3_L2.bias"]
    paf_bias[1::2] = 1.0  # every limb's field points down (y component 1)
    return sd
