"""The pose front-end as one streaming stage: frame -> keypoints -> crop -> SPIN -> smoothing.

    estimator = PoseEstimator(load_pose_regressor("spin"))
    for frame in estimate_video("dance.mp4", estimator):    # streaming, cached
        frame.index, frame.image (256, 256, 3), frame.pose  # FramePose, or None: nobody there

Per frame (``docs/data_path.md`` sections 5 and 6):

1. BODY_25 keypoints in the frame (the detector: the authors' OpenPose when the estimator
   has its network, ``openpose.py``; else MediaPipe Pose keeping the largest person,
   ``largest.py``).
2. One-Euro smoothing of the keypoints in the authors' order (frames 0 and 1 raw, filters
   from frame 2; ``filters.KeypointSmoother``; with OpenPose this is done inside its
   detector, in the authors' tracker order, and not repeated here); the per-frame box is
   the min/max of the SMOOTHED detected joints, as in the authors' tracker.
3. The crop window (running union of boxes, or smoothed per-frame box), edge pad,
   resize to 256; keypoints and box mapped into the crop.
4. SPIN's 224 crop around the box, HMR in batches, camera converted to the 256 frame.
5. Optional: the authors' SMPLify (``smplify.py``: 64-frame batches, GMM prior, camera
   fixed) and the authors' head-size frame filter (``validity.py``); then bdmm's own
   smoothing of the SMPL parameters on rotations (not in the authors' code).

A frame without a person is yielded with ``pose=None`` (its image is the current crop
window) and its index is listed in ``stream.missing``; nothing is guessed for it.
Results are cached per input content hash + settings in ``cache_dir()/pose``.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from bdmm_cli.dataset.kptsmpl import FramePose
from bdmm_cli.dataset.pose_dir import (
    CACHE_FORMAT,
    PosedFrame,
    record_pose_cache,
    replay_pose_cache,
)
from bdmm_cli.errors import InputError
from bdmm_cli.fileio import content_hash, module_hash
from bdmm_cli.pose.body25 import Body25
from bdmm_cli.pose.crop import CropTracker, crop_to_square, map_keypoints
from bdmm_cli.pose.detector import KeypointDetector
from bdmm_cli.pose.filters import ONE_EURO_FREQ, KeypointSmoother, SmplSmoother, keypoint_box
from bdmm_cli.pose.hmr import HMR
from bdmm_cli.pose.spin_crop import spin_cam_to_frame, spin_crop
from bdmm_cli.timing import Timer

FRAME_SIZE = 256
#: PosedFrame.dropped of a frame removed by the authors' head-size rule.
HEAD_TOO_SMALL = "head too small"


@dataclass(frozen=True)
class PoseConfig:
    """Settings of the pose front-end (all part of the cache key).

    Attributes:
        crop_mode: "union" (the authors': running union of the boxes) or "smoothed".
        crop_factor: box height enlargement before squaring (1.3).
        missing_joints: "official" (missing joints mapped from OpenPose's (-1, -1) like
            the authors' data, which the released weights saw) or "zero" ((0, 0, 0):
            no heatmap blob; for weights trained that way).
        smooth_keypoints: One-Euro filter on the keypoints.
        smooth_smpl: causal smoothing of SMPL on rotations, shape and camera.
        refine: the authors' SMPLify (``smplify.py``: GMM prior, 64-frame batches, camera
            fixed); needs the body model and the GMM prior.
        refine_batch: frames with a person per SMPLify problem (the authors': 64).
        head_filter: the authors' frame-validity rule (``validity.py``): frames whose fitted
            head box is not more than 10 x 10 px at 512 are dropped; needs the body model.
        min_visibility: detector joints below this confidence are missing.
        batch_size: frames per HMR batch (bounds the memory of the stream).
        filter_freq: One-Euro sampling frequency (the authors use 15 for every video).
        largest_person: MediaPipe: find every person (``largest.LargestPersonDetector``:
            MediaPipe's multi-person landmarker, legacy tracker as fallback) and choose
            among them; False: MediaPipe's legacy single-person tracker alone, which follows
            whoever its detector reports first.
        person: which person of a video is followed (``follow.PersonFollower``, every
            detector): None = the largest in the first frame where anyone is found, N = the
            N-th from the left there (1-based); that person is then followed by position, size
            and keypoints, and frames where it is not found have no pose (a gap).
    """

    crop_mode: str = "union"
    crop_factor: float = 1.3
    missing_joints: str = "official"
    smooth_keypoints: bool = True
    smooth_smpl: bool = True
    refine: bool = False
    refine_batch: int = 64
    head_filter: bool = False
    min_visibility: float = 0.5
    batch_size: int = 8
    filter_freq: float = ONE_EURO_FREQ
    largest_person: bool = True
    person: int | None = None

    def __post_init__(self) -> None:
        if self.person is not None and self.person < 1:
            raise ValueError("person must be 1 or more (1 = the leftmost)")
        if self.crop_mode not in ("union", "smoothed"):
            raise ValueError(f"crop_mode must be 'union' or 'smoothed', got {self.crop_mode!r}")
        if self.missing_joints not in ("official", "zero"):
            raise ValueError(f"missing_joints must be 'official' or 'zero', got {self.missing_joints!r}")
        if self.batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        if self.refine_batch < 1:
            raise ValueError("refine_batch must be >= 1")


#: Run-summary names of the keypoint detectors (``PoseEstimator.keypoints_kind``).
KEYPOINT_DESCRIPTIONS = {"openpose": "OpenPose BODY_25", "dwpose": "DWPose (COCO-WholeBody mapped to BODY_25)",
                         "mediapipe": "MediaPipe Pose (mapped to BODY_25)"}


class PoseEstimator:
    """Detector + HMR (+ optional body model for refinement) with one configuration.

    Args:
        hmr: the SPIN regressor (:class:`HMR`, e.g. from ``bdmm_cli.pose.hmr.load_pose_regressor``).
        detector: a KeypointDetector used as is, or None for a fresh detector per input
            (tracking mode for videos, single-image mode for photos): OpenPose when
            `openpose` is given, MediaPipe Pose otherwise.
        config: PoseConfig.
        body_model: a ``bdmm_cli.body.BodyModel``, needed when ``config.refine`` or
            ``config.head_filter``.
        device: where HMR (and SMPLify) run.
        prior: SMPLify's GMM pose prior (``bdmm_cli.pose.gmm.load_gmm_prior()``), needed
            when ``config.refine``.
        openpose: an ``OpenPoseBody25`` (``pose.detector.load_keypoint_model``): keypoints
            from the authors' OpenPose, tracked and smoothed as their video runner does
            (so the stage does not smooth them again), batched over ``batch_size`` frames.
        dwpose: a ``dwpose.DWPoseModels`` (``pose.detector.load_keypoint_model``): DWPose's
            keypoints mapped onto BODY_25, tracked and smoothed like OpenPose's, batched the same.
    """

    def __init__(
        self,
        hmr: HMR,
        detector: KeypointDetector | None = None,
        config: PoseConfig = PoseConfig(),
        body_model=None,
        device: str | torch.device = "cpu",
        openpose: torch.nn.Module | None = None,
        prior=None,
        dwpose=None,
    ) -> None:
        if (config.refine or config.head_filter) and body_model is None:
            raise ValueError("config.refine and config.head_filter need a body_model (bdmm_cli.body.load_body_model())")
        if config.refine and prior is None:
            raise ValueError("config.refine needs SMPLify's GMM prior (bdmm_cli.pose.gmm.load_gmm_prior())")
        self.device = torch.device(device)
        self.hmr = hmr.to(self.device).eval()
        self.detector = detector
        self.config = config
        self.body_model = body_model.to(self.device) if body_model is not None else None
        self.openpose = openpose.to(self.device).eval() if openpose is not None else None
        self.prior = prior.to(self.device) if prior is not None else None
        self.dwpose = dwpose
        self._fingerprint: str | None = None
        #: seconds spent in this estimator: decoding frames, keypoints ("pose"), SMPL fit ("fit").
        self.timings: dict[str, float] = {"decode": 0.0, "pose": 0.0, "fit": 0.0}
        self.last_detector: KeypointDetector | None = None

    def make_detector(self, video: bool) -> KeypointDetector:
        if self.detector is not None:
            return self.detector
        from bdmm_cli.pose.follow import PersonFollower

        follower = PersonFollower(video=True, person=self.config.person) if video else None
        if self.openpose is not None:
            from bdmm_cli.pose.openpose import OpenPoseDetector

            return OpenPoseDetector(self.openpose, video=video, smooth=self.config.smooth_keypoints, follower=follower)
        if self.dwpose is not None:
            from bdmm_cli.pose.dwpose import DWPoseDetector

            return DWPoseDetector(self.dwpose, video=video, smooth=self.config.smooth_keypoints, follower=follower)
        if self.config.largest_person:
            from bdmm_cli.pose.largest import LargestPersonDetector

            return LargestPersonDetector(video=video, min_visibility=self.config.min_visibility, follower=follower)
        from bdmm_cli.pose.detector import MediaPipePoseDetector

        return MediaPipePoseDetector(video=video, min_visibility=self.config.min_visibility)

    @property
    def keypoints_kind(self) -> str:
        """"openpose", "dwpose", "mediapipe", or the name of a detector given by the caller."""
        if self.detector is not None:
            return str(getattr(self.detector, "name", type(self.detector).__name__))
        if self.dwpose is not None:
            return "dwpose"
        return "openpose" if self.openpose is not None else "mediapipe"

    @property
    def keypoints_description(self) -> str:
        """Which keypoint model the stage runs, for run summaries."""
        return KEYPOINT_DESCRIPTIONS.get(self.keypoints_kind, self.keypoints_kind)

    def detector_name(self) -> str:
        if self.detector is not None:
            return str(getattr(self.detector, "name", type(self.detector).__name__))
        if self.openpose is not None:
            return "openpose-body25-authors-tracker-follow"  # + its weights, hashed in fingerprint()
        if self.dwpose is not None:
            return f"{self.dwpose.name}-authors-tracker-follow"  # the sha256 prefixes of both files
        from bdmm_cli.pose.detector import _mp_version

        kind = ""
        if self.config.largest_person:
            from bdmm_cli.pose.largest import MAX_PEOPLE

            kind = f"all{MAX_PEOPLE}-follow-fb-"
        return f"mediapipe-{_mp_version()}-{kind}c1-v{self.config.min_visibility:g}"

    def configured(self, **changes) -> "PoseEstimator":
        """This estimator with some ``PoseConfig`` fields changed (e.g. ``person``): the same
        networks and the same ``timings``; itself when nothing changes."""
        if all(getattr(self.config, k) == v for k, v in changes.items()):
            return self
        other = copy.copy(self)
        other.config = dataclasses.replace(self.config, **changes)
        other._fingerprint = None
        other.last_detector = None
        return other

    def follow_report(self):
        """Who the last video was followed through (``follow.FollowReport``), or None when
        the detector has no follower (a detector given by the caller)."""
        follower = getattr(self.last_detector, "follower", None)
        return None if follower is None else follower.report

    def people_in_last_image(self) -> int | None:
        """People the detector found in the last image it saw (None: it does not say)."""
        return getattr(self.last_detector, "people_in_last", None)

    def fingerprint(self) -> str:
        """Hash of everything that determines the output besides the input itself."""
        if self._fingerprint is None:
            h = hashlib.sha256()
            h.update(json.dumps(dataclasses.asdict(self.config), sort_keys=True).encode())
            h.update(self.detector_name().encode())
            for module in (self.hmr, self.body_model, self.openpose, self.prior):
                if module is not None:
                    h.update(module_hash(module).encode())
            self._fingerprint = h.hexdigest()
        return self._fingerprint

    # -- the stage --------------------------------------------------------------------------

    def process(self, frames: Iterator[np.ndarray], video: bool = True, start_index: int = 0) -> Iterator[PosedFrame]:
        """Run the stage over frames (streaming; at most `batch_size` frames held, or one
        SMPLify batch of `refine_batch` frames with a person when refining).

        Args:
            frames: (H, W, 3) uint8 RGB frames.
            video: consecutive frames of one video (tracking detector, temporal filters).
            start_index: index of the first frame.
        """
        cfg = self.config
        detector = self.make_detector(video)
        self.last_detector = detector
        own_detector = detector is not self.detector
        timer = Timer(self.timings)
        already_smooth = getattr(detector, "smooths_keypoints", False)  # OpenPose's own tracker
        kp_smoother = KeypointSmoother(cfg.filter_freq) if cfg.smooth_keypoints and not already_smooth else None
        smpl_smoother = SmplSmoother(cfg.filter_freq) if cfg.smooth_smpl else None
        tracker = CropTracker(cfg.crop_mode, cfg.crop_factor, cfg.filter_freq)
        pending: list[dict] = []   # prepared, SPIN not run yet
        ready: list[dict] = []     # SPIN done, waiting for their SMPLify batch
        try:
            for i, frame, body in _detect(timer.iterate("decode", frames), detector, start_index,
                                          cfg.batch_size, timer):
                pending.append(self._prepare(i, frame, body, kp_smoother, tracker))
                if len(pending) >= cfg.batch_size:  # frames with or without a person: memory stays bounded
                    with timer("fit"):
                        ready += self._regress(pending)
                        pending = []
                        released = list(self._release(ready, smpl_smoother, final=False))
                    yield from released
            with timer("fit"):
                ready += self._regress(pending)
                released = list(self._release(ready, smpl_smoother, final=True))
            yield from released
        finally:
            if own_detector and hasattr(detector, "close"):
                detector.close()

    def _prepare(self, index: int, frame: np.ndarray, body: Body25 | None, kp_smoother, tracker) -> dict:
        shape = frame.shape[:2]
        box = body.box_xyxy() if body is not None else None
        if box is not None and (box[2] - box[0] < 1 and box[3] - box[1] < 1):
            body, box = None, None  # a single point is no person
        kps = None
        if body is not None:
            # The authors' order: smooth first, then the box of the smoothed joints feeds the
            # running union, bbox_xyxy and SPIN's crop (docs/data_path.md section 5).
            kps = kp_smoother(body.keypoints) if kp_smoother is not None else body.keypoints
            box = keypoint_box(kps)
        elif kp_smoother is not None:
            kp_smoother.gap()
        window = tracker.update(box, shape)
        crop, transform = crop_to_square(frame, window, FRAME_SIZE)
        item = {"index": index, "image": crop, "spin": None, "source_box": box}
        if body is None:
            return item
        item["keypoints"] = map_keypoints(kps, transform, self.config.missing_joints)
        item["box"] = transform.box_to_crop(box).astype(np.float32)
        try:
            item["spin"] = spin_crop(crop, item["box"])
        except ValueError:
            item["spin"] = None  # degenerate box: treated as no person
        return item

    def _regress(self, pending: list[dict]) -> list[dict]:
        """SPIN on the frames with a person; their SMPL and 256-frame camera go into the items."""
        posed = [p for p in pending if p["spin"] is not None]
        if posed:
            x = torch.stack([p["spin"].image for p in posed]).to(self.device)
            with torch.no_grad():
                out = self.hmr(x)
            scale = torch.tensor([p["spin"].scale for p in posed], dtype=torch.float64)
            start = torch.tensor(np.stack([p["spin"].start_pt for p in posed]), dtype=torch.float64)
            cam = spin_cam_to_frame(out.cam.double().cpu(), scale, start, FRAME_SIZE).float()
            pose, betas = out.pose.float().cpu(), out.betas.float().cpu()
            for j, p in enumerate(posed):
                p["smpl"] = (pose[j], betas[j], cam[j])
                p["spin"] = True  # the crop tensor is no longer needed
        return pending

    def _release(self, ready: list[dict], smpl_smoother, final: bool) -> Iterator[PosedFrame]:
        """Yield the frames of `ready` whose SMPL is final (emptying it as it goes).

        Without refinement every frame is final. With it, the frames with a person are
        refined in the authors' batches: runs of ``refine_batch`` consecutive frames with a
        person (frames without anyone in between are bridged), the last run at the end.
        """
        if not self.config.refine:
            items, ready[:] = list(ready), []
            yield from self._finish(items, smpl_smoother)
            return
        n = self.config.refine_batch
        while True:
            posed_at = [k for k, p in enumerate(ready) if p["spin"] is not None]
            lead = posed_at[0] if posed_at else len(ready)
            if lead:  # frames without anyone before the next batch need nothing from it
                items = ready[:lead]
                del ready[:lead]
                yield from self._finish(items, smpl_smoother)
                continue
            if len(posed_at) >= n:
                cut = posed_at[n - 1] + 1
            elif final and ready:
                cut = len(ready)
            else:
                return
            items = ready[:cut]
            del ready[:cut]
            self._refine([p for p in items if p["spin"] is not None])
            yield from self._finish(items, smpl_smoother)

    def _refine(self, posed: list[dict]) -> None:
        """SMPLify (the authors') on one batch of frames with a person, in place."""
        if not posed:
            return
        from bdmm_cli.pose.smplify import SmplifyConfig, fit_batch

        kps = torch.tensor(np.stack([p["keypoints"] for p in posed]))
        pose = torch.stack([p["smpl"][0] for p in posed])
        betas = torch.stack([p["smpl"][1] for p in posed])
        cam = torch.stack([p["smpl"][2] for p in posed])
        config = SmplifyConfig(batch_size=self.config.refine_batch)
        pose, betas, _, _ = fit_batch(self.body_model, self.prior, kps, cam, pose, betas, config)
        for j, p in enumerate(posed):
            p["smpl"] = (pose[j].cpu(), betas[j].cpu(), p["smpl"][2])

    def _finish(self, items: list[dict], smpl_smoother) -> Iterator[PosedFrame]:
        """The authors' head-size rule (optional), bdmm's SMPL smoothing, then the frames."""
        posed = [p for p in items if p["spin"] is not None]
        if posed and self.config.head_filter:
            from bdmm_cli.pose.validity import valid_head_frames

            keep = valid_head_frames(self.body_model, torch.stack([p["smpl"][0] for p in posed]),
                                     torch.stack([p["smpl"][1] for p in posed]),
                                     torch.stack([p["smpl"][2] for p in posed]))
            for p, k in zip(posed, keep):
                p["dropped"] = None if k else HEAD_TOO_SMALL
        for p in items:
            if p["spin"] is None or p.get("dropped"):
                yield PosedFrame(p["index"], p["image"], None, dropped=p.get("dropped"))
                continue
            theta, beta, cam_j = (t.numpy() for t in p["smpl"])
            if smpl_smoother is not None:
                theta, beta, cam_j = smpl_smoother(theta, beta, cam_j)
            pose_rec = FramePose(keypoints=p["keypoints"], bbox_xyxy=p["box"], cam=cam_j,
                                 pose_theta=theta, shape_beta=beta)
            yield PosedFrame(p["index"], p["image"], pose_rec, source_box=p.get("source_box"))


def _detect(frames: Iterator[np.ndarray], detector, start: int, batch: int,
            timer: Timer) -> Iterator[tuple[int, np.ndarray, Body25 | None]]:
    """(index, frame, keypoints) per frame; a detector with ``detect_batch`` gets `batch` frames
    a call. The detector's time goes to ``timer``'s "pose" stage."""
    many = getattr(detector, "detect_batch", None)
    chunk: list[tuple[int, np.ndarray]] = []
    for i, frame in enumerate(frames, start=start):
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise InputError(f"frame {i}: expected (H, W, 3) uint8 RGB, got {frame.shape} {frame.dtype}")
        if many is None:
            with timer("pose"):
                body = detector(frame)
            yield i, frame, body
            continue
        chunk.append((i, frame))
        if len(chunk) >= batch:
            with timer("pose"):
                bodies = many([f for _, f in chunk])
            yield from ((j, f, b) for (j, f), b in zip(chunk, bodies))
            chunk = []
    if chunk:
        with timer("pose"):
            bodies = many([f for _, f in chunk])
        yield from ((j, f, b) for (j, f), b in zip(chunk, bodies))


# -- photos -------------------------------------------------------------------------------------

def estimate_image(image: str | Path | np.ndarray, estimator: PoseEstimator) -> PosedFrame:
    """Pose of one photo: the crop, keypoints and SMPL (``pose`` None when nobody is found)."""
    from bdmm_cli.video import read_image

    array = read_image(image) if not isinstance(image, np.ndarray) else image
    return next(iter(estimator.process(iter([array]), video=False)))


# -- videos, with the cache ---------------------------------------------------------------------

class PoseStream:
    """Iterator of PosedFrame for a video; after (or during) iteration:

    Attributes:
        missing: indices of the frames where no person was found so far.
        dropped: indices of the frames with a person that were dropped (``PosedFrame.dropped``:
            the authors' head-size rule).
        num_frames: frames yielded so far.
        from_cache: True when the frames come from the cache.
    """

    def __init__(self, source: Iterator[PosedFrame], from_cache: bool, report=None) -> None:
        self._source = source
        self.from_cache = from_cache
        self._report = report
        self.missing: list[int] = []
        self.dropped: list[int] = []
        self.num_frames = 0

    def __iter__(self) -> "PoseStream":
        return self

    def __next__(self) -> PosedFrame:
        frame = next(self._source)
        self.num_frames += 1
        if frame.pose is None:
            (self.dropped if frame.dropped else self.missing).append(frame.index)
        return frame

    @property
    def follow(self):
        """Who was followed (``follow.FollowReport``; from the cache entry when replayed), or
        None when unknown."""
        return self._report() if self._report is not None else None

    def close(self) -> None:
        close = getattr(self._source, "close", None)
        if close is not None:
            close()


def _cache_key(path: Path, estimator: PoseEstimator, start: int, stop: int | None) -> str:
    h = hashlib.sha256()
    h.update(f"bdmm-pose-cache-{CACHE_FORMAT}|{start}|{stop}|".encode())
    h.update(content_hash(path).encode())
    h.update(estimator.fingerprint().encode())
    return h.hexdigest()[:32]


def pose_cache_root() -> Path:
    from bdmm_cli.paths import cache_dir

    return cache_dir() / "pose"


def build_estimator(spin: str | None, device, keypoints: str = "auto", refinement=None,
                    config: "PoseConfig | None" = None) -> "PoseEstimator":
    """The pose front-end from what ``bdmm pose``, ``bdmm data prepare`` and ``bdmm animate``
    take: SPIN weights (registry name or path; None = ``spin``), ``--keypoints``
    (``detector.load_keypoint_model``) and a resolved ``--refine`` / ``--head-filter`` plan
    (``smplify.resolve_refinement``; None = neither), over ``config``."""
    from bdmm_cli.pose.detector import load_keypoint_model
    from bdmm_cli.pose.hmr import load_pose_regressor

    config = config or PoseConfig()
    body_model = prior = None
    if refinement is not None:
        config = dataclasses.replace(config, refine=refinement.refine, head_filter=refinement.head_filter)
        body_model, prior = refinement.body_model, refinement.prior
    hmr = load_pose_regressor(spin or "spin", device=device)
    model = load_keypoint_model(keypoints, device)
    return PoseEstimator(hmr, config=config, body_model=body_model, prior=prior, device=device,
                         openpose=model.net if model.kind == "openpose" else None,
                         dwpose=model.net if model.kind == "dwpose" else None)


def estimate_video(
    path: str | Path,
    estimator: PoseEstimator,
    start: int = 0,
    stop: int | None = None,
    use_cache: bool = True,
) -> PoseStream:
    """Stream the poses of a video's frames `start` to `stop` (exclusive).

    Frames are decoded, processed and yielded one batch at a time (memory does not grow
    with the video). With `use_cache`, a complete earlier run with the same input
    content and settings is replayed from ``cache_dir()/pose/<key>``; a new run is
    written there as it goes and published only when it reaches the end (an interrupted
    run leaves nothing).
    """
    from bdmm_cli.video import iter_frames

    path = Path(path)
    if not path.is_file():
        raise InputError(f"video not found: {path}")
    if not use_cache:
        return PoseStream(estimator.process(iter_frames(path, start, stop), True, start), from_cache=False,
                          report=estimator.follow_report)
    key = _cache_key(path, estimator, start, stop)
    entry = pose_cache_root() / key

    def info() -> dict:
        report = estimator.follow_report()
        return {} if report is None else {"follow": report.as_dict()}

    def compute() -> Iterator[PosedFrame]:
        return record_pose_cache(estimator.process(iter_frames(path, start, stop), True, start), entry, info)

    if (entry / "manifest.json").is_file():  # a damaged entry is recomputed (replay_pose_cache)
        return PoseStream(replay_pose_cache(entry, compute), from_cache=True,
                          report=lambda: _cached_report(entry) or estimator.follow_report())
    return PoseStream(compute(), from_cache=False, report=estimator.follow_report)


def _cached_report(entry: Path):
    from bdmm_cli.dataset.pose_dir import cache_info
    from bdmm_cli.pose.follow import FollowReport

    follow = cache_info(entry).get("follow")
    try:
        return FollowReport(**follow) if isinstance(follow, dict) else None
    except TypeError:
        return None


__all__ = [
    "build_estimator",
    "PoseConfig",
    "PoseEstimator",
    "PoseStream",
    "estimate_image",
    "estimate_video",
    "pose_cache_root",
]
