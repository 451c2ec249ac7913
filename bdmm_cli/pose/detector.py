"""2D keypoint detectors behind one small interface.

A detector is any callable ``detector(image) -> Body25 | None`` taking an (H, W, 3) uint8
RGB image and returning the BODY_25 keypoints of one person (None when nobody is found),
with a ``name`` string that goes into cache keys. The stage's default is MediaPipe Pose
keeping the largest person (``bdmm_cli.pose.largest.LargestPersonDetector``).

MediaPipe version: ``mediapipe==0.10.14`` (pinned in pyproject.toml). It is the last
release that (a) still ships the legacy ``mediapipe.solutions.pose`` API *and* the
BlazePose "full" landmark model inside the wheel, so it runs offline, and (b) does not
pin ``numpy<2`` (0.10.15 to 0.10.21 do, which torch 2.14 / scipy / opencv 5 do not
accept); 0.10.30 and later drop ``solutions`` and ship no model files. It needs
``protobuf<5``. See ``bdmm_cli/pose/README.md``.
"""

from __future__ import annotations

import warnings
from typing import Protocol, runtime_checkable

import numpy as np

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


class MediaPipePoseDetector:
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

    def __enter__(self) -> "MediaPipePoseDetector":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _mp_version() -> str:
    import mediapipe

    return str(getattr(mediapipe, "__version__", "unknown"))


__all__ = ["KeypointDetector", "MediaPipePoseDetector"]
