"""The raw-video route to a data set: `bdmm data download fashionvideo --from-videos`.

    folder = download_videos(source, accept_licenses=True, workers=8)   # <cache>/videos/NAME/{train,test}/
    then `bdmm data prepare` (the authors' preprocessing) into $BDMM_HOME/datasets/NAME

1. the two URL lists of the data set page (`[datasets.NAME]` `train_list` / `test_list` in
   the registry; or local copies of them) are read: one video URL a line;
2. every video is downloaded, `workers` at a time, with `hub.urlfetch.download_url`
   (resumed with a Range request after an interruption, size-checked, cached), without a
   bar of its own: one bar counts the videos;
3. each download is decoded in full (`video.iter_frames`: a truncated or undecodable file
   fails); a bad one is removed from the cache so the next run fetches it again;
4. every good video is linked into `<cache>/videos/NAME/train|test/<file>`, the input
   folder of `bdmm data prepare`. Any failure is one error listing them all (the good
   downloads stay cached: running the command again resumes with the rest).
"""

from __future__ import annotations

import os
import shutil
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Callable
from urllib.parse import unquote, urlsplit

from bdmm_cli.errors import BdmmError, InputError, MissingResourceError

SPLIT_LISTS = (("train", "train_list"), ("test", "test_list"))


def read_url_list(source: str, accept_licenses: bool) -> list[str]:
    """The URLs of a list (a URL or a local file): non-empty lines, `#` comments skipped."""
    from bdmm_cli.hub.urlfetch import download_url
    from bdmm_cli.setup import is_url

    if is_url(source):
        if not accept_licenses:
            raise InputError(f"{source} is a download: pass --accept-licenses")
        path = download_url(source, progress=False)
    else:
        path = Path(source).expanduser()
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read the URL list {source}: {exc}") from None
    urls = [ln.strip() for ln in lines if ln.strip() and not ln.strip().startswith("#")]
    bad = [u for u in urls if not is_url(u)]
    if bad:
        raise InputError(f"the URL list {source} has a line that is not an http(s) URL: {bad[0][:80]!r}")
    if not urls:
        raise InputError(f"the URL list {source} holds no URL")
    return urls


def video_file_name(url: str) -> str:
    """The file a video URL is saved as (its last path component, URL-decoded)."""
    name = Path(unquote(urlsplit(url).path)).name
    if not name or name in (".", ".."):
        raise InputError(f"cannot tell a file name from the video URL {url}")
    return name


def _decodes(path: Path) -> str | None:
    """None when every frame of `path` decodes, else why not (one phrase)."""
    from bdmm_cli.video import iter_frames

    try:
        n = sum(1 for _ in iter_frames(path, allow_truncated=False))
    except BdmmError as exc:
        return str(exc).splitlines()[0]
    return None if n else "no frame decodes"


def _fetch_one(url: str) -> Path:
    from bdmm_cli.hub.urlfetch import download_url

    path = download_url(url, filename=video_file_name(url), progress=False)
    why = _decodes(path)
    if why is not None:
        path.unlink(missing_ok=True)  # fetched again by the next run
        raise InputError(f"does not decode ({why})")
    return path


def _link(src: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.exists():
        if dest.stat().st_size == src.stat().st_size:
            return
        dest.unlink()
    try:
        os.link(src, dest)
    except OSError:
        shutil.copy2(src, dest)


def videos_folder(name: str) -> Path:
    from bdmm_cli.paths import cache_dir

    return cache_dir() / "videos" / name


def download_videos(
    lists: dict[str, str],
    name: str,
    *,
    accept_licenses: bool = False,
    workers: int = 8,
    progress: bool = False,
    announce: Callable[[str], None] = lambda _msg: None,
) -> Path:
    """Steps 1-4 of the module docstring; returns the videos folder (train/, test/).

    Args:
        lists: split -> URL list (a URL or a local file), e.g. {"train": ..., "test": ...}.
        name: the data set's name (the folder under `<cache>/videos/`).
        workers: parallel downloads.
    Raises:
        InputError: downloads not accepted, a bad list, or videos that failed (all listed).
    """
    if workers < 1:
        raise InputError("--workers must be at least 1")
    if not accept_licenses:
        raise InputError("pass --accept-licenses to download the videos under the terms printed above")
    plan: list[tuple[str, str]] = []
    for split, source in lists.items():
        urls = read_url_list(source, accept_licenses)
        announce(f"{split}: {len(urls)} videos listed in {source}")
        plan += [(split, u) for u in urls]
    names = [(s, video_file_name(u)) for s, u in plan]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise InputError(f"the URL lists name the video {dupes[0][1]} twice in {dupes[0][0]}")
    folder = videos_folder(name)
    failed: list[str] = []
    from bdmm_cli.dataset.download import _bar

    with _bar(progress, "videos (download + decode)", len(plan)) as advance, \
            ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {pool.submit(_fetch_one, url): (split, url) for split, url in plan}
        for fut in as_completed(futures):
            split, url = futures[fut]
            try:
                _link(fut.result(), folder / split / video_file_name(url))
            except (InputError, MissingResourceError) as exc:
                text = str(exc)
                failed.append(f"{url}: {text.split(f'{url}: ', 1)[-1] if url in text else text}")
            advance(1)
    if failed:
        failed.sort()
        raise InputError(f"{len(failed)} of {len(plan)} videos failed ({failed[0]}); run the command again to resume "
                         "(the other videos are kept)", details=failed if len(failed) > 1 else ())
    return folder


__all__ = ["download_videos", "read_url_list", "video_file_name", "videos_folder"]


# --- videos given as an archive or folder (iPER) ---------------------------------------------------


def split_key(text: str) -> str:
    """A split-list line or a video file name as one key: `001/1/1`, `001_1_1`, `001_1_1.mp4` -> `001_1_1`."""
    text = text.strip().replace("\\", "/").strip("/")
    for suffix in (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v"):
        if text.lower().endswith(suffix):
            text = text[: -len(suffix)]
    return text.replace("/", "_")


def read_split_list(path: Path) -> list[str]:
    """The keys of an official split list (one video a line, `#` comments skipped)."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read the split list {path}: {exc}") from None
    keys = [split_key(ln) for ln in lines if ln.strip() and not ln.strip().startswith("#")]
    if not keys:
        raise InputError(f"the split list {path} names no video")
    return keys


def sort_videos(
    source: Path,
    name: str,
    train_list: Path | None = None,
    test_list: Path | None = None,
    list_names: tuple[str, str] = ("train.txt", "val.txt"),
    progress: bool = False,
) -> tuple[Path, dict[str, int]]:
    """Sort the videos of an archive or folder into `<cache>/videos/NAME/train|test/` by the
    official split lists (found inside `source` by name unless given).

    Returns (the videos folder, videos per split). InputError when a list is missing, names a
    video the source lacks (all of them listed), or a video is in both lists.
    """
    import tempfile

    from bdmm_cli.dataset.download import _bar, unpack_archive
    from bdmm_cli.dataset.prepare import VIDEO_SUFFIXES
    from bdmm_cli.paths import cache_dir

    source = Path(source).expanduser()
    if not source.exists():
        raise InputError(f"--from {source}: no such file or folder")
    cache_dir().mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".bdmm-videos.", dir=cache_dir()) as tmp:
        if source.is_dir():
            root = source
        else:
            root = Path(tmp)
            with _bar(progress, f"unpacking {source.name}", None) as advance:
                unpack_archive(source, root, on_progress=lambda done, total: advance(1))
        videos = {}
        for p in sorted(root.rglob("*")):
            if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES and not p.name.startswith("."):
                videos.setdefault(split_key(p.name), p)
        lists = {}
        for split, given, default in (("train", train_list, list_names[0]), ("test", test_list, list_names[1])):
            found = Path(given).expanduser() if given else next(iter(sorted(root.rglob(default))), None)
            if found is None or not found.is_file():
                raise InputError(f"no {split} split list: {source} holds no {default}; pass --{split}-list FILE")
            lists[split] = read_split_list(found)
        both = sorted(set(lists["train"]) & set(lists["test"]))
        if both:
            raise InputError(f"the split lists both name {both[0]}")
        missing = sorted(k for keys in lists.values() for k in keys if k not in videos)
        if missing:
            raise InputError(f"{len(missing)} listed video(s) are not in {source}: {', '.join(missing[:3])}"
                             + (" ..." if len(missing) > 3 else ""), details=missing if len(missing) > 3 else ())
        folder = videos_folder(name)
        if folder.exists():
            shutil.rmtree(folder)
        counts = {}
        for split, keys in lists.items():
            for k in keys:
                _link(videos[k], folder / split / videos[k].name)
            counts[split] = len(keys)
    return folder, counts


__all__ += ["read_split_list", "sort_videos", "split_key"]
