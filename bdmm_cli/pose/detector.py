"""2D keypoint detectors behind one small interface.

A detector is any callable ``detector(image) -> Body25 | None`` taking an (H, W, 3) uint8
RGB image and returning the BODY_25 keypoints of one person (None when nobody is found),
with a ``name`` string that goes into cache keys. Two families:

- OpenPose BODY_25 with the authors' weights (``bdmm_cli.pose.openpose.OpenPoseDetector``):
  the keypoints the released generator was trained on; needs ``openpose_body25.pth``
  (registry name ``openpose-body25``, installed by ``bdmm setup``).
- MediaPipe Pose keeping the largest person (``bdmm_cli.pose.largest.LargestPersonDetector``),
  mapped onto BODY_25; needs no extra weights.

:func:`load_keypoint_model` turns the ``--keypoints auto|openpose|mediapipe`` choice into
one of them: ``auto`` is OpenPose when its weights are installed, MediaPipe otherwise.

MediaPipe version: ``mediapipe==0.10.14`` (pinned in pyproject.toml). It is the last
release that (a) still ships the legacy ``mediapipe.solutions.pose`` API *and* the
BlazePose "full" landmark model inside the wheel, so it runs offline, and (b) does not
pin ``numpy<2`` (0.10.15 to 0.10.21 do, which torch 2.14 / scipy / opencv 5 do not
accept); 0.10.30 and later drop ``solutions`` and ship no model files. It needs
``protobuf<5``. See ``bdmm_cli/pose/README.md``.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import NamedTuple, Protocol, runtime_checkable

import numpy as np

from bdmm_cli.closing import Closing
from bdmm_cli.errors import MissingResourceError
from bdmm_cli.noise import native_stderr_quiet
from bdmm_cli.pose.body25 import Body25, body25_from_mediapipe


@runtime_checkable
class KeypointDetector(Protocol):
    """Finds one person's BODY_25 keypoints in an image."""

    name: str

    def __call__(self, image: np.ndarray) -> Body25 | None:
        """(H, W, 3) uint8 RGB -> Body25 in pixels of `image`, or None (no person)."""
        ...


class MediaPipePoseDetector(Closing):
    """MediaPipe Pose (BlazePose GHUM, "full" model, bundled in the wheel) -> BODY_25.

    Args:
        video: True for consecutive frames of one video (MediaPipe tracks the person's
            region between frames, which is faster and steadier); False for independent
            photos.
        min_visibility: landmarks less visible than this are reported missing.
        min_detection_confidence, min_tracking_confidence: MediaPipe's thresholds.
        model_complexity: 0 lite, 1 full (default; bundled), 2 heavy (NOT bundled: it
            would be downloaded, so it is refused offline).

    MediaPipe's legacy pipeline follows a single person: whichever its detector reports
    first when tracking starts, not necessarily the largest (the stage's default,
    ``largest.LargestPersonDetector``, keeps the largest and uses this one only as a
    fallback). Its own landmark smoothing is off: the authors' One-Euro filter is applied
    afterwards.
    Use as a context manager or call :meth:`close`.
    """

    def __init__(
        self,
        video: bool = True,
        min_visibility: float = 0.5,
        min_detection_confidence: float = 0.5,
        min_tracking_confidence: float = 0.5,
        model_complexity: int = 1,
    ) -> None:
        if model_complexity not in (0, 1):
            raise ValueError("model_complexity must be 0 (lite) or 1 (full): only those models ship in the wheel")
        try:
            from mediapipe.python.solutions import pose as mp_pose
        except ImportError as exc:
            raise MissingResourceError(
                "MediaPipe Pose is not available: install it with `pip install mediapipe==0.10.14`"
            ) from exc
        self.video = video
        self.min_visibility = float(min_visibility)
        self.name = f"mediapipe-{_mp_version()}-c{model_complexity}-v{self.min_visibility:g}-d{min_detection_confidence:g}"
        with native_stderr_quiet():  # MediaPipe's native "W0000 ..." start-up lines
            self._pose = mp_pose.Pose(
                static_image_mode=not video,
                model_complexity=model_complexity,
                smooth_landmarks=False,
                enable_segmentation=False,
                min_detection_confidence=min_detection_confidence,
                min_tracking_confidence=min_tracking_confidence,
            )

    def __call__(self, image: np.ndarray) -> Body25 | None:
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"expected an (H, W, 3) uint8 RGB image, got {image.shape} {image.dtype}")
        with warnings.catch_warnings(), native_stderr_quiet():  # protobuf noise, native log lines
            warnings.simplefilter("ignore", UserWarning)
            result = self._pose.process(np.ascontiguousarray(image))
        if result.pose_landmarks is None:
            return None
        lm = np.array([(p.x, p.y, p.visibility) for p in result.pose_landmarks.landmark], dtype=np.float64)
        body = body25_from_mediapipe(lm, (image.shape[1], image.shape[0]), self.min_visibility)
        return body if body.num_valid >= 2 else None

    def close(self) -> None:
        if self._pose is not None:
            self._pose.close()
            self._pose = None



def _mp_version() -> str:
    import mediapipe

    return str(getattr(mediapipe, "__version__", "unknown"))


# -- choosing the keypoint model ------------------------------------------------------------------

KEYPOINT_CHOICES = ("auto", "openpose", "mediapipe")
#: registry name of the authors' OpenPose BODY_25 weights (openpose_body25.pth)
OPENPOSE_WEIGHTS = "openpose-body25"


class KeypointModel(NamedTuple):
    """The keypoint model a run uses.

    Fields:
        kind: "openpose" or "mediapipe".
        net: the loaded ``OpenPoseBody25`` (kind "openpose"), else None.
        description: for run summaries, e.g. "OpenPose BODY_25 (openpose-body25)".
    """

    kind: str
    net: object | None
    description: str


def installed_openpose_weights(weights: str | Path = OPENPOSE_WEIGHTS) -> Path | None:
    """The OpenPose weights if they are here: an existing file or folder, or a registry name
    installed by ``bdmm setup`` or already in the download cache; else None. Never touches the
    network."""
    from bdmm_cli.hub.download import cached_path
    from bdmm_cli.hub.installed import installed_path
    from bdmm_cli.hub.resolve import names_a_path

    if names_a_path(weights):
        path = Path(weights).expanduser()
        return path if path.exists() else None
    try:
        return installed_path(str(weights)) or cached_path(str(weights))
    except MissingResourceError:  # no such registry entry
        return None


def resolve_keypoints(choice: str = "auto", weights: str | Path = OPENPOSE_WEIGHTS) -> str:
    """"openpose" or "mediapipe" for a ``--keypoints`` choice (auto: OpenPose when installed)."""
    from bdmm_cli.errors import InputError

    if choice not in KEYPOINT_CHOICES:
        raise InputError(f"--keypoints must be one of {', '.join(KEYPOINT_CHOICES)}, not {choice!r}")
    if choice == "auto":
        return "openpose" if installed_openpose_weights(weights) is not None else "mediapipe"
    return choice


def load_keypoint_model(choice: str = "auto", device="cpu", weights: str | Path = OPENPOSE_WEIGHTS) -> KeypointModel:
    """``--keypoints auto|openpose|mediapipe`` -> the model to use.

    auto: OpenPose when its weights are installed (``installed_openpose_weights``), MediaPipe
    otherwise. openpose: its weights are required (MissingResourceError saying how to get
    them). A registry name resolves through ``hub.resolve.resolve_weights`` (installed by
    ``bdmm setup``, else fetched and verified), a path is read as it is; loaded strictly
    (``openpose.load_openpose``).
    """

    if resolve_keypoints(choice, weights) == "mediapipe":
        return KeypointModel("mediapipe", None, "MediaPipe Pose (mapped to BODY_25)")
    from bdmm_cli.hub.resolve import resolve_weights
    from bdmm_cli.pose.openpose import load_openpose

    try:
        path = resolve_weights(weights, "openpose_body25")
    except MissingResourceError as exc:
        raise MissingResourceError(
            f"OpenPose BODY_25 weights ({weights}) are not installed: {exc}; `bdmm setup --from SMPLDataset.zip` "
            "installs the authors' openpose_body25.pth, or use --keypoints mediapipe"
        ) from exc
    return KeypointModel("openpose", load_openpose(path, device), f"OpenPose BODY_25 ({weights})")


def detector_hint(kind: str) -> str:
    """The detector that ran, named, and what else to try, for "no person found" messages
    (``kind``: "openpose", "mediapipe" or another detector's name)."""
    if kind == "openpose":
        return "OpenPose BODY_25 found nobody; try --keypoints mediapipe"
    if kind == "mediapipe":
        return ("MediaPipe Pose found nobody; try --keypoints openpose (the authors' detector, "
                "installed by `bdmm setup`)")
    return f"the keypoint detector ({kind}) found nobody; try another --keypoints choice"


__all__ = ["KEYPOINT_CHOICES", "detector_hint", "KeypointDetector", "KeypointModel", "MediaPipePoseDetector", "OPENPOSE_WEIGHTS",
           "installed_openpose_weights", "load_keypoint_model", "resolve_keypoints"]
