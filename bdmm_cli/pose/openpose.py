"""OpenPose BODY_25 as the BDMM authors ran it: their network, preprocessing, decoding and tracker.

    net = load_openpose("openpose_body25.pth")            # the authors' file, strict, weights_only
    detector = OpenPoseDetector(net, video=True)           # a bdmm KeypointDetector
    body = detector(rgb_frame)                             # Body25 | None (largest person, tracked)

    inp = preprocess_openpose(rgb)                         # OpenPoseInput(tensor, scale, pad)
    heatmaps, pafs = net(inp.tensor)                       # (1, 26, H/8, W/8), (1, 52, H/8, W/8)
    people = decode_body25(heatmaps, pafs, inp.scale, inp.pad, rgb.shape)   # [(25, 3)], (-1, -1, 0) = missing

Every rule restates ``docs/openpose.md`` (the facts read from the authors' code); the
section numbers below refer to it. Exactness over elegance: the network applies the same
torch ops in the same order (section 2); the outputs are upsampled by one ``cv2.resize``
call per map array (section 4); peaks, limb scores and person assembly follow the stated
comparisons, truncations and orders, because near-ties flip on the smallest difference.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from torch import nn

from bdmm_cli.errors import CheckpointError
from bdmm_cli.pose.body25 import Body25

INPUT_HEIGHT = 368
STRIDE = 8
UPSAMPLE = 4
NUM_JOINTS = 25
NUM_HEATMAPS = 26  # 25 joints + background (never read)
NUM_PAFS = 52
PEAK_THRESHOLD = 0.1
NMS_RADIUS = 6.0
PAF_SAMPLES = 10
PAF_MIN_SCORE = 0.05
MIN_SUCCESS = 0.8
MIN_PARTS = 3
MIN_MEAN_SCORE = 0.2
MIN_SIMILAR_JOINTS = 3
SIMILARITY_THRESHOLD = 0.5

#: limb k: (joint a, joint b) and its PAF channels (x, y) (section 4, in processing order).
LIMB_JOINTS = (
    (1, 8), (1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (8, 9), (9, 10), (10, 11), (8, 12),
    (12, 13), (13, 14), (1, 0), (0, 15), (15, 17), (0, 16), (16, 18), (2, 17), (5, 18),
    (14, 19), (19, 20), (14, 21), (11, 22), (22, 23), (11, 24),
)
LIMB_PAFS = (
    (0, 1), (14, 15), (22, 23), (16, 17), (18, 19), (24, 25), (26, 27), (6, 7), (2, 3), (4, 5),
    (8, 9), (10, 11), (12, 13), (30, 31), (32, 33), (36, 37), (34, 35), (38, 39), (20, 21),
    (28, 29), (40, 41), (42, 43), (44, 45), (46, 47), (48, 49), (50, 51),
)
FILL_ONLY_LIMBS = (18, 19)  # RShoulder-REar, LShoulder-LEar: never create or score a person

#: per-joint OKS sigmas of the tracker's similarity (section 5), float32 / 10 as the authors'.
SIGMAS = np.array([.26, .79, .79, .72, .62, .79, .72, .62, .79, 1.07, .87, .89, 1.07, .87, .89,
                   .25, .25, .35, .35, .35, .35, .25, .35, .35, .25], dtype=np.float32) / 10.0
VARIANCES = (SIGMAS * 2) ** 2


# =============================================================================================
# 2. Network
# =============================================================================================

def _conv(cin: int, cout: int, k: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k, stride=1, padding=k // 2, bias=True)


def _stem() -> nn.Sequential:
    """`model0`: VGG-19 conv1_1..conv4_2 + the two CPM convs; output 128 channels at stride 8."""
    layers: list[tuple[str, nn.Module]] = []

    def relu(name: str, cin: int, cout: int) -> None:
        layers.extend([(name, _conv(cin, cout, 3)), ("relu" + name[4:], nn.ReLU(inplace=True))])

    def prelu(name: str, cin: int, cout: int) -> None:
        layers.extend([(name, _conv(cin, cout, 3)), ("prelu" + name[4:], nn.PReLU(cout))])

    def pool(name: str) -> None:
        layers.append((name, nn.MaxPool2d(kernel_size=2, stride=2, padding=0)))

    relu("conv1_1", 3, 64), relu("conv1_2", 64, 64), pool("pool1_stage1")
    relu("conv2_1", 64, 128), relu("conv2_2", 128, 128), pool("pool2_stage1")
    relu("conv3_1", 128, 256), relu("conv3_2", 256, 256), relu("conv3_3", 256, 256), relu("conv3_4", 256, 256)
    pool("pool3_stage1")
    relu("conv4_1", 256, 512)
    prelu("conv4_2", 512, 512), prelu("conv4_3_CPM", 512, 256), prelu("conv4_4_CPM", 256, 128)
    return nn.Sequential(OrderedDict(layers))


class _TripleConv(nn.Module):
    """Mconv1..5: three chained 3x3 conv + PReLU; returns [c0, c1, c2] (3 x width channels)."""

    def __init__(self, cin: int, width: int, unit: int, tag: str) -> None:
        super().__init__()
        for c in range(3):
            split = nn.Sequential(OrderedDict([
                (f"Mconv{unit}_{tag}_{c}", _conv(cin if c == 0 else width, width, 3)),
                (f"Mprelu{unit}_{tag}_{c}", nn.PReLU(width)),
            ]))
            self.add_module(f"split{c}", split)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c0 = self.split0(x)
        c1 = self.split1(c0)
        c2 = self.split2(c1)
        return torch.cat([c0, c1, c2], 1)


class _PointConv(nn.Module):
    """Mconv6 (1x1 + PReLU) or Mconv7 (1x1, no activation), under `split0`."""

    def __init__(self, cin: int, cout: int, unit: int, tag: str, activation: bool) -> None:
        super().__init__()
        layers = [(f"Mconv{unit}_{tag}", _conv(cin, cout, 1))]
        if activation:
            layers.append((f"Mprelu{unit}_{tag}", nn.PReLU(cout)))
        self.split0 = nn.Sequential(OrderedDict(layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.split0(x)


class _Stage(nn.Module):
    """`block{S}{L}`: five triple-conv units, Mconv6, Mconv7 -> `out` maps (L=2 PAFs, L=1 heatmaps)."""

    def __init__(self, stage: int, branch: int, cin: int, width: int, mid: int, out: int) -> None:
        super().__init__()
        tag = f"stage{stage}_L{branch}"
        units: list[nn.Module] = [_TripleConv(cin if i == 1 else 3 * width, width, i, tag) for i in range(1, 6)]
        units += [_PointConv(3 * width, mid, 6, tag, True), _PointConv(mid, out, 7, tag, False)]
        self.main = nn.Sequential(*units)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x)


class OpenPoseBody25(nn.Module):
    """The authors' OpenPose BODY_25 network (``docs/openpose.md`` section 2).

    ``state_dict()`` has the keys and shapes of their ``openpose_body25.pth`` (327 tensors,
    26,166,084 values), in the file's order, so ``load_state_dict(strict=True)`` works.

    forward(x (N, 3, H, W) float32, B-G-R, H and W multiples of 8) ->
        (heatmaps (N, 26, H/8, W/8): 25 BODY_25 joints + background,
         pafs (N, 52, H/8, W/8): part affinity fields, channels as ``LIMB_PAFS``).
    """

    def __init__(self) -> None:
        super().__init__()
        feat = 128
        self.model0 = _stem()
        self.block02 = _Stage(0, 2, feat, 96, 256, NUM_PAFS)
        self.block12 = _Stage(1, 2, feat + NUM_PAFS, 128, 512, NUM_PAFS)
        self.block22 = _Stage(2, 2, feat + NUM_PAFS, 128, 512, NUM_PAFS)
        self.block32 = _Stage(3, 2, feat + NUM_PAFS, 128, 512, NUM_PAFS)
        self.block01 = _Stage(0, 1, feat + NUM_PAFS, 96, 256, NUM_HEATMAPS)
        self.block11 = _Stage(1, 1, feat + NUM_HEATMAPS + NUM_PAFS, 128, 512, NUM_HEATMAPS)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.model0(x)
        p0 = self.block02(f)
        p1 = self.block12(torch.cat([f, p0], 1))
        p2 = self.block22(torch.cat([f, p1], 1))
        p3 = self.block32(torch.cat([f, p2], 1))
        h0 = self.block01(torch.cat([f, p3], 1))
        h1 = self.block11(torch.cat([f, h0, p3], 1))
        return h1, p3


def check_openpose_state_dict(sd: Mapping[str, torch.Tensor], source: str) -> None:
    """Strict key / shape / float check against ``OpenPoseBody25`` built on the meta device
    (CheckpointError); used by ``load_openpose`` and by ``bdmm setup`` / ``bdmm weights import``."""
    from bdmm_cli.state_dict import check_weights

    with torch.device("meta"):
        net = OpenPoseBody25()
    check_weights(sd, net, f"{source} does not fit OpenPose BODY_25 (the authors' openpose_body25.pth)")


def check_openpose_checkpoint(ckpt, kind: str = "openpose_body25", source: str = "checkpoint"):
    """`ckpt` (a `state_dict.Checkpoint`) checked as OpenPose BODY_25 (:func:`check_openpose_state_dict`);
    the checker of kind "openpose_body25" in the table of kinds (`bdmm_cli.kinds`)."""
    from bdmm_cli.state_dict import Checkpoint

    check_openpose_state_dict(ckpt.state_dict, source)
    return Checkpoint(ckpt.state_dict, kind, {}, ckpt.provenance)


def load_openpose(path: str | Path, device: str | torch.device = "cpu") -> OpenPoseBody25:
    """The authors' ``openpose_body25.pth`` (a flat state dict), or the folder ``bdmm setup``
    installs, -> OpenPoseBody25 in eval mode.

    Read once through ``bdmm_cli.state_dict.read_checkpoint_file`` (safetensors, or
    ``torch.load(weights_only=True)``) and loaded strictly once (``state_dict.load_strict``
    against the network built on the meta device): a file with pickled code, a
    non-state-dict, or any missing, unexpected or misshaped key raises CheckpointError.
    """
    from bdmm_cli.state_dict import load_strict, read_checkpoint_file

    path = Path(path).expanduser()
    try:
        ckpt = read_checkpoint_file(path)
    except CheckpointError as exc:
        raise CheckpointError(f"not an OpenPose BODY_25 state dict (the authors' openpose_body25.pth is a flat dict "
                              f"of tensors): {exc}") from None
    with torch.device("meta"):
        net = OpenPoseBody25()
    net = load_strict(net, ckpt.state_dict, f"{path} does not fit OpenPose BODY_25 (the authors' openpose_body25.pth)")
    return net.to(device).eval()


# =============================================================================================
# 3. Preprocessing
# =============================================================================================

class OpenPoseInput(NamedTuple):
    """The network input of one image.

    Fields:
        tensor: (1, 3, Hp, Wp) float32, channels B, G, R, values (v - 128) / 256, grey (0.0) padding.
        scale: INPUT_HEIGHT / image height (the resize factor on both axes).
        pad: (top, left, bottom, right) padding in network-input pixels.
    """

    tensor: torch.Tensor
    scale: float
    pad: tuple[int, int, int, int]


def preprocess_openpose(image_rgb: np.ndarray, height: int = INPUT_HEIGHT) -> OpenPoseInput:
    """(H, W, 3) uint8 RGB -> the authors' network input (section 3)."""
    import cv2

    image = np.asarray(image_rgb)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 RGB image, got {image.shape} {image.dtype}")
    bgr = np.ascontiguousarray(image[:, :, ::-1])
    scale = height / image.shape[0]
    resized = cv2.resize(bgr, (0, 0), fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
    normed = (resized.astype(np.float32) - 128) / 256
    h, w = normed.shape[:2]
    target_h = math.ceil(max(h, height) / STRIDE) * STRIDE
    target_w = math.ceil(max(w, height) / STRIDE) * STRIDE
    top, left = (target_h - h) // 2, (target_w - w) // 2
    bottom, right = target_h - h - top, target_w - w - left
    padded = np.pad(normed, ((top, bottom), (left, right), (0, 0)), mode="constant", constant_values=0.0)
    tensor = torch.from_numpy(np.ascontiguousarray(padded.transpose(2, 0, 1)))[None]
    return OpenPoseInput(tensor, scale, (top, left, bottom, right))


# =============================================================================================
# 4. Decoding
# =============================================================================================

class Person(NamedTuple):
    """One decoded person.

    Fields:
        keypoints: (25, 3) float64 ``x, y, score`` in image pixels; missing = (-1, -1, 0).
        score: the assembly score (sum of part scores and limb ratios): the person's confidence.
    """

    keypoints: np.ndarray
    score: float


def upsample_maps(maps) -> np.ndarray:
    """(1, C, h, w) or (C, h, w) network output -> (4h, 4w, C) float32, one cv2 cubic resize."""
    import cv2

    if isinstance(maps, torch.Tensor):
        maps = maps.detach().cpu().float().numpy()
    arr = np.asarray(maps, dtype=np.float32)
    if arr.ndim == 4:
        if arr.shape[0] != 1:
            raise ValueError(f"decode one image at a time, got a batch of {arr.shape[0]}")
        arr = arr[0]
    if arr.ndim != 3:
        raise ValueError(f"expected (1, C, h, w) or (C, h, w) maps, got shape {arr.shape}")
    hwc = np.transpose(arr, (1, 2, 0))
    return cv2.resize(hwc, (0, 0), fx=UPSAMPLE, fy=UPSAMPLE, interpolation=cv2.INTER_CUBIC)


def find_peaks(heatmap: np.ndarray, first_id: int) -> list[tuple[int, int, float, int]]:
    """Peaks of one joint's upsampled heatmap (h, w): [(x, y, score, id)], ids from `first_id`.

    Values below 0.1 count as 0; a peak is strictly above its 4 neighbours (0 outside);
    peaks sorted by x (stable, so by y within a column); a kept peak suppresses every later
    one closer than 6 px (the leftmost wins, not the strongest).
    """
    hm = np.where(heatmap < PEAK_THRESHOLD, np.float32(0), heatmap).astype(np.float32, copy=False)
    b = np.pad(hm, 1, mode="constant", constant_values=0)
    centre = b[1:-1, 1:-1]
    is_peak = ((centre > b[1:-1, :-2]) & (centre > b[1:-1, 2:]) & (centre > b[:-2, 1:-1]) & (centre > b[2:, 1:-1]))
    ys, xs = np.nonzero(is_peak)  # row-major: by y, then x
    order = sorted(range(len(xs)), key=lambda i: int(xs[i]))  # stable sort by x
    pts = [(int(xs[i]), int(ys[i])) for i in order]
    suppressed = [False] * len(pts)
    kept = []
    for i, (x, y) in enumerate(pts):
        if suppressed[i]:
            continue
        for j in range(i + 1, len(pts)):
            if math.sqrt((x - pts[j][0]) ** 2 + (y - pts[j][1]) ** 2) < NMS_RADIUS:
                suppressed[j] = True
        kept.append((x, y, float(hm[y, x]), first_id + len(kept)))
    return kept


def _limb_pairs(peaks_a, peaks_b, paf_x: np.ndarray, paf_y: np.ndarray, height_n: int) -> list[tuple[int, int, float]]:
    """Scored, greedily selected pairs (id_a, id_b, ratio) of one limb (section 4, line integral)."""
    scored = []
    for i, (xa, ya, _, _) in enumerate(peaks_a):
        for j, (xb, yb, _, _) in enumerate(peaks_b):
            vx, vy = xb - xa, yb - ya
            norm = math.sqrt(vx * vx + vy * vy)
            if norm == 0:
                continue
            ux, uy = vx / norm, vy / norm
            k = np.arange(PAF_SAMPLES)
            sx = (1 / (PAF_SAMPLES - 1)) * (xb - xa) * k + xa
            sy = (1 / (PAF_SAMPLES - 1)) * (yb - ya) * k + ya
            px, py = sx.astype(np.int64), sy.astype(np.int64)  # int() truncation (samples are >= 0)
            s = ux * paf_x[py, px].astype(np.float64) + uy * paf_y[py, px].astype(np.float64)
            good = s > PAF_MIN_SCORE
            count = int(good.sum())
            success = count / PAF_SAMPLES
            mean = float(s[good].sum()) / count if count else 0.0
            ratio = mean + min(height_n / norm - 1, 0)
            if ratio > 0 and success > MIN_SUCCESS:
                scored.append((i, j, ratio))
    scored.sort(key=lambda c: c[2], reverse=True)  # stable
    limit = min(len(peaks_a), len(peaks_b))
    used_a, used_b, pairs = set(), set(), []
    for i, j, ratio in scored:
        if len(pairs) == limit:
            break
        if i not in used_a and j not in used_b:
            pairs.append((peaks_a[i][3], peaks_b[j][3], ratio))
            used_a.add(i)
            used_b.add(j)
    return pairs


def _assemble(peaks_by_joint: list[list[tuple]], pafs: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """Person entries (27 numbers: joint ids 0..24 or -1, score, count) and all peaks (id-indexed)."""
    all_peaks = np.array([p for peaks in peaks_by_joint for p in peaks], dtype=np.float64).reshape(-1, 4)
    height_n = pafs.shape[0] // 2
    size = NUM_JOINTS + 2
    people: list[np.ndarray] = []
    for limb, ((a, b), (cx, cy)) in enumerate(zip(LIMB_JOINTS, LIMB_PAFS)):
        peaks_a, peaks_b = peaks_by_joint[a], peaks_by_joint[b]
        if not peaks_a and not peaks_b:
            continue
        if not peaks_a or not peaks_b:
            joint, peaks = (b, peaks_b) if not peaks_a else (a, peaks_a)
            for x, y, score, pid in peaks:
                if not any(p[joint] == pid for p in people):
                    entry = np.full(size, -1.0)
                    entry[joint] = pid
                    entry[-1] = 1
                    entry[-2] = score
                    people.append(entry)
            continue
        pairs = _limb_pairs(peaks_a, peaks_b, pafs[:, :, cx], pafs[:, :, cy], height_n)
        if not pairs:
            continue
        if limb == 0:
            people = []
            for ia, ib, ratio in pairs:
                entry = np.full(size, -1.0)
                entry[a], entry[b] = ia, ib
                entry[-1] = 2
                entry[-2] = np.sum(all_peaks[[int(ia), int(ib)], 2]) + ratio
                people.append(entry)
        elif limb in FILL_ONLY_LIMBS:
            for ia, ib, _ in pairs:
                for p in people:
                    if p[a] == ia and p[b] == -1:
                        p[b] = ib
                    elif p[b] == ib and p[a] == -1:
                        p[a] = ia
        else:
            for ia, ib, ratio in pairs:
                found = 0
                for p in people:
                    if p[a] == ia:
                        p[b] = ib
                        found += 1
                        p[-1] += 1
                        p[-2] += all_peaks[int(ib), 2] + ratio
                if found == 0:
                    entry = np.full(size, -1.0)
                    entry[a], entry[b] = ia, ib
                    entry[-1] = 2
                    entry[-2] = np.sum(all_peaks[[int(ia), int(ib)], 2]) + ratio
                    people.append(entry)
    people = [p for p in people if not (p[-1] < MIN_PARTS or p[-2] / p[-1] < MIN_MEAN_SCORE)]
    return people, all_peaks


def decode_people(heatmaps, pafs, scale: float, pad, image_shape) -> list[Person]:
    """Raw network outputs of one image -> [Person] in the authors' person order (section 4).

    Args:
        heatmaps: (1, 26, h, w) or (26, h, w) tensor/array; pafs: (1, 52, h, w) or (52, h, w).
        scale, pad: from :func:`preprocess_openpose` (pad = (top, left, bottom, right)).
        image_shape: the image's (H, W, ...) shape; coordinates are clipped to [0, W] x [0, H].
    """
    hm = upsample_maps(heatmaps)
    pf = upsample_maps(pafs)
    peaks_by_joint, next_id = [], 0
    for j in range(NUM_JOINTS):
        peaks = find_peaks(hm[:, :, j], next_id)
        next_id += len(peaks)
        peaks_by_joint.append(peaks)
    people, all_peaks = _assemble(peaks_by_joint, pf)
    height, width = int(image_shape[0]), int(image_shape[1])
    top, left = pad[0], pad[1]
    xs = np.clip((all_peaks[:, 0] * STRIDE / UPSAMPLE - left) / scale, 0, width)
    ys = np.clip((all_peaks[:, 1] * STRIDE / UPSAMPLE - top) / scale, 0, height)
    out = []
    for p in people:
        kp = np.tile(np.array([-1.0, -1.0, 0.0]), (NUM_JOINTS, 1))
        for j in range(NUM_JOINTS):
            pid = int(p[j])
            if pid != -1:
                kp[j] = (xs[pid], ys[pid], all_peaks[pid, 2])
        out.append(Person(kp, float(p[-2])))
    return out


def decode_body25(heatmaps, pafs, scale: float, pad, image_shape) -> list[np.ndarray]:
    """Raw network outputs -> people, each (25, 3) float64 ``x, y, conf`` in image pixels, in
    the authors' person order; a missing joint is (-1, -1, 0). See :func:`decode_people`."""
    return [p.keypoints for p in decode_people(heatmaps, pafs, scale, pad, image_shape)]


# =============================================================================================
# 5. Selection, tracking and smoothing
# =============================================================================================

def person_box(keypoints: np.ndarray) -> np.ndarray:
    """(4,) float32 [min x, min y, max x, max y] over joints with x != -1 (zeros when none)."""
    found = keypoints[keypoints[:, 0] != -1]
    if len(found) == 0:
        return np.zeros(4, dtype=np.float32)
    return np.array([found[:, 0].min(), found[:, 1].min(), found[:, 0].max(), found[:, 1].max()], dtype=np.float32)


def select_max_box(boxes: list[np.ndarray]) -> int | None:
    """The authors' MaxBoxTracker: index of the first box whose area beats the running maximum
    (from 0; ties keep the earliest); 0 when every area is 0 or there is one box; None for no box."""
    if not boxes:
        return None
    best, best_area = 0, np.float32(0)
    if len(boxes) > 1:
        for i, b in enumerate(boxes):
            area = (b[2] - b[0]) * (b[3] - b[1])
            if area > best_area:
                best, best_area = i, area
    return best


@dataclass(eq=False)
class TrackedPerson:
    """A person of one frame inside the tracker: keypoints (25, 3) float64 (missing x = -1),
    confidence, box (4,) float32 XYXY, track id (None before the first tracking step) and
    one One-Euro filter per joint over (x, y)."""

    keypoints: np.ndarray
    confidence: float
    box: np.ndarray
    track_id: int | None = None
    filters: list = field(default_factory=list)

    @classmethod
    def new(cls, person: Person) -> "TrackedPerson":
        from bdmm_cli.pose.filters import OneEuroFilter

        kp = np.array(person.keypoints, dtype=np.float64)
        return cls(kp, float(person.score), person_box(kp), None, [OneEuroFilter() for _ in range(NUM_JOINTS)])


def similar_joints(current: TrackedPerson, previous: TrackedPerson) -> int:
    """Joints present in both whose OKS-like similarity exceeds 0.5 (section 5, item 3)."""
    area = max(current.box[2] * current.box[3], previous.box[2] * previous.box[3])  # x1*y1, not an area
    count = 0
    for k in range(NUM_JOINTS):
        if current.keypoints[k, 0] != -1 and previous.keypoints[k, 0] != -1:
            d2 = np.sum((current.keypoints[k] - previous.keypoints[k]) ** 2)
            if np.exp(-d2 / (2 * (area + np.spacing(1)) * VARIANCES[k])) > SIMILARITY_THRESHOLD:
                count += 1
    return count


def track_people(previous: list[TrackedPerson], current: list[TrackedPerson], smooth: bool = True) -> list[TrackedPerson]:
    """The authors' ``track_poses``: sort `current` by confidence, match each to an unmatched
    previous person (most similar joints, >= 3), hand over filters, smooth, recompute boxes.
    Returns the sorted list (the order the selection then sees)."""
    current = sorted(current, key=lambda p: p.confidence, reverse=True)
    free = [True] * len(previous)
    for person in current:
        best, best_count, best_track = None, 0, None
        for i, prev in enumerate(previous):
            if not free[i]:
                continue
            n = similar_joints(person, prev)
            if n > best_count:
                best, best_count, best_track = i, n, prev.track_id
        if best_count >= MIN_SIMILAR_JOINTS:
            free[best] = False
        else:
            best_track = None
        # update_id: a matched id is kept, otherwise a "new" one; the authors' counter never
        # advances (it is written on the instance), so every new id is 0: only None-or-not matters.
        person.track_id = best_track if best_track is not None else 0
        if smooth:
            for k in range(NUM_JOINTS):
                if person.keypoints[k, 0] == -1:
                    continue
                if best_track is not None and previous[best].keypoints[k, 0] != -1:
                    person.filters[k] = previous[best].filters[k]
                person.keypoints[k, :2] = person.filters[k](person.keypoints[k, :2])
            person.box = person_box(person.keypoints)
    return current


class PersonTracker:
    """The authors' video runner after decoding: per frame, track (from the second frame on),
    then keep the person with the largest box; `previous` = all of this frame's people.

    With a ``follower`` (``pose.follow.PersonFollower``) the selection step picks one person
    once and follows it (bdmm's rule for clips with several people) instead of taking the
    largest box of every frame; the tracking and One-Euro smoothing stay the authors'.

    Call with the frame's decoded people; returns the selected person's (25, 3) float64
    keypoints (missing (-1, -1, 0)) and its box, or None when nobody is there.
    """

    def __init__(self, smooth: bool = True, follower=None) -> None:
        self.smooth = smooth
        self.follower = follower
        self.previous: list[TrackedPerson] | None = None

    def __call__(self, people: list[Person]) -> tuple[np.ndarray, np.ndarray] | None:
        current = [TrackedPerson.new(p) for p in people]
        if self.previous is not None:
            current = track_people(self.previous, current, smooth=self.smooth)
        self.previous = current
        if self.follower is not None:
            index = self.follower(np.array([p.box for p in current]).reshape(-1, 4),
                                  np.array([p.keypoints for p in current]).reshape(-1, NUM_JOINTS, 3))
        else:
            index = select_max_box([p.box for p in current])
        if index is None:
            return None
        return current[index].keypoints.copy(), current[index].box.copy()


# =============================================================================================
# The bdmm detector
# =============================================================================================

def to_body25(keypoints: np.ndarray) -> Body25:
    """(25, 3) with missing (-1, -1, 0) -> Body25 with missing (0, 0, 0)."""
    kp = np.array(keypoints, dtype=np.float64)
    kp[kp[:, 0] == -1] = 0.0
    return Body25(kp.astype(np.float32))


def _net_device(net: nn.Module) -> torch.device:
    for t in list(net.parameters()) + list(net.buffers()):
        return t.device
    return torch.device("cpu")


class TrackedDetector:
    """What the detectors that find every person share (OpenPose's, DWPose's): in video mode
    the authors' tracker and One-Euro smoothing (``PersonTracker``), with a ``follower``
    (``pose.follow.PersonFollower``) choosing the person; for a photo the largest box.
    Subclasses implement ``detect_batch(images)`` and call :meth:`_select` on each frame's
    people (``Person`` records). ``people_in_last``: people found in the last frame."""

    def __init__(self, video: bool, smooth: bool, follower=None) -> None:
        self.video = video
        self.smooth = smooth and video
        self.follower = follower if video else None
        self._tracker = PersonTracker(smooth=self.smooth, follower=self.follower) if video else None
        self.people_in_last = 0

    @property
    def mode_name(self) -> str:
        """The mode's part of the detector's cache name: video / image, smoothed, followed."""
        follow = "" if self.follower is None else f"-follow{self.follower.person or ''}"
        return f"{'video' if self.video else 'image'}{'-s' if self.smooth else ''}{follow}"

    @property
    def smooths_keypoints(self) -> bool:
        """True when the keypoints come out already smoothed (video mode, smoothing on)."""
        return self.smooth

    def __call__(self, image: np.ndarray) -> Body25 | None:
        return self.detect_batch([image])[0]

    def detect_batch(self, images: list[np.ndarray]) -> list[Body25 | None]:
        raise NotImplementedError

    def _select(self, people: list[Person]) -> Body25 | None:
        self.people_in_last = len(people)
        if self._tracker is not None:
            chosen = self._tracker(people)
            return None if chosen is None else to_body25(chosen[0])
        index = select_max_box([person_box(p.keypoints) for p in people])
        return None if index is None else to_body25(people[index].keypoints)


class OpenPoseDetector(TrackedDetector):
    """OpenPose BODY_25 as a bdmm ``KeypointDetector`` (``__call__(rgb uint8 (H, W, 3)) -> Body25 | None``).

    Args:
        net: an ``nn.Module`` with OpenPoseBody25's forward contract (``load_openpose`` or a
            stand-in in tests); it runs where its parameters are.
        video: True: consecutive frames of one video, tracked and smoothed across calls as
            the authors' video runner does (frames 0 and 1 raw, One-Euro from frame 2; the
            largest box among the tracked people); False: their single-image path (the
            largest box, no state).
        smooth: the One-Euro smoothing of video mode (tracking itself always runs).
        follower: video mode: a ``pose.follow.PersonFollower`` that picks one person and
            follows it; None: the authors' largest box in every frame.

    ``people_in_last`` is the number of people found in the last frame.
    :meth:`detect_batch` runs the network on several frames in one call (same result as
    calling one frame after another, up to float rounding of batched convolutions).
    """

    name_prefix = "openpose-body25"

    def __init__(self, net: nn.Module, video: bool = True, smooth: bool = True, name: str | None = None,
                 follower=None) -> None:
        super().__init__(video, smooth, follower)
        self.net = net.eval()
        self.name = name or f"{self.name_prefix}-{self.mode_name}"

    def detect_batch(self, images: list[np.ndarray]) -> list[Body25 | None]:
        """Frames in order -> one Body25 | None each; the network runs once per run of
        consecutive frames of equal size."""
        inputs = [preprocess_openpose(im) for im in images]
        outputs: list[tuple[torch.Tensor, torch.Tensor]] = []
        device = _net_device(self.net)
        start = 0
        while start < len(inputs):
            stop = start + 1
            while stop < len(inputs) and inputs[stop].tensor.shape == inputs[start].tensor.shape:
                stop += 1
            x = torch.cat([inp.tensor for inp in inputs[start:stop]]).to(device)
            with torch.no_grad():
                heatmaps, pafs = self.net(x)
            heatmaps, pafs = heatmaps.float().cpu(), pafs.float().cpu()
            outputs += [(heatmaps[i:i + 1], pafs[i:i + 1]) for i in range(stop - start)]
            start = stop
        return [self._select(decode_people(h, p, inp.scale, inp.pad, im.shape))
                for (h, p), inp, im in zip(outputs, inputs, images)]


__all__ = [
    "LIMB_JOINTS", "LIMB_PAFS", "OpenPoseBody25", "OpenPoseDetector", "OpenPoseInput", "Person",
    "PersonTracker", "TrackedDetector", "decode_body25", "decode_people", "find_peaks", "load_openpose",
    "preprocess_openpose", "select_max_box", "track_people", "upsample_maps",
]
