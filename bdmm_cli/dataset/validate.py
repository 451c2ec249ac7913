"""Check a whole data set before the first training iteration, listing every bad file at once.

    check = validate_dataset("data/mine", "train")   # every frame readable, every JSON well-formed
    check.raise_if_bad()                             # InputError naming each bad file

For each video folder of the split (``<root>/<split>/<video>/``, the authors' layout):
``frames/`` and ``kptsmpls/`` exist, every PNG has its JSON and the other way round (the
counts match), every PNG is a complete image (chunks and checksums read by Pillow's
``verify``; nothing is decoded in full) and every JSON is a well-formed kptsmpls record
(``read_kptsmpl``). `check_videos` does the same for the input videos of ``bdmm data prepare``
(each one's header opens and holds a video stream with a frame rate).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

from bdmm_cli.dataset.layout import FRAMES_DIR, POSES_DIR, SPLITS
from bdmm_cli.errors import InputError

#: Bad files named in the error line itself (all of them follow as detail lines).
_IN_LINE = 3


@dataclass(frozen=True)
class BadFile:
    """A file that cannot be used, and why (one plain sentence)."""

    path: Path
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


@dataclass(frozen=True)
class DatasetCheck:
    """What `validate_dataset` found.

    Attributes:
        root, split: the data set and split checked.
        videos: video folders found.
        files: files checked (PNGs + JSONs).
        bad: every bad file, in path order.
    """

    root: Path
    split: str
    videos: int
    files: int
    bad: tuple[BadFile, ...]

    @property
    def ok(self) -> bool:
        return not self.bad

    def raise_if_bad(self) -> None:
        """InputError: one line with the count and the first few, then every bad file as a detail line."""
        if self.ok:
            return
        raise _bad_error(f"data set {self.root / self.split}", self.bad, self.files)


def _bad_error(what: str, bad: Sequence[BadFile], total: int) -> InputError:
    head = "; ".join(str(b) for b in bad[:_IN_LINE])
    more = f"; and {len(bad) - _IN_LINE} more (listed below)" if len(bad) > _IN_LINE else ""
    return InputError(f"{what} has {len(bad)} bad file(s) of {total}: {head}{more}; fix or remove them and run again",
                      details=[str(b) for b in bad] if len(bad) > _IN_LINE else ())


def _check_png(path: Path) -> str | None:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        kind = "not an image" if isinstance(exc, UnidentifiedImageError) else "damaged or truncated image"
        return kind
    return None


def _check_json(path: Path) -> str | None:
    from bdmm_cli.dataset.kptsmpl import read_kptsmpl

    try:
        read_kptsmpl(path)
    except InputError as exc:
        text = str(exc)
        return text.split(f"{path}: ", 1)[-1] if f"{path}: " in text else text.replace(str(path), "").strip(" :")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return f"malformed record ({type(exc).__name__})"
    return None


def video_folders(root: Path, split: str) -> list[Path]:
    """The video folders of a split (those with a ``frames/`` subfolder), sorted by name."""
    if split not in SPLITS:
        raise InputError(f"split must be one of {SPLITS}, got {split!r}")
    split_dir = Path(root).expanduser() / split
    if not split_dir.is_dir():
        raise InputError(f"{split_dir} does not exist; expected the official layout "
                         f"<root>/{split}/<video>.mp4/frames + kptsmpls (see `bdmm data prepare --help`)")
    dirs = sorted(d for d in split_dir.iterdir() if (d / FRAMES_DIR).is_dir())
    if not dirs:
        raise InputError(f"{split_dir} holds no video folders with a {FRAMES_DIR}/ subfolder")
    return dirs


def validate_dataset(
    root: str | Path, split: str = "train", on_progress: Callable[[int, int], None] | None = None
) -> DatasetCheck:
    """Check every file of a split (see the module docstring); `on_progress(done, total)` per file."""
    root = Path(root).expanduser()
    dirs = video_folders(root, split)
    plan: list[tuple[Path, str]] = []
    bad: list[BadFile] = []
    for d in dirs:
        if not (d / POSES_DIR).is_dir():
            bad.append(BadFile(d / POSES_DIR, "missing folder (every frame needs its kptsmpls JSON)"))
            continue
        pngs = {p.stem: p for p in (d / FRAMES_DIR).glob("*.png")}
        jsons = {p.stem: p for p in (d / POSES_DIR).glob("*.json")}
        for stem in sorted(set(pngs) - set(jsons)):
            bad.append(BadFile(pngs[stem], f"has no {POSES_DIR}/{stem}.json"))
        for stem in sorted(set(jsons) - set(pngs)):
            bad.append(BadFile(jsons[stem], f"has no {FRAMES_DIR}/{stem}.png"))
        if not pngs:
            bad.append(BadFile(d / FRAMES_DIR, "holds no PNG frames"))
        plan += [(pngs[s], "png") for s in sorted(pngs)] + [(jsons[s], "json") for s in sorted(jsons)]
    for i, (path, kind) in enumerate(plan):
        reason = _check_png(path) if kind == "png" else _check_json(path)
        if reason is not None:
            bad.append(BadFile(path, reason))
        if on_progress is not None:
            on_progress(i + 1, len(plan))
    bad.sort(key=lambda b: str(b.path))
    return DatasetCheck(root, split, len(dirs), len(plan), tuple(bad))


def check_videos(videos: Iterable[Path], on_progress: Callable[[int, int], None] | None = None) -> None:
    """InputError listing every input video that cannot be read (header, video stream, frame rate)."""
    from bdmm_cli.video import probe_video

    videos = list(videos)
    bad: list[BadFile] = []
    for i, video in enumerate(videos):
        try:
            info = probe_video(video)
            if not info.fps:
                bad.append(BadFile(video, "ffmpeg cannot tell its frame rate"))
        except InputError as exc:
            text = str(exc)
            bad.append(BadFile(video, text.split(": ", 1)[1] if text.startswith("cannot read video") else text))
        if on_progress is not None:
            on_progress(i + 1, len(videos))
    if bad:
        raise _bad_error("the videos folder", bad, len(videos))


def _with_bar(desc: str, unit: str, enabled: bool, run: Callable[[Callable[[int, int], None]], object]):
    from bdmm_cli.progress import progress_bar

    with progress_bar(unit=unit, enabled=enabled, transient=True) as bar:
        task = bar.add_task(desc, total=None)
        return run(lambda done, total: bar.update(task, completed=done, total=total))


def check_dataset(root: str | Path, split: str = "train", progress: bool = True) -> DatasetCheck:
    """`validate_dataset` with a progress bar, raising InputError when any file is bad."""
    check = _with_bar(f"checking {split} data", "files", progress,
                      lambda cb: validate_dataset(root, split, on_progress=cb))
    check.raise_if_bad()
    return check


def check_video_files(videos: Iterable[Path], progress: bool = True) -> None:
    """`check_videos` with a progress bar."""
    _with_bar("checking videos", "videos", progress, lambda cb: check_videos(videos, on_progress=cb))


__all__ = ["BadFile", "DatasetCheck", "check_dataset", "check_video_files", "check_videos", "validate_dataset",
           "video_folders"]
