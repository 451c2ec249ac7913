"""Follow one person through a video: pick once, then match by position, size and keypoints.

Every keypoint detector finds all the people of a frame; which of them is *the* person of a
driving video is decided here, the same way for every detector (OpenPose, MediaPipe, ...).

**Picking** (the first frame where anyone is found): people are numbered 1, 2, ... from left
to right by the centre of their box; ``person=None`` picks the largest box (its area; ties:
the leftmost), ``person=N`` the N-th from the left.

**Following** (every later frame), for the followed person's last box ``b`` (height ``h``,
centre ``c``) and keypoints ``k``, seen ``lost`` frames ago, each candidate ``i`` with box
``b_i`` (height ``h_i``, centre ``c_i``) and keypoints ``k_i`` gets

    d_i   = |c_i - c| / h                           (centre distance in body heights)
    r_i   = |log(h_i / h)|                          (size change)
    o_i   = OKS(k_i, k; scale h^2)                  (keypoint similarity of the shared joints, 0..1)
    cost_i = d_i + r_i + (1 - o_i)

and is admissible when ``d_i <= MAX_STEP * (1 + lost)`` (capped at ``MAX_REACH``) and
``r_i <= log(MAX_SCALE)``; the admissible candidate of least cost is the person, and when no
candidate is admissible the person is *lost* in that frame (``None``: a gap, never a jump to
someone else). Nobody else's size is ever compared with the followed person's, so a person
who is momentarily larger is never taken instead.

Photos (``video=False``): each call picks anew (the largest, or ``person``).

:class:`FollowReport` says how many people were seen (the most in one frame), which one was
followed and in which frame it was picked, and how many frames it was lost in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

#: Largest centre move per frame, in body heights (a walker moves ~0.05; a cut-free clip < 0.3).
MAX_STEP = 0.5
#: Largest centre distance at which a lost person is taken back, in body heights.
MAX_REACH = 2.0
#: Largest size change (ratio of box heights) from the last frame the person was seen.
MAX_SCALE = 1.6
#: Per-joint falloff of the keypoint similarity (OKS-like), in body heights.
KEYPOINT_SIGMA = 0.1


@dataclass(frozen=True)
class FollowReport:
    """Who was followed in one video (or photo).

    Attributes:
        people_seen: the most people found in one frame.
        people_at_pick: people found in the frame where the person was picked.
        followed: the picked person's number among them, 1-based from the left; None: nobody found.
        picked_at: the frame (0-based call count, i.e. relative to the first frame seen) of the pick.
        lost_frames: frames after the pick in which the person was not found.
        rule: "largest" or "person N" (how the person was picked).
    """

    people_seen: int = 0
    people_at_pick: int = 0
    followed: int | None = None
    picked_at: int | None = None
    lost_frames: int = 0
    rule: str = "largest"

    def describe(self) -> str:
        """One line for run summaries, e.g. "3 people seen; followed person 2 of 3 (largest) from frame 12"."""
        if self.followed is None:
            return "nobody seen"
        people = f"{self.people_seen} {'person' if self.people_seen == 1 else 'people'} seen"
        if self.people_seen <= 1:
            return people
        return (f"{people}; followed person {self.followed} of {self.people_at_pick} from the left "
                f"({self.rule}) from frame {self.picked_at}")

    def as_dict(self) -> dict:
        return {"people_seen": self.people_seen, "people_at_pick": self.people_at_pick, "followed": self.followed,
                "picked_at": self.picked_at, "lost_frames": self.lost_frames, "rule": self.rule}


def box_height(box: np.ndarray) -> float:
    return float(max(box[3] - box[1], box[2] - box[0], 1.0))


def box_center(box: np.ndarray) -> np.ndarray:
    return np.array([(box[0] + box[2]) / 2.0, (box[1] + box[3]) / 2.0])


def keypoint_similarity(a: np.ndarray, b: np.ndarray, height: float) -> float:
    """OKS-like similarity in [0, 1] of two (25, 3) keypoint sets over the joints found in
    both (confidence > 0): mean of exp(-|a_k - b_k|^2 / (2 (sigma h)^2)); 0 when none is shared."""
    shared = (a[:, 2] > 0) & (b[:, 2] > 0)
    if not shared.any():
        return 0.0
    d2 = np.sum((a[shared, :2] - b[shared, :2]) ** 2, axis=1)
    return float(np.mean(np.exp(-d2 / (2.0 * (KEYPOINT_SIGMA * height) ** 2))))


def left_to_right(boxes: np.ndarray) -> np.ndarray:
    """Indices of `boxes` (N, 4) XYXY ordered by box centre x, left first (stable)."""
    centers = (np.asarray(boxes, np.float64)[:, 0] + np.asarray(boxes, np.float64)[:, 2]) / 2.0
    return np.argsort(centers, kind="stable")


def pick_person(boxes: np.ndarray, person: int | None = None) -> tuple[int, int]:
    """(index into `boxes`, 1-based number from the left) of the person to follow.

    ``person`` None: the largest box (ties: the leftmost); N: the N-th from the left (the
    rightmost when there are fewer than N people).
    """
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    order = left_to_right(b)
    if person is None:
        areas = np.clip(b[order, 2] - b[order, 0], 0, None) * np.clip(b[order, 3] - b[order, 1], 0, None)
        rank = int(np.argmax(areas))  # first maximum = the leftmost
    else:
        rank = min(max(int(person), 1), len(b)) - 1
    return int(order[rank]), rank + 1


class PersonFollower:
    """Chooses, frame by frame, which of the detected people is the followed person.

    Call with the frame's boxes (N, 4) XYXY and keypoints (N, 25, 3) (x, y, confidence;
    missing joints confidence 0), in pixels; returns the index of the followed person or
    None (nobody found, or the followed person is not among them). :attr:`report` says who
    was followed (:class:`FollowReport`).

    Args:
        video: consecutive frames of one video (follow); False: photos (pick in every call).
        person: None = the largest; N = the N-th person from the left (1-based) in the frame
            where people are first found.
    """

    def __init__(self, video: bool = True, person: int | None = None) -> None:
        if person is not None and person < 1:
            raise ValueError("person must be 1 or more (1 = the leftmost)")
        self.video = video
        self.person = person
        self._box: np.ndarray | None = None
        self._keypoints: np.ndarray | None = None
        self._lost = 0
        self._calls = 0
        self._seen = 0
        self._at_pick = 0
        self._followed: int | None = None
        self._picked_at: int | None = None
        self._lost_total = 0

    @property
    def report(self) -> FollowReport:
        return FollowReport(self._seen, self._at_pick, self._followed, self._picked_at, self._lost_total,
                            "largest" if self.person is None else f"person {self.person}")

    def __call__(self, boxes: np.ndarray, keypoints: np.ndarray) -> int | None:
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        keypoints = np.asarray(keypoints, np.float64).reshape(-1, 25, 3)
        frame = self._calls
        self._calls += 1
        self._seen = max(self._seen, len(boxes))
        if self._box is None or not self.video:
            if len(boxes) == 0:
                return None
            index, number = pick_person(boxes, self.person)
            self._at_pick, self._followed, self._picked_at = len(boxes), number, frame
            return self._keep(index, boxes, keypoints)
        index = self.match(boxes, keypoints)
        if index is None:
            self._lost += 1
            self._lost_total += 1
            return None
        return self._keep(index, boxes, keypoints)

    def match(self, boxes: np.ndarray, keypoints: np.ndarray) -> int | None:
        """Index of the admissible candidate of least cost (module docstring), or None."""
        h = box_height(self._box)
        c = box_center(self._box)
        reach = min(MAX_STEP * (1 + self._lost), MAX_REACH)
        best, best_cost = None, math.inf
        for i, (b, k) in enumerate(zip(boxes, keypoints)):
            d = float(np.linalg.norm(box_center(b) - c)) / h
            r = abs(math.log(box_height(b) / h))
            if d > reach or r > math.log(MAX_SCALE):
                continue
            cost = d + r + (1.0 - keypoint_similarity(k, self._keypoints, h))
            if cost < best_cost:
                best, best_cost = i, cost
        return best

    def _keep(self, index: int, boxes: np.ndarray, keypoints: np.ndarray) -> int:
        self._box, self._keypoints, self._lost = boxes[index].copy(), keypoints[index].copy(), 0
        return index


__all__ = ["FollowReport", "PersonFollower", "keypoint_similarity", "left_to_right", "pick_person"]
