"""DWPose on onnxruntime: YOLOX person boxes, DWPose whole-body keypoints, BODY_25, tracking.

    models = load_dwpose()                              # the two ONNX files `bdmm setup` installed
    detector = DWPoseDetector(models, video=True)       # a KeypointDetector: Body25 | None per frame
    people = models.detect_people(frames)               # [[Person (BODY_25, score), ...] per frame]

The two files are the ones DWPose publishes (``yzd-v/DWPose`` on the Hugging Face Hub,
Apache-2.0) and that its ControlNet annotator runs:

- ``yolox_l.onnx``: Megvii's YOLOX-L (COCO, 80 classes), input ``(N, 3, 640, 640)`` float
  0-255, output ``(N, 8400, 85)`` raw head output (centre offsets, log sizes, objectness,
  80 class scores) on the strides 8, 16 and 32 grids; no NMS inside.
- ``dw-ll_ucoco_384.onnx``: DWPose-L (RTMPose-L distilled on COCO-WholeBody + UBody), input
  ``(N, 3, 384, 288)`` normalised crops, outputs SimCC vectors ``(N, 133, 576)`` (x) and
  ``(N, 133, 768)`` (y), two bins per input pixel.

The steps restate DWPose's annotator (``ControlNet-v1-1-nightly/annotator/dwpose``) and
``rtmlib`` (which repackages the same steps); bdmm does not depend on rtmlib because rtmlib
requires the GUI builds ``opencv-python`` and ``opencv-contrib-python``, which clash with the
``opencv-python-headless`` this project installs (both provide ``cv2``):

1. **Person boxes** (:func:`letterbox`, :func:`decode_yolox`): the frame scaled by
   ``r = min(640 / H, 640 / W)`` (``cv2.resize``, bilinear), pasted top-left on a 640 x 640
   canvas of grey 114; grid offsets and strides added, sizes exponentiated, boxes divided by
   ``r``; score = objectness x person-class score; NMS at IoU 0.45 over candidates above
   0.1, then boxes above 0.3 kept. The frame goes in as RGB, as the annotator feeds it.
2. **Keypoints** (:func:`crop_person`, :func:`decode_simcc`): each box enlarged 1.25 x about
   its centre, widened or heightened to the 288:384 aspect, cut out with ``cv2.warpAffine``
   (bilinear) to 288 x 384, normalised with ImageNet's mean (123.675, 116.28, 103.53) and
   std (58.395, 57.12, 57.375); per point, the argmax of each SimCC vector / 2 is its place in
   the crop, and the mean of the two maxima its score; mapped back through the crop.
3. **BODY_25** (``wholebody.body25_from_wholebody``): 17 body + 6 foot points, Neck and
   MidHip as midpoints, scores below 0.3 or points outside the image missing.
4. **One person, smoothed** (:class:`DWPoseDetector`): every frame's people go through the
   same tracker as OpenPose's (``openpose.PersonTracker``: the authors' matching, One-Euro
   filters handed over per joint from frame 2 on, the largest box kept), so ``--keypoints
   dwpose`` follows and smooths one person exactly as ``--keypoints openpose`` does. A
   person's confidence (which orders the matching) is the sum of its BODY_25 confidences.

Batching: both networks run on every frame (and every person) of a ``detect_batch`` call in
one session run when the file's batch dimension is dynamic, else one item at a time (Megvii's
export script and the DWPose files fix the batch to 1 unless exported with dynamic axes; a
re-export with a dynamic batch is used batched as it is). Device: onnxruntime's CUDA provider when the
stage runs on CUDA and the installed onnxruntime has it (``pip install onnxruntime-gpu``),
else its CPU provider.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bdmm_cli.errors import CheckpointError, MissingResourceError
from bdmm_cli.pose.body25 import Body25
from bdmm_cli.pose.openpose import TrackedDetector
from bdmm_cli.pose.wholebody import MIN_SCORE, NUM_WHOLEBODY, body25_from_wholebody

#: registry names of the two files (installed by `bdmm setup`)
DET_WEIGHTS = "dwpose-det"
POSE_WEIGHTS = "dwpose-pose"
DET_FILE = "yolox_l.onnx"
POSE_FILE = "dw-ll_ucoco_384.onnx"

DET_SIZE = (640, 640)            # (H, W) of YOLOX's input
DET_STRIDES = (8, 16, 32)
DET_CLASSES = 80
DET_PAD_VALUE = 114
NMS_IOU = 0.45
CANDIDATE_SCORE = 0.1            # NMS input threshold (the annotator's)
PERSON_SCORE = 0.3               # boxes kept after NMS (the annotator's)
POSE_SIZE = (384, 288)           # (H, W) of DWPose's input
SIMCC_SPLIT = 2.0                # SimCC bins per input pixel
BOX_PADDING = 1.25
POSE_MEAN = np.array([123.675, 116.28, 103.53], dtype=np.float32)
POSE_STD = np.array([58.395, 57.12, 57.375], dtype=np.float32)


def det_anchors() -> int:
    """Rows of YOLOX's output: one per cell of the stride 8, 16 and 32 grids (8400 at 640)."""
    return sum((DET_SIZE[0] // s) * (DET_SIZE[1] // s) for s in DET_STRIDES)


# =============================================================================================
# 1. Person boxes (YOLOX)
# =============================================================================================

def letterbox(image: np.ndarray) -> tuple[np.ndarray, float]:
    """(H, W, 3) uint8 -> ((3, 640, 640) float32 0-255, r): scaled by r, top-left, grey 114 around."""
    import cv2

    h, w = image.shape[:2]
    r = min(DET_SIZE[0] / h, DET_SIZE[1] / w)
    canvas = np.full((DET_SIZE[0], DET_SIZE[1], 3), DET_PAD_VALUE, dtype=np.uint8)
    nh, nw = int(h * r), int(w * r)
    canvas[:nh, :nw] = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_LINEAR)
    return np.ascontiguousarray(canvas.transpose(2, 0, 1), dtype=np.float32), r


def _grid() -> tuple[np.ndarray, np.ndarray]:
    cells, strides = [], []
    for s in DET_STRIDES:
        hs, ws = DET_SIZE[0] // s, DET_SIZE[1] // s
        xv, yv = np.meshgrid(np.arange(ws), np.arange(hs))
        cells.append(np.stack([xv, yv], axis=2).reshape(-1, 2))
        strides.append(np.full((hs * ws, 1), s))
    return np.concatenate(cells).astype(np.float64), np.concatenate(strides).astype(np.float64)


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> list[int]:
    """Greedy NMS, highest score first; box areas counted with YOLOX's +1 pixel convention."""
    x1, y1, x2, y2 = boxes.T
    areas = (x2 - x1 + 1) * (y2 - y1 + 1)
    order = scores.argsort()[::-1]
    keep = []
    while order.size:
        i = order[0]
        keep.append(int(i))
        rest = order[1:]
        w = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]) + 1)
        h = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]) + 1)
        inter = w * h
        order = rest[inter / (areas[i] + areas[rest] - inter) <= iou]
    return keep


def decode_yolox(output: np.ndarray, r: float) -> np.ndarray:
    """One image's YOLOX output (8400, 85) -> (P, 5) person boxes ``x1, y1, x2, y2, score`` in
    image pixels (frame = canvas / r), by descending score."""
    out = np.asarray(output, dtype=np.float64)
    cells, strides = _grid()
    centre = (out[:, :2] + cells) * strides
    size = np.exp(out[:, 2:4]) * strides
    boxes = np.concatenate([centre - size / 2, centre + size / 2], axis=1) / r
    scores = out[:, 4] * out[:, 5]  # objectness x class 0 (person)
    cand = scores > CANDIDATE_SCORE
    boxes, scores = boxes[cand], scores[cand]
    keep = nms(boxes, scores, NMS_IOU) if len(scores) else []
    dets = np.concatenate([boxes[keep], scores[keep, None]], axis=1) if keep else np.zeros((0, 5))
    return dets[dets[:, 4] > PERSON_SCORE]


# =============================================================================================
# 2. Whole-body keypoints (DWPose)
# =============================================================================================

@dataclass(frozen=True)
class CropBox:
    """Where a person's 288 x 384 crop sits in the frame: centre (x, y) and size (w, h) in frame
    pixels (w / h = 288 / 384)."""

    center: np.ndarray
    size: np.ndarray

    def matrix(self) -> np.ndarray:
        """(2, 3) affine frame -> crop (uniform scale, no rotation)."""
        s = POSE_SIZE[1] / self.size[0]
        return np.array([[s, 0.0, POSE_SIZE[1] / 2 - s * self.center[0]],
                         [0.0, s, POSE_SIZE[0] / 2 - s * self.center[1]]])

    def to_frame(self, xy: np.ndarray) -> np.ndarray:
        """(..., 2) crop pixels -> frame pixels."""
        return xy / np.array([POSE_SIZE[1], POSE_SIZE[0]]) * self.size + self.center - self.size / 2


def crop_box(box: np.ndarray) -> CropBox:
    """A person box ``x1, y1, x2, y2`` -> its crop: 1.25 x about the centre, then the shorter side
    grown to the 288:384 aspect."""
    x1, y1, x2, y2 = (float(v) for v in box[:4])
    center = np.array([x1 + x2, y1 + y2]) / 2
    w, h = (x2 - x1) * BOX_PADDING, (y2 - y1) * BOX_PADDING
    aspect = POSE_SIZE[1] / POSE_SIZE[0]
    size = np.array([w, w / aspect]) if w > h * aspect else np.array([h * aspect, h])
    return CropBox(center, size)


def crop_person(image: np.ndarray, box: CropBox) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> (3, 384, 288) float32 normalised crop."""
    import cv2

    crop = cv2.warpAffine(image, box.matrix(), (POSE_SIZE[1], POSE_SIZE[0]), flags=cv2.INTER_LINEAR)
    return np.ascontiguousarray(((crop.astype(np.float32) - POSE_MEAN) / POSE_STD).transpose(2, 0, 1))


def decode_simcc(simcc_x: np.ndarray, simcc_y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(K, Wx), (K, Wy) SimCC vectors -> ((K, 2) crop pixels, (K,) scores = mean of the two maxima)."""
    x = np.asarray(simcc_x, dtype=np.float32)
    y = np.asarray(simcc_y, dtype=np.float32)
    locs = np.stack([x.argmax(1), y.argmax(1)], axis=1).astype(np.float64) / SIMCC_SPLIT
    scores = 0.5 * (x.max(1).astype(np.float64) + y.max(1).astype(np.float64))
    return locs, scores


# =============================================================================================
# 3. The two networks
# =============================================================================================

def _dims(shape) -> list:
    return [d if isinstance(d, int) else None for d in shape]


def _check_signature(session, path: Path, want_in: tuple, want_out: list[tuple], what: str) -> bool:
    """Check an ONNX session's input/outputs against the published file's; True when the batch
    dimension is dynamic. CheckpointError naming the difference otherwise."""
    ins, outs = session.get_inputs(), session.get_outputs()

    def fits(dims: list, want: tuple) -> bool:
        return len(dims) == len(want) and all(d is None or d == w for d, w in zip(dims[1:], want[1:]))

    if len(ins) != 1 or not fits(_dims(ins[0].shape), want_in):
        got = [tuple(i.shape) for i in ins]
        raise CheckpointError(f"{path} is not {what}: its input is {got}, expected one of shape (N, {', '.join(map(str, want_in[1:]))})")
    if len(outs) < len(want_out) or not all(fits(_dims(o.shape), w) for o, w in zip(outs, want_out)):
        got = [tuple(o.shape) for o in outs]
        expected = ", ".join("(N, " + ", ".join(map(str, w[1:])) + ")" for w in want_out)
        raise CheckpointError(f"{path} is not {what}: its outputs are {got}, expected {expected}")
    batch = ins[0].shape[0]
    return not isinstance(batch, int)


def onnx_providers(device) -> list[str]:
    """onnxruntime providers for a torch-style device: CUDA first when asked for and available."""
    import onnxruntime as ort

    available = ort.get_available_providers()
    if str(device).startswith("cuda") and "CUDAExecutionProvider" in available:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def _session(path: Path, device, threads: int | None):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only: no start-up chatter on stderr
    if threads:
        options.intra_op_num_threads = threads
    try:
        return ort.InferenceSession(str(path), sess_options=options, providers=onnx_providers(device))
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own exception types for bad files
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{path} is not a readable ONNX model ({first})") from None


#: registry name -> (input shape, output shapes, what it is); batch dims are 1 here, any size accepted.
SIGNATURES = {
    DET_WEIGHTS: ((1, 3, *DET_SIZE), [(1, det_anchors(), 5 + DET_CLASSES)], "a YOLOX detector (yolox_l.onnx)"),
    POSE_WEIGHTS: ((1, 3, *POSE_SIZE), [(1, NUM_WHOLEBODY, int(POSE_SIZE[1] * SIMCC_SPLIT)),
                                        (1, NUM_WHOLEBODY, int(POSE_SIZE[0] * SIMCC_SPLIT))],
                   "a DWPose whole-body model (dw-ll_ucoco_384.onnx)"),
}


def open_onnx(name: str, path: str | Path, device="cpu", threads: int | None = None):
    """(session, batch dimension dynamic) for ``dwpose-det`` / ``dwpose-pose``, its signature checked
    (the strict loader `bdmm setup` also uses); CheckpointError otherwise."""
    want_in, want_out, what = SIGNATURES[name]
    try:
        import onnxruntime  # noqa: F401
    except ImportError as exc:
        raise MissingResourceError("DWPose needs onnxruntime: pip install onnxruntime "
                                   "(or onnxruntime-gpu for CUDA)") from exc
    session = _session(Path(path), device, threads)
    return session, _check_signature(session, Path(path), want_in, want_out, what)


class DWPoseModels:
    """The two ONNX sessions, loaded and checked against the published files' signatures.

    Args:
        det_path: ``yolox_l.onnx`` (or a stand-in with the same input/output signature).
        pose_path: ``dw-ll_ucoco_384.onnx`` (same).
        device: "cpu", "cuda", "cuda:0", ...: onnxruntime's CUDA provider when available.
        threads: onnxruntime intra-op threads (None: its default).

    Attributes:
        name: identifies both files (their sha256 prefixes), for cache keys.
        providers: the providers the sessions run on.
    """

    def __init__(self, det_path: str | Path, pose_path: str | Path, device="cpu", threads: int | None = None) -> None:
        from bdmm_cli.fileio import sha256_file

        self.det_path, self.pose_path = Path(det_path), Path(pose_path)
        self.det, self.det_batched = open_onnx(DET_WEIGHTS, self.det_path, device, threads)
        self.pose, self.pose_batched = open_onnx(POSE_WEIGHTS, self.pose_path, device, threads)
        self.providers = self.det.get_providers()
        self.name = f"dwpose-{sha256_file(self.det_path)[:12]}-{sha256_file(self.pose_path)[:12]}"

    def _run(self, session, batched: bool, x: np.ndarray) -> list[np.ndarray]:
        name = session.get_inputs()[0].name
        if batched or len(x) == 1:
            return session.run(None, {name: x})
        parts = [session.run(None, {name: x[i:i + 1]}) for i in range(len(x))]
        return [np.concatenate([p[k] for p in parts]) for k in range(len(parts[0]))]

    def detect_boxes(self, images: list[np.ndarray]) -> list[np.ndarray]:
        """Frames (H, W, 3) uint8 RGB -> per frame (P, 5) person boxes ``x1, y1, x2, y2, score``."""
        if not images:
            return []
        inputs = [letterbox(im) for im in images]
        out = self._run(self.det, self.det_batched, np.stack([x for x, _ in inputs]))[0]
        return [decode_yolox(out[i], r) for i, (_, r) in enumerate(inputs)]

    def wholebody(self, images: list[np.ndarray], boxes: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per frame, its boxes -> ((P, 133, 2) frame pixels, (P, 133) scores); all crops of all
        frames in one run when batched."""
        crops, where = [], []
        for f, (im, bx) in enumerate(zip(images, boxes)):
            for b in bx:
                cb = crop_box(b)
                crops.append(crop_person(im, cb))
                where.append((f, cb))
        result = [(np.zeros((0, NUM_WHOLEBODY, 2)), np.zeros((0, NUM_WHOLEBODY))) for _ in images]
        if not crops:
            return result
        simcc_x, simcc_y = self._run(self.pose, self.pose_batched, np.stack(crops))[:2]
        per_frame: dict[int, list] = {}
        for i, (f, cb) in enumerate(where):
            locs, scores = decode_simcc(simcc_x[i], simcc_y[i])
            per_frame.setdefault(f, []).append((cb.to_frame(locs), scores))
        for f, rows in per_frame.items():
            result[f] = (np.stack([r[0] for r in rows]), np.stack([r[1] for r in rows]))
        return result

    def detect_people(self, images: list[np.ndarray], min_score: float = MIN_SCORE) -> list[list]:
        """Frames -> per frame a list of ``openpose.Person`` (BODY_25 (25, 3) with missing
        (-1, -1, 0), confidence = sum of its BODY_25 confidences), in box order."""
        from bdmm_cli.pose.openpose import Person as OpenPosePerson

        boxes = self.detect_boxes(images)
        out = []
        for im, (kps, scores) in zip(images, self.wholebody(images, boxes)):
            people = []
            for kp, sc in zip(kps, scores):
                body = body25_from_wholebody(kp, sc, (im.shape[1], im.shape[0]), min_score)
                if not (body[:, 2] > 0).any():
                    continue
                body[body[:, 2] <= 0] = (-1.0, -1.0, 0.0)
                people.append(OpenPosePerson(body, float(body[:, 2].sum())))
            out.append(people)
        return out


def installed_dwpose(strict: bool = False) -> tuple[Path, Path] | None:
    """The two installed files (``bdmm setup``), or None when either is missing. No network.
    An installed file that changed since is None too, or its CheckpointError with `strict`."""
    from bdmm_cli.hub.installed import installed_path

    try:
        det, pose = installed_path(DET_WEIGHTS), installed_path(POSE_WEIGHTS)
    except CheckpointError:
        if strict:
            raise
        return None
    return (det, pose) if det is not None and pose is not None else None


def dwpose_available() -> bool:
    """Both files installed and onnxruntime importable."""
    import importlib.util

    return importlib.util.find_spec("onnxruntime") is not None and installed_dwpose() is not None


def load_dwpose(det: str | Path | None = None, pose: str | Path | None = None, device="cpu") -> DWPoseModels:
    """The installed files (or the given paths) as :class:`DWPoseModels`; MissingResourceError
    saying `bdmm setup` when they are not installed."""
    if det is None or pose is None:
        found = installed_dwpose(strict=True)
        if found is None:
            raise MissingResourceError(
                "DWPose's files (yolox_l.onnx, dw-ll_ucoco_384.onnx) are not installed: run "
                "`bdmm setup --accept-licenses` (downloads them, Apache-2.0) or `bdmm setup --from yolox_l.onnx "
                "--from dw-ll_ucoco_384.onnx`")
        det, pose = det or found[0], pose or found[1]
    return DWPoseModels(det, pose, device=device)


# =============================================================================================
# 4. The bdmm detector
# =============================================================================================

class DWPoseDetector(TrackedDetector):
    """DWPose as a bdmm ``KeypointDetector`` (``__call__(rgb uint8 (H, W, 3)) -> Body25 | None``).

    Args:
        models: :class:`DWPoseModels`.
        video: True: consecutive frames of one video, tracked and smoothed across calls by the
            authors' tracker (``openpose.PersonTracker``: frames 0 and 1 raw, One-Euro from
            frame 2); False: one photo (the largest box, no state).
        smooth: the One-Euro smoothing of video mode.
        min_score: DWPose scores below it are missing joints.
        follower: video mode: a ``pose.follow.PersonFollower`` that picks one person and
            follows it; None: the largest box in every frame.
    """

    def __init__(self, models: DWPoseModels, video: bool = True, smooth: bool = True, min_score: float = MIN_SCORE,
                 follower=None) -> None:
        super().__init__(video, smooth, follower)
        self.models = models
        self.min_score = float(min_score)
        self.name = f"{models.name}-m{self.min_score:g}-{self.mode_name}"

    def detect_batch(self, images: list[np.ndarray]) -> list[Body25 | None]:
        """Frames in order -> one Body25 | None each (both networks batched over the frames)."""
        for im in images:
            if im.ndim != 3 or im.shape[2] != 3 or im.dtype != np.uint8:
                raise ValueError(f"expected (H, W, 3) uint8 RGB images, got {im.shape} {im.dtype}")
        return [self._select(people) for people in self.models.detect_people(images, self.min_score)]

__all__ = [
    "CropBox", "DET_FILE", "DET_WEIGHTS", "DWPoseDetector", "DWPoseModels", "POSE_FILE", "POSE_WEIGHTS",
    "crop_box", "crop_person", "decode_simcc", "decode_yolox", "det_anchors", "dwpose_available",
    "installed_dwpose", "letterbox", "load_dwpose", "nms", "onnx_providers", "open_onnx",
]
