"""`bdmm data download NAME`: the authors' preprocessed data set (or their released test
outputs) fetched, unpacked safely, checked in full and published under one name.

    result = download_dataset("fashionvideo", accept_licenses=True)          # the registry's link
    result = download_dataset("fashionvideo", "~/Downloads/UBC_fashion_smpl.zip")
    result.path   # $BDMM_HOME/datasets/fashionvideo, found by `bdmm train --data fashionvideo`

What can be downloaded is data, not code: the `[datasets.*]` tables of
`weights/registry.toml` (link as the publisher gives it, the link fetched without a
browser, license, provenance). Steps, each refusing the whole command on the first problem:

1. the source: `--from` a local archive or an unpacked folder, `--from` a URL, or the
   registry's link (URLs need `--accept-licenses`; the license and source are printed
   first). Downloads go through `hub.urlfetch.download_url`: progress bar, resumed with a
   Range request after an interruption, size-checked, cached. A share link that answers
   with a web page prints the link and the `--from FILE` command to finish with;
2. the archive is unpacked into a temporary folder beside the destination: a member whose
   name is absolute or climbs out (`../x`), a link, or a truncated / corrupt archive
   refuses it (setup's rule, `bdmm_cli.setup._unsafe_name`);
3. the data set is found inside (the folder holding `train/` and `test/`, e.g.
   `UBC_fashion_smpl/`) and checked in full: every PNG and JSON of both splits
   (`dataset.validate`), `test_list.csv` (every listed file exists), `fid_stat.npz`
   (`mu` D, `sigma` DxD, finite), every PNG of `train_frames/` and `test_frames/`. The
   released results: every PNG is a complete 5-panel strip (`metrics.strips`);
4. only then is it published with one atomic rename as `$BDMM_HOME/datasets/NAME`, with
   `bdmm-download.json` (source, sha256 of the archive, counts) beside the data.

Idempotent: a published copy is kept (nothing downloaded or unpacked again) unless
`--from` names a different archive, which replaces it only with `force`. Interrupted
downloads resume; an interrupted unpack leaves only a temporary folder, removed by the
next run.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Callable

from bdmm_cli.errors import InputError, MissingResourceError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

#: The marker written beside a published data set.
MARKER = "bdmm-download.json"
#: Files at the top of the authors' FashionVideo archive besides train/ and test/.
RELEASE_FILES = ("fid_stat.npz", "test_list.csv")
FRAME_COPIES = ("train_frames", "test_frames")
#: "dataset": the authors' preprocessed layout; "results": their test strips; "videos": raw videos
#: given on request (iPER), sorted by the official split lists and prepared (`--from` only).
KINDS = ("dataset", "results", "videos")


@dataclass(frozen=True)
class DatasetSource:
    """One `[datasets.NAME]` table of the registry.

    Fields:
        name: what `bdmm data download NAME` is called with ("fashionvideo", "fashionvideo-results").
        kind: "dataset" (the authors' layout, `UBC_fashion_smpl`), "results" (256x1280 strips) or
            "videos" (raw videos given on request, sorted by split lists and prepared; `--from` only).
        url: the link as the publisher gives it (printed for the user).
        download_url: what is fetched without a browser ("" = `url`).
        filename: the name the download is cached under (and the file the user saves).
        license, provenance: printed before anything is downloaded.
        size: exact size in bytes, 0 when not known.
        disk_gb: approximate space the unpacked copy needs, for the messages (0 = unknown).
        train_list, test_list: URL lists of the raw videos (one URL a line), for `--from-videos`
            ("" = no such route); videos_license: their terms, printed first.
    """

    name: str
    kind: str
    url: str
    filename: str
    download_url: str = ""
    license: str = ""
    provenance: str = ""
    size: int = 0
    disk_gb: float = 0.0
    train_list: str = ""
    test_list: str = ""
    videos_license: str = ""


@dataclass(frozen=True)
class DownloadResult:
    """What `download_dataset` did.

    Fields:
        name: the data set's name; path: where it is published.
        status: "installed" or "already installed".
        source: the archive, folder or URL it came from; sha256: of the archive ("" for a folder).
        counts: files checked per part ({"train": n, "test": n, ...}).
    """

    name: str
    path: Path
    status: str
    source: str
    sha256: str
    counts: dict


def load_sources(registry: Path | None = None) -> dict[str, DatasetSource]:
    """The `[datasets.*]` tables of the weights registry (`BDMM_REGISTRY` or the checkout's)."""
    from bdmm_cli.hub.registry import registry_path

    path = Path(registry) if registry is not None else registry_path()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise MissingResourceError(f"registry {path} not found (set BDMM_REGISTRY to a registry.toml)") from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"registry {path} is not valid TOML: {exc}") from None
    fields = set(DatasetSource.__dataclass_fields__) - {"name"}
    out = {}
    for name, table in data.get("datasets", {}).items():
        unknown = set(table) - fields
        if unknown or not table.get("url") or not table.get("filename") or table.get("kind") not in KINDS:
            raise InputError(f"registry {path}: [datasets.{name}] needs kind ({'|'.join(KINDS)}), url and filename, "
                             f"and no other fields than {sorted(fields)}")
        out[name] = DatasetSource(name=name, **table)
    return out


def datasets_root(data_root: str | Path | None = None) -> Path:
    """Where named data sets live: `data_root`, else `$BDMM_HOME/datasets` (as `resolve_dataset`)."""
    from bdmm_cli.paths import data_dir

    return Path(data_root).expanduser() if data_root else data_dir() / "datasets"


def installed_path(name: str, data_root: str | Path | None = None) -> Path | None:
    """The published copy of `name` (holding its marker), or None."""
    path = datasets_root(data_root) / name
    return path if (path / MARKER).is_file() else None


# --- 2. unpacking --------------------------------------------------------------------------


def _bad_archive(archive: Path, kind: str, exc: BaseException) -> InputError:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return InputError(f"archive {archive} is not a readable {kind} archive (truncated or corrupt?): {text}")


def _refuse_member(archive: Path, name: str, why: str = "outside its folder") -> InputError:
    return InputError(f"archive {archive} has a member {why} ({name!r}); refusing it")


def unpack_archive(archive: Path, into: Path, on_progress: Callable[[int, int], None] | None = None) -> int:
    """Unpack every member of a zip or tar archive under `into`; returns the number of files.

    Every name is checked before anything is written (absolute, `..`, links and device
    files refuse the archive); a truncated or corrupt archive raises InputError.
    """
    import zlib

    from bdmm_cli.setup import _kind_of_archive, _unsafe_name

    kind = _kind_of_archive(archive)
    if kind is None:
        raise InputError(f"{archive} is neither a zip nor a tar archive (nor a folder)")
    into = Path(into)
    done = 0
    if kind == "zip":
        try:
            with zipfile.ZipFile(archive) as zf:
                infos = zf.infolist()
                for info in infos:
                    if _unsafe_name(info.filename):
                        raise _refuse_member(archive, info.filename)
                    if (info.external_attr >> 16) & 0o170000 == 0o120000:
                        raise _refuse_member(archive, info.filename, "that is a symbolic link")
                files = [i for i in infos if not i.is_dir()]
                for info in files:
                    dest = into.joinpath(*PurePosixPath(info.filename.replace("\\", "/")).parts)
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    with zf.open(info) as src, open(dest, "wb") as out:  # the CRC is checked as it is read
                        shutil.copyfileobj(src, out, 1 << 20)
                    done += 1
                    if on_progress is not None:
                        on_progress(done, len(files))
        except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, ValueError, NotImplementedError, zlib.error) as exc:
            raise _bad_archive(archive, "zip", exc) from None
        return done
    try:
        with tarfile.open(archive) as tf:
            members = tf.getmembers()  # reads the whole archive: a truncated one fails here
            for m in members:
                if _unsafe_name(m.name):
                    raise _refuse_member(archive, m.name)
                if not (m.isfile() or m.isdir()):
                    raise _refuse_member(archive, m.name, "that is a link or a device file")
            files = [m for m in members if m.isfile()]
            for m in files:
                dest = into.joinpath(*PurePosixPath(m.name).parts)
                dest.parent.mkdir(parents=True, exist_ok=True)
                src = tf.extractfile(m)
                with src, open(dest, "wb") as out:
                    shutil.copyfileobj(src, out, 1 << 20)
                if dest.stat().st_size != m.size:
                    raise InputError(f"archive {archive}: member {m.name} is truncated")
                done += 1
                if on_progress is not None:
                    on_progress(done, len(files))
    except (tarfile.TarError, EOFError, zlib.error, ValueError) as exc:
        raise _bad_archive(archive, "tar", exc) from None
    except OSError as exc:
        if exc.errno is not None:  # disk full, permissions: not the archive
            raise
        raise _bad_archive(archive, "tar", exc) from None
    return done


def _copy_folder(src: Path, dest: Path) -> None:
    """Copy a folder (hard links where the file system allows, else copies)."""

    def link_or_copy(a, b):
        try:
            os.link(a, b)
        except OSError:
            shutil.copy2(a, b)

    shutil.copytree(src, dest, copy_function=link_or_copy, symlinks=False, dirs_exist_ok=True)


# --- 3. finding and checking ---------------------------------------------------------------


def find_data_root(folder: Path, max_depth: int = 4) -> Path:
    """The folder under `folder` that holds `train/` and `test/` (breadth first)."""
    level = [Path(folder)]
    for _ in range(max_depth + 1):
        for d in level:
            if (d / "train").is_dir() and (d / "test").is_dir():
                return d
        level = sorted(c for d in level for c in d.iterdir() if c.is_dir() and not c.name.startswith("."))
    raise InputError(f"{folder} holds no data set in the authors' layout (a folder with train/ and test/, "
                     "e.g. UBC_fashion_smpl/)")


def _check_fid_stats(path: Path) -> str | None:
    import numpy as np

    try:
        with np.load(path, allow_pickle=False) as z:
            if "mu" not in z.files or "sigma" not in z.files:
                return "lacks 'mu' or 'sigma'"
            mu, sigma = z["mu"], z["sigma"]
    except (OSError, ValueError, EOFError) as exc:
        return f"not a readable .npz ({type(exc).__name__})"
    if mu.ndim != 1 or sigma.shape != (mu.shape[0], mu.shape[0]):
        return f"mu {mu.shape} and sigma {sigma.shape} are not D and DxD"
    if not (np.isfinite(mu).all() and np.isfinite(sigma).all()):
        return "holds NaN or infinite values"
    return None


def _check_frame_copies(root: Path, name: str) -> tuple[list, int]:
    from bdmm_cli.dataset.validate import BadFile, _check_png

    folder = root / name
    if not folder.is_dir():
        return [BadFile(folder, "missing folder (frame copies for FVD)")], 0
    bad, n = [], 0
    videos = sorted(d for d in folder.iterdir() if d.is_dir())
    if not videos:
        bad.append(BadFile(folder, "holds no video folders"))
    for v in videos:
        pngs = sorted(v.glob("*.png"))
        if not pngs:
            bad.append(BadFile(v, "holds no PNG frames"))
        for p in pngs:
            n += 1
            reason = _check_png(p)
            if reason is not None:
                bad.append(BadFile(p, reason))
    return bad, n


def check_release(root: Path, progress: bool = False) -> dict:
    """Check a data set in the authors' release layout in full; InputError listing every bad file.

    Returns the number of files checked per part.
    """
    from bdmm_cli.dataset.layout import read_test_list
    from bdmm_cli.dataset.validate import BadFile, _bad_error, _with_bar, validate_dataset

    bad: list = []
    counts: dict = {}
    for split in ("train", "test"):
        try:
            check = _with_bar(f"checking {split}/", "files", progress,
                              lambda cb, s=split: validate_dataset(root, s, on_progress=cb))
        except InputError as exc:
            bad.append(BadFile(root / split, str(exc)))
            continue
        bad += check.bad
        counts[split] = check.files
    stats = root / "fid_stat.npz"
    reason = _check_fid_stats(stats) if stats.is_file() else "missing (the real FID statistics)"
    if reason:
        bad.append(BadFile(stats, reason))
    test_list = root / "test_list.csv"
    if test_list.is_file():
        try:
            sequences = read_test_list(test_list, root)
            listed = {p for s in sequences for p in (s.ref_frame, s.ref_pose, *s.gen_frames, *s.gen_poses)}
            bad += [BadFile(p, "listed in test_list.csv but missing") for p in sorted(listed) if not p.is_file()]
            counts["test_list"] = len(sequences)
        except InputError as exc:
            bad.append(BadFile(test_list, str(exc)))
    else:
        bad.append(BadFile(test_list, "missing (the evaluation sequences)"))
    for name in FRAME_COPIES:
        more, n = _check_frame_copies(root, name)
        bad += more
        counts[name] = n
    if bad:
        raise _bad_error(f"data set {root}", sorted(bad, key=lambda b: str(b.path)), sum(counts.values()) + len(bad))
    return counts


def find_results_root(folder: Path) -> Path:
    """The deepest folder holding every strip PNG under `folder` (their common parent)."""
    pngs = [p for p in Path(folder).rglob("*.png") if not any(part.startswith(".") for part in p.relative_to(folder).parts)]
    if not pngs:
        raise InputError(f"{folder} holds no PNG images (expected the authors' 256x1280 result strips)")
    common = Path(os.path.commonpath([str(p.parent) for p in pngs]))
    # keep the video folders (<video>.mp4/frames/...) below the root
    while common != Path(folder) and (common.name == "frames" or common.name.endswith(".mp4")):
        common = common.parent
    return common


def check_results(root: Path, progress: bool = False) -> dict:
    """Every PNG under `root` is a complete 5-panel strip; InputError listing the bad ones."""
    from bdmm_cli.dataset.validate import BadFile, _bad_error, _check_png
    from bdmm_cli.metrics.strips import strip_problem

    pngs = sorted(root.rglob("*.png"))
    bad = []
    for p in pngs:
        reason = _check_png(p) or strip_problem(p)
        if reason:
            bad.append(BadFile(p, reason))
    if bad:
        raise _bad_error(f"results {root}", bad, len(pngs))
    return {"strips": len(pngs)}


# --- the command ---------------------------------------------------------------------------


def _is_url(text: str) -> bool:
    from bdmm_cli.setup import is_url

    return is_url(text)


def _read_marker(path: Path) -> dict:
    try:
        return json.loads((path / MARKER).read_text())
    except (OSError, ValueError):
        return {}


def _fetch(src: DatasetSource | None, source: str | None, accept_licenses: bool,
           announce: Callable[[str], None]) -> tuple[Path, str]:
    """1. the local archive or folder to install from, and its label."""
    from bdmm_cli.hub.urlfetch import NotAFileError, download_url

    if source is not None and not _is_url(source):
        path = Path(source).expanduser()
        if not path.exists():
            raise InputError(f"--from {source}: no such file or folder")
        return path, str(path)
    if source is not None:
        if not accept_licenses:
            raise InputError(f"--from {source} is a download: pass --accept-licenses to download it "
                             "(or download it yourself and pass --from FILE)")
        announce(f"downloading {source}")
        return download_url(source, label=Path(source).name), source
    assert src is not None
    announce(f"{src.name}: {src.url}\n  license: {src.license}\n  source: {src.provenance}"
             + (f"\n  needs about {src.disk_gb:g} GB of disk space" if src.disk_gb else ""))
    if not accept_licenses:
        raise InputError(f"pass --accept-licenses to download {src.name} under the license printed above, "
                         f"or --from FILE for the archive ({src.filename}) you already have")
    try:
        path = download_url(src.download_url or src.url, filename=src.filename, expected_size=src.size, label=src.name)
    except NotAFileError:
        raise MissingResourceError(
            f"{src.name} was not downloaded: the link answers with a web page (a share link that needs a browser). "
            f"Open {src.url} in a browser, save the file, then run: bdmm data download {src.name} --from {src.filename}"
        ) from None
    except MissingResourceError as exc:
        raise MissingResourceError(
            f"{src.name} was not downloaded: {exc}; or open {src.url} in a browser, save the file, then run: "
            f"bdmm data download {src.name} --from {src.filename}") from None
    return path, src.url


def download_dataset(
    name: str,
    source: str | None = None,
    *,
    accept_licenses: bool = False,
    force: bool = False,
    data_root: str | Path | None = None,
    progress: bool = False,
    announce: Callable[[str], None] = lambda _msg: None,
) -> DownloadResult:
    """Fetch, unpack, check and publish the data set `name` (see the module docstring).

    Args:
        name: a `[datasets.*]` name of the registry ("fashionvideo", "fashionvideo-results").
        source: a local archive or folder, or a URL; None = the registry's link.
        accept_licenses: allow downloads (the license is announced first).
        force: replace a published copy that came from a different archive.
        data_root: where named data sets live (default `$BDMM_HOME/datasets`).
        progress: show progress bars; announce: receives the license notice and download lines.
    Raises:
        InputError: unknown name, bad source, unsafe or truncated archive, a bad file in the
            data (all listed), or a different copy already published without `force`.
        MissingResourceError: the download failed or needs a browser (the message says what to do).
    """
    from bdmm_cli.fileio import FileLock, atomic_output_dir, sha256_file, sweep_stale, temp_dir

    sources = load_sources()
    if name not in sources:
        raise InputError(f"unknown data set {name!r}; known: {', '.join(sorted(sources)) or 'none'} "
                         "(any other data: `bdmm data prepare VIDEOS -o DATA`, then --data DATA)")
    src = sources[name]
    if src.kind == "videos":
        raise InputError(f"{name} is given as videos: `bdmm data download {name} --from ARCHIVE_OR_FOLDER` sorts "
                         "them by the official split lists and prepares them")
    root = datasets_root(data_root)
    dest = root / name
    current = _read_marker(dest) if (dest / MARKER).is_file() else None
    if current is not None and source is None and not force:
        return DownloadResult(name, dest, "already installed", current.get("source", ""), current.get("sha256", ""),
                              current.get("counts", {}))
    if dest.exists() and current is None and any(dest.iterdir()) and not force:
        raise InputError(f"{dest} already exists and was not made by bdmm data download; "
                         "move it away, or pass --force to replace it")

    local, label = _fetch(src, source, accept_licenses, announce)
    digest = ""
    if local.is_file():
        with _bar(progress, "sha256", local.stat().st_size) as advance:
            digest = sha256_file(local, on_bytes=advance)
        if current is not None and current.get("sha256") == digest:
            return DownloadResult(name, dest, "already installed", current.get("source", ""), digest,
                                  current.get("counts", {}))
    if current is not None and not force:
        if not digest and current.get("source") == label:  # the same folder again
            return DownloadResult(name, dest, "already installed", label, "", current.get("counts", {}))
        raise InputError(f"{name} is already installed from a different source ({current.get('source')}); "
                         f"pass --force to replace it with {label}")

    root.mkdir(parents=True, exist_ok=True)
    with FileLock(root / f".{name}.lock"):
        sweep_stale(root)
        scratch = temp_dir(root, f"{name}-unpack")
        try:
            # 2. unpack (or copy a folder)
            if local.is_dir():
                _copy_folder(local, scratch / "data")
            else:
                with _bar(progress, f"unpacking {local.name}", None) as advance:
                    unpack_archive(local, scratch, on_progress=lambda done, total: advance(1))
            # 3. find and check in full
            if src.kind == "dataset":
                found = find_data_root(scratch)
                counts = check_release(found, progress=progress)
            else:
                found = find_results_root(scratch)
                counts = check_results(found, progress=progress)
            # 4. publish atomically
            with atomic_output_dir(dest, force=True) as tmp:
                for child in found.iterdir():
                    os.rename(child, tmp / child.name)
                (tmp / MARKER).write_text(json.dumps(
                    {"name": name, "kind": src.kind, "source": label, "sha256": digest, "counts": counts}, indent=2) + "\n")
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    return DownloadResult(name, dest, "installed", label, digest, counts)


def publish_prepared(
    name: str,
    prepare: Callable[[Path], None],
    source: str,
    *,
    force: bool = False,
    data_root: str | Path | None = None,
    progress: bool = False,
) -> DownloadResult:
    """Publish what `prepare(folder)` writes (`bdmm data prepare` of downloaded videos) as the
    data set `name`: written into a temporary folder, both splits checked in full
    (`dataset.validate`), then one atomic rename with the marker. A published copy is replaced
    only with `force`."""
    from bdmm_cli.dataset.validate import check_dataset
    from bdmm_cli.fileio import FileLock, atomic_output_dir, sweep_stale, temp_dir

    root = datasets_root(data_root)
    dest = root / name
    if dest.is_dir() and any(dest.iterdir()) and not force:
        raise InputError(f"{dest} already exists; pass --force to replace it with the data prepared from the videos")
    root.mkdir(parents=True, exist_ok=True)
    with FileLock(root / f".{name}.lock"):
        sweep_stale(root)
        scratch = temp_dir(root, f"{name}-prepare")
        try:
            prepare(scratch / "data")
            counts = {s: check_dataset(scratch / "data", s, progress=progress).files for s in ("train", "test")}
            with atomic_output_dir(dest, force=True) as tmp:
                for child in (scratch / "data").iterdir():
                    os.rename(child, tmp / child.name)
                (tmp / MARKER).write_text(json.dumps(
                    {"name": name, "kind": "dataset", "source": source, "sha256": "", "counts": counts}, indent=2) + "\n")
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    return DownloadResult(name, dest, "installed", source, "", counts)


class _bar:
    """A one-task rich progress bar (or nothing): `with _bar(on, desc, total) as advance: advance(n)`."""

    def __init__(self, enabled: bool, desc: str, total: int | None) -> None:
        self.enabled, self.desc, self.total = enabled, desc, total

    def __enter__(self) -> Callable[[int], None]:
        if not self.enabled:
            return lambda n: None
        from bdmm_cli.progress import progress_bar

        self._p = progress_bar(transient=True)
        self._p.__enter__()
        task = self._p.add_task(self.desc, total=self.total)
        return lambda n: self._p.advance(task, n)

    def __exit__(self, *exc) -> None:
        if self.enabled:
            self._p.__exit__(*exc)


__all__ = ["DatasetSource", "DownloadResult", "MARKER", "check_release", "check_results", "download_dataset",
           "find_data_root", "installed_path", "load_sources", "publish_prepared", "unpack_archive"]
