"""Rebuild the driving clip of the sample media, ``assets/walk.mp4``, from OpenCV's ``vtest.avi``.

    apt-get install opencv-doc     # /usr/share/doc/opencv-doc/examples/data/vtest.avi
    python scripts/make_assets.py  # writes assets/walk.mp4 and checks it

The clip: vtest.avi frames 375-404 (3 s at its 10 fps), the 192x192 square at x=240, y=110,
scaled to 256x256 (Lanczos), H.264 at CRF 17 (lower qualities lose the ankles in a few frames). Chosen so that exactly one person, a man walking right,
is in full view (nose and both ankles found) in every frame: the check at the end runs the
MediaPipe detector on each frame of the written file and fails otherwise. (See
assets/README.md for the licenses.)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
VTEST = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")
FIRST, COUNT = 375, 30
X, Y, SIDE, SIZE = 240, 110, 192, 256


def frames(path: Path) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    cap.set(cv2.CAP_PROP_POS_FRAMES, FIRST)
    out = []
    for _ in range(COUNT):
        ok, bgr = cap.read()
        if not ok:
            raise SystemExit(f"{path} ended before frame {FIRST + COUNT}")
        crop = cv2.cvtColor(bgr[Y:Y + SIDE, X:X + SIDE], cv2.COLOR_BGR2RGB)
        out.append(cv2.resize(crop, (SIZE, SIZE), interpolation=cv2.INTER_LANCZOS4))
    cap.release()
    return out


def check(path: Path) -> None:
    """Every frame: one person, nose and both ankles found (MediaPipe, as `bdmm animate` without OpenPose)."""
    from bdmm_cli.pose.largest import MultiPoseDetector
    from bdmm_cli.video import iter_frames

    bad = []
    with MultiPoseDetector(video=False) as det:
        for i, frame in enumerate(iter_frames(path)):
            people = det.detect_all(frame)
            if len(people) != 1 or not (people[0][0].keypoints[[0, 11, 14], 2] > 0).all():
                bad.append(i)
    if bad:
        raise SystemExit(f"{path}: frames {bad} do not show exactly one person in full view")
    print(f"{path}: one person in full view in every frame")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--vtest", type=Path, default=VTEST)
    ap.add_argument("-o", "--output", type=Path, default=REPO / "assets" / "walk.mp4")
    args = ap.parse_args()
    sys.path.insert(0, str(REPO))
    from bdmm_cli.video import VideoWriter

    with VideoWriter(args.output, 10, (SIZE, SIZE), force=True, quality=6.5) as writer:  # CRF 17: ~98 KB
        for frame in frames(args.vtest):
            writer.write(np.ascontiguousarray(frame))
    check(args.output)


if __name__ == "__main__":
    main()
