"""2D keypoint detectors behind one small interface.

A detector is any callable ``detector(image) -> Body25 | None`` taking an (H, W, 3) uint8
RGB image and returning the BODY_25 keypoints of one person (None when nobody is found),
with a ``name`` string that goes into cache keys. Two families:

- OpenPose BODY_25 with the authors' weights (``bdmm_cli.pose.openpose.OpenPoseDetector``):
  the keypoints the released generator was trained on; needs ``openpose_body25.pth``
  (registry name ``openpose-body25``, installed by ``bdmm setup``).
- MediaPipe Pose keeping the largest person (``bdmm_cli.pose.largest.LargestPersonDetector``),
  mapped onto BODY_25; needs no extra weights, but the optional ``bdmm[mediapipe]`` extra
  (Python 3.10-3.12 only).
- DWPose (``bdmm_cli.pose.dwpose.DWPoseDetector``): YOLOX person boxes + DWPose whole-body
  keypoints on onnxruntime, mapped onto BODY_25 (``wholebody.py``) and tracked like OpenPose;
  needs ``yolox_l.onnx`` and ``dw-ll_ucoco_384.onnx`` (registry names ``dwpose-det``,
  ``dwpose-pose``, installed by ``bdmm setup``). Any Python.

:func:`load_keypoint_model` turns the ``--keypoints auto|openpose|dwpose|mediapipe`` choice
into one of them: ``auto`` is OpenPose when its weights are installed, else DWPose when its
files are, else MediaPipe when it is installed, else one error saying ``bdmm setup``.
:func:`keypoint_detectors` says which are available and how to get the others.

MediaPipe version: ``mediapipe==0.10.14`` (pinned in pyproject.toml's ``mediapipe`` extra). It is the last
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
    try:
        import mediapipe
    except ImportError:  # the optional extra is not installed: nothing will run it
        return "not-installed"
    return str(getattr(mediapipe, "__version__", "unknown"))


# -- choosing the keypoint model ------------------------------------------------------------------

KEYPOINT_CHOICES = ("auto", "openpose", "mediapipe", "dwpose")
#: registry name of the authors' OpenPose BODY_25 weights (openpose_body25.pth)
OPENPOSE_WEIGHTS = "openpose-body25"


class KeypointModel(NamedTuple):
    """The keypoint model a run uses.

    Fields:
        kind: "openpose", "dwpose" or "mediapipe".
        net: the loaded ``OpenPoseBody25`` (kind "openpose"), ``dwpose.DWPoseModels`` (kind
            "dwpose"), else None.
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


def mediapipe_available() -> bool:
    """MediaPipe importable (the ``bdmm[mediapipe]`` extra; Python 3.10-3.12)."""
    import importlib.util

    return importlib.util.find_spec("mediapipe") is not None


def resolve_keypoints(choice: str = "auto", weights: str | Path = OPENPOSE_WEIGHTS) -> str:
    """"openpose", "dwpose" or "mediapipe" for a ``--keypoints`` choice. auto: OpenPose when its
    weights are installed, else DWPose when its two files are (and onnxruntime imports), else
    MediaPipe when it is installed, else "none" (:func:`load_keypoint_model` then fails with one
    line saying ``bdmm setup``). Never touches the network."""
    from bdmm_cli.errors import InputError

    if choice not in KEYPOINT_CHOICES:
        raise InputError(f"--keypoints must be one of {', '.join(KEYPOINT_CHOICES)}, not {choice!r}")
    if choice == "auto":
        if installed_openpose_weights(weights) is not None:
            return "openpose"
        from bdmm_cli.pose.dwpose import dwpose_available

        if dwpose_available():
            return "dwpose"
        return "mediapipe" if mediapipe_available() else "none"
    return choice


class DetectorStatus(NamedTuple):
    """One keypoint detector: whether this installation can run it, and how to get it otherwise."""

    name: str
    available: bool
    detail: str
    fix: str = ""


def keypoint_detectors() -> list[DetectorStatus]:
    """OpenPose, DWPose and MediaPipe, in ``--keypoints auto``'s order of preference."""
    import importlib.util
    import sys

    from bdmm_cli.pose.dwpose import installed_dwpose

    out = []
    if installed_openpose_weights() is not None:
        out.append(DetectorStatus("openpose", True, "the authors' OpenPose BODY_25 weights are installed"))
    else:
        out.append(DetectorStatus("openpose", False, "openpose_body25.pth is not installed (CMU non-commercial license)",
                                  "bdmm setup --accept-licenses (or --from SMPLDataset-checkpoints.zip)"))
    has_ort = importlib.util.find_spec("onnxruntime") is not None
    files = installed_dwpose()
    if has_ort and files is not None:
        out.append(DetectorStatus("dwpose", True, "yolox_l.onnx + dw-ll_ucoco_384.onnx installed (Apache-2.0)"))
    elif not has_ort:
        out.append(DetectorStatus("dwpose", False, "onnxruntime is not installed", "pip install onnxruntime"))
    else:
        out.append(DetectorStatus("dwpose", False, "yolox_l.onnx / dw-ll_ucoco_384.onnx are not installed (Apache-2.0)",
                                  "bdmm setup --accept-licenses (or --from yolox_l.onnx --from dw-ll_ucoco_384.onnx)"))
    if mediapipe_available():
        out.append(DetectorStatus("mediapipe", True, f"mediapipe {_mp_version()} installed (Apache-2.0)"))
    elif sys.version_info < (3, 13):
        out.append(DetectorStatus("mediapipe", False, "mediapipe is not installed (optional)", "pip install mediapipe==0.10.14 (bdmm's mediapipe extra)"))
    else:
        out.append(DetectorStatus("mediapipe", False, "mediapipe 0.10.14 has no wheel for Python "
                                  f"{sys.version_info.major}.{sys.version_info.minor} (3.10-3.12 only)",
                                  "use openpose or dwpose (bdmm setup), or a Python 3.10-3.12 environment"))
    return out


def no_detector_message() -> str:
    """The one error line when ``--keypoints auto`` finds nothing to run."""
    return ("no keypoint detector is installed: run `bdmm setup --accept-licenses` (installs OpenPose and DWPose), "
            "or pip install mediapipe==0.10.14 on Python 3.10-3.12; `bdmm doctor` lists what is available")


def load_keypoint_model(choice: str = "auto", device="cpu", weights: str | Path = OPENPOSE_WEIGHTS) -> KeypointModel:
    """``--keypoints auto|openpose|dwpose|mediapipe`` -> the model to use.

    auto: see :func:`resolve_keypoints`. openpose / dwpose: their files are required
    (MissingResourceError saying how to get them); mediapipe: the package is. A registry name resolves through ``hub.resolve.resolve_weights`` (installed by
    ``bdmm setup``, else fetched and verified), a path is read as it is; loaded strictly
    (``openpose.load_openpose``).
    """

    kind = resolve_keypoints(choice, weights)
    if kind == "none":
        raise MissingResourceError(no_detector_message())
    if kind == "mediapipe":
        if not mediapipe_available():
            raise MissingResourceError(
                "MediaPipe is not installed: pip install mediapipe==0.10.14 (bdmm's mediapipe extra; Python 3.10-3.12), "
                "or use --keypoints dwpose / openpose after `bdmm setup`")
        return KeypointModel("mediapipe", None, "MediaPipe Pose (mapped to BODY_25)")
    if kind == "dwpose":
        from bdmm_cli.pose.dwpose import load_dwpose

        models = load_dwpose(device=device)
        return KeypointModel("dwpose", models, f"DWPose (COCO-WholeBody -> BODY_25, {models.providers[0]})")
    from bdmm_cli.hub.resolve import resolve_weights
    from bdmm_cli.pose.openpose import load_openpose

    try:
        path = resolve_weights(weights, "openpose_body25")
    except MissingResourceError as exc:
        raise MissingResourceError(
            f"OpenPose BODY_25 weights ({weights}) are not installed: {exc}; `bdmm setup --from SMPLDataset.zip` "
            "installs the authors' openpose_body25.pth, or use --keypoints dwpose / mediapipe"
        ) from exc
    return KeypointModel("openpose", load_openpose(path, device), f"OpenPose BODY_25 ({weights})")


#: The detectors' names in messages, and what installs each.
_DETECTOR_TITLES = {"openpose": "OpenPose BODY_25", "dwpose": "DWPose", "mediapipe": "MediaPipe Pose"}


def detector_hint(kind: str) -> str:
    """The detector that ran, named, and what else to try, for "no person found" messages
    (``kind``: "openpose", "dwpose", "mediapipe" or another detector's name)."""
    if kind not in _DETECTOR_TITLES:
        return f"the keypoint detector ({kind}) found nobody; try another --keypoints choice"
    others = [k for k in ("openpose", "dwpose", "mediapipe") if k != kind]
    return (f"{_DETECTOR_TITLES[kind]} found nobody; try --keypoints {' or '.join(others)} "
            "(`bdmm doctor` says which are installed)")


__all__ = ["KEYPOINT_CHOICES", "DetectorStatus", "KeypointDetector", "KeypointModel", "MediaPipePoseDetector",
           "OPENPOSE_WEIGHTS", "detector_hint", "installed_openpose_weights", "keypoint_detectors",
           "load_keypoint_model", "mediapipe_available", "no_detector_message", "resolve_keypoints"]
