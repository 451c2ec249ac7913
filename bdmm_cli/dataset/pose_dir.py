"""Pose folders: one video (or photo) in the authors' per-video layout.

    <folder>/frames/frame_%05d.png       256x256 RGB person crops
    <folder>/kptsmpls/frame_%05d.json    BODY_25 keypoints + SMPL of that crop (``kptsmpl``)

``bdmm pose`` writes one, ``bdmm data prepare`` writes one per video, ``bdmm animate
--poses`` and the training data loader read them. Frames without a person have no files,
so the numbering can have gaps, as in the authors' data.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np

from bdmm_cli.dataset.kptsmpl import FramePose, dumps_kptsmpl, read_kptsmpl
from bdmm_cli.dataset.layout import FRAMES_DIR, POSES_DIR
from bdmm_cli.errors import BdmmWarning, InputError
from bdmm_cli.fileio import atomic_output_dir


@dataclass(frozen=True)
class PosedFrame:
    """One processed frame.

    Attributes:
        index: frame number in the input (0-based; 0 for a photo).
        image: (256, 256, 3) uint8 RGB crop.
        pose: FramePose in pixels of the crop, or None when the frame has no usable person.
        dropped: why a frame with a person has no pose (e.g. "head too small", the
            authors' frame-validity rule); None when nobody was found or it has a pose.
        source_box: (4,) XYXY box of the person in pixels of the input frame (before the
            crop); None when unknown (nobody found, or read back from files).
    """

    index: int
    image: np.ndarray
    pose: FramePose | None
    dropped: str | None = None
    source_box: np.ndarray | None = None


def frame_name(index: int) -> str:
    """``frame_%05d``: the file stem of frame ``index``."""
    return f"frame_{index:05d}"


def write_png(path: Path, image: np.ndarray) -> None:
    """(H, W, 3) uint8 RGB -> PNG; OSError (with the system's reason: disk full, read-only,
    permission) when it cannot be written."""
    import cv2

    ok, data = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    if not ok:
        raise ValueError(f"cannot encode a {image.shape} {image.dtype} image as PNG")
    with open(path, "wb") as f:
        f.write(data.tobytes())


def read_png(path: Path) -> np.ndarray:
    """PNG -> (H, W, 3) uint8 RGB; InputError when it cannot be read."""
    import cv2

    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise InputError(f"cannot read image {path}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def make_pose_dir(folder: Path) -> None:
    """Create ``frames/`` and ``kptsmpls/`` in ``folder`` (which may exist already)."""
    (folder / FRAMES_DIR).mkdir(parents=True, exist_ok=True)
    (folder / POSES_DIR).mkdir(exist_ok=True)


def write_posed_frame(folder: Path, frame: PosedFrame) -> None:
    """``frames/<name>.png`` + ``kptsmpls/<name>.json`` of a frame with a pose (``make_pose_dir`` first)."""
    name = frame_name(frame.index)
    write_png(folder / FRAMES_DIR / f"{name}.png", frame.image)
    (folder / POSES_DIR / f"{name}.json").write_text(dumps_kptsmpl(frame.pose), encoding="utf-8")


def read_posed_frame(folder: Path, index: int) -> PosedFrame:
    """The frame ``index`` written by ``write_posed_frame``."""
    name = frame_name(index)
    return PosedFrame(index, read_png(folder / FRAMES_DIR / f"{name}.png"),
                      read_kptsmpl(folder / POSES_DIR / f"{name}.json"))


def write_pose_dir(frames: Iterator[PosedFrame], out_dir: str | Path, force: bool = False,
                   on_frame: Callable[[PosedFrame], None] | None = None) -> tuple[int, list[int]]:
    """Write ``frames/frame_%05d.png`` + ``kptsmpls/frame_%05d.json`` for every frame with a person.

    The folder is built beside `out_dir` and renamed onto it at the end; an existing
    non-empty `out_dir` is refused unless `force` (then replaced). Frames without a person
    are skipped (numbering keeps the input's frame numbers, so it can have gaps, as in the
    authors' data). Returns (frames written, indices of frames without a person).
    """
    with atomic_output_dir(Path(out_dir), force) as tmp:
        make_pose_dir(tmp)
        written, missing = 0, []
        for frame in frames:
            if on_frame is not None:
                on_frame(frame)
            if frame.pose is None:
                missing.append(frame.index)
                continue
            write_posed_frame(tmp, frame)
            written += 1
        if written == 0:
            raise InputError("no person was found in any frame; nothing written")
    return written, missing


def read_pose_dir(pose_dir: str | Path) -> Iterator[PosedFrame]:
    """Read a folder written by ``bdmm pose`` (or one video of the authors' data set).

    Yields PosedFrame in file-name order; ``index`` is the number in the file name.
    Raises InputError when the folder lacks ``frames/`` or ``kptsmpls/``, or when PNGs
    and JSONs do not pair up.
    """
    pose_dir = Path(pose_dir)
    frames_dir, kpt_dir = pose_dir / FRAMES_DIR, pose_dir / POSES_DIR
    if not frames_dir.is_dir() or not kpt_dir.is_dir():
        raise InputError(f"{pose_dir} is not a pose folder: it needs frames/ and kptsmpls/ (written by `bdmm pose`)")
    jsons = sorted(kpt_dir.glob("*.json"))
    pngs = sorted(frames_dir.glob("*.png"))
    if not jsons:
        raise InputError(f"pose folder {pose_dir} has no kptsmpls/*.json")
    if [p.stem for p in pngs] != [j.stem for j in jsons]:
        raise InputError(f"pose folder {pose_dir}: frames/*.png and kptsmpls/*.json do not pair up "
                         f"({len(pngs)} PNGs, {len(jsons)} JSONs)")

    def gen() -> Iterator[PosedFrame]:
        for ordinal, (png, js) in enumerate(zip(pngs, jsons)):
            digits = "".join(c for c in js.stem if c.isdigit())
            index = int(digits) if digits else ordinal
            yield PosedFrame(index, read_png(png), read_kptsmpl(js))

    return gen()


# --- the pose cache: pose folders of whole videos, reused by later runs ---------------------

CACHE_FORMAT = 2  # 2: the authors' smoothing order and boxes; frames dropped by the head-size rule
NOPOSE_DIR = "nopose"


def _cache_warning(root: Path, exc: OSError) -> None:
    reason = exc.strerror or str(exc)
    warnings.warn(BdmmWarning(
        f"the pose cache {root} cannot be written ({reason}); continuing without it "
        "(free space there, set BDMM_CACHE_DIR to a writable folder, or pass --no-cache)"), stacklevel=4)


def record_pose_cache(frames: Iterable[PosedFrame], entry: Path,
                      info: Callable[[], dict] | None = None) -> Iterator[PosedFrame]:
    """Pass `frames` through while writing them to a new cache entry `entry`.

    ``info()``, called when the stream ends, is stored in the manifest (``cache_info``).

    The entry is built in a temporary folder and published when the stream ends. A cache
    that cannot be written (full, read-only, no permission) is skipped with one
    `BdmmWarning`; the frames still flow. Stale temporaries of killed runs are swept first.
    """
    from bdmm_cli.fileio import dir_mode, sweep_stale, temp_dir

    tmp: Path | None = None
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        sweep_stale(entry.parent)
        tmp = temp_dir(entry.parent, entry.name)
        make_pose_dir(tmp)
        (tmp / NOPOSE_DIR).mkdir()
    except OSError as exc:
        _cache_warning(entry.parent, exc)
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        tmp = None
    indices, missing, dropped = [], [], {}
    try:
        for frame in frames:
            if tmp is not None:
                try:
                    if frame.pose is None:
                        write_png(tmp / NOPOSE_DIR / f"{frame_name(frame.index)}.png", frame.image)
                    else:
                        write_posed_frame(tmp, frame)
                except OSError as exc:
                    _cache_warning(entry.parent, exc)
                    shutil.rmtree(tmp, ignore_errors=True)
                    tmp = None
            if frame.pose is None:
                missing.append(frame.index)
                if frame.dropped:
                    dropped[str(frame.index)] = frame.dropped
            indices.append(frame.index)
            yield frame
        if tmp is not None:
            try:
                (tmp / "manifest.json").write_text(
                    json.dumps({"format": CACHE_FORMAT, "indices": indices, "missing": missing, "dropped": dropped,
                                "info": info() if info is not None else {}}))
                os.chmod(tmp, dir_mode())
                os.rename(tmp, entry)
            except OSError as exc:
                if not (entry / "manifest.json").is_file():  # else: another process published it first
                    _cache_warning(entry.parent, exc)
    finally:
        if tmp is not None and tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def cache_info(entry: Path) -> dict:
    """The ``info`` a complete cache entry was recorded with ({} when none or unreadable)."""
    try:
        info = json.loads((entry / "manifest.json").read_text()).get("info", {})
    except (OSError, ValueError, AttributeError):
        return {}
    return info if isinstance(info, dict) else {}


def replay_pose_cache(entry: Path, recompute: Callable[[], Iterable[PosedFrame]]) -> Iterator[PosedFrame]:
    """The frames of a complete cache entry, in order.

    A damaged entry (unreadable manifest, PNG or JSON) is deleted with one `BdmmWarning`
    and the rest of the stream comes from `recompute()` (which yields the same frames from
    the start; those already replayed are skipped), so the run goes on.
    """
    yielded = 0
    with contextlib.suppress(OSError):
        os.utime(entry)  # just used: the cache's size cap removes the least recently used entries first
    try:
        manifest = json.loads((entry / "manifest.json").read_text())
        indices, missing = list(manifest["indices"]), set(manifest["missing"])
        dropped = dict(manifest.get("dropped", {}))
    except (OSError, ValueError, KeyError, TypeError):
        indices, missing, dropped = None, set(), {}
    for index in indices if indices is not None else [None]:
        try:
            if index is None:
                raise InputError("manifest")
            if index in missing:
                frame = PosedFrame(index, read_png(entry / NOPOSE_DIR / f"{frame_name(index)}.png"), None,
                                   dropped=dropped.get(str(index)))
            else:
                frame = read_posed_frame(entry, index)
        except (InputError, OSError, ValueError):
            where = "its index" if index is None else f"frame {index}"
            warnings.warn(BdmmWarning(
                f"the pose cache entry {entry} was damaged ({where}); it was deleted and the poses "
                "are computed again"), stacklevel=3)
            shutil.rmtree(entry, ignore_errors=True)
            for j, fresh in enumerate(recompute()):
                if j >= yielded:
                    yield fresh
            return
        yield frame
        yielded += 1


__all__ = [
    "CACHE_FORMAT",
    "cache_info",
    "record_pose_cache",
    "replay_pose_cache",
    "PosedFrame",
    "frame_name",
    "make_pose_dir",
    "read_png",
    "read_pose_dir",
    "read_posed_frame",
    "write_png",
    "write_pose_dir",
    "write_posed_frame",
]
