"""`bdmm setup`: install everything the main job needs from the authors' release, in one step.

    result = run_setup(["SMPLDataset.zip", "bdmm_dancefashion_checkpoints/"])
    result = run_setup([], accept_licenses=True)        # download the registry's [sources.*]

Each source is a zip or tar archive, an unpacked folder, a single file, or a URL (downloaded
with `hub.urlfetch.download_url`: progress bar, resumable, size-checked, cached; then treated
as a path). Files are recognised by name at any depth (:data:`ITEMS`).

Everything is validated before anything is installed:

1. every archive is checked whole: a member whose name is absolute or climbs out (`../x`), a
   truncated or corrupt archive, or a member over the size cap refuses the whole command
   (one error naming the archive); recognised members are read by name into a temporary
   folder (their CRC is checked as they are read);
2. every recognised file is read through the same strict, safe loader `bdmm body install`
   and `bdmm weights import` use (no pickled code runs; layouts checked key by key);
3. only then is each item installed, atomically, under `data_dir()/weights/<name>/` (the SMPL
   model where `bdmm body install` puts it) and its sha256 recorded (`hub.installed`), which
   makes it the default the loaders resolve: `bdmm animate PHOTO VIDEO -o OUT` needs no
   weight options afterwards.

Idempotent: an item installed from the same file (same sha256) is left alone, so a second
run installs and rewrites nothing. An item installed from a different file of the same name
is replaced only with `force`; one installed from a less preferred name (SPIN's own
`model_checkpoint.pt`) is replaced by the preferred one (the authors' `spin_ckpt.pth`).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tarfile
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from bdmm_cli.errors import BdmmError, InputError, MissingResourceError
from bdmm_cli.fileio import atomic_output, sha256_file
from bdmm_cli.hub import installed as inst
from bdmm_cli.hub.registry import SetupSource, load_registry
from bdmm_cli.hub.urlfetch import download_url
from bdmm_cli.kinds import KINDS, by_setup_name
from bdmm_cli.paths import cache_dir

#: Largest archive member read (uncompressed bytes); BDMM_SETUP_MAX_MEMBER_BYTES overrides it.
MAX_MEMBER_BYTES = 8 << 30


@dataclass(frozen=True)
class Item:
    """One thing `bdmm setup` installs.

    Fields:
        name: registry name ("smpl" for the body model, which `bdmm body install` owns).
        files: the file names it is recognised by, preferred first.
        what: how the summary names it.
        required: the main job (`bdmm animate` with its defaults) needs it.
    """

    name: str
    files: tuple[str, ...]
    what: str
    required: bool = False


def _network(kind: str, required: bool = False, release: str = "") -> Item:
    """The item of a network kind of the one table (`bdmm_cli.kinds`): its registry name and files."""
    k = KINDS[kind]
    return Item(k.setup_name, k.files, k.title + release, required)


ITEMS = (
    Item("smpl", ("smpl_model.pkl", "SMPL_NEUTRAL.pkl"), "SMPL body model", True),
    _network("spin", True),
    _network("generator", True, " (FashionVideo)"),
    _network("discriminator", release=" (FashionVideo)"),
    _network("temporal_discriminator", release=" (FashionVideo)"),
    Item("smpl-mean-params", ("smpl_mean_params.npz",), "SPIN's SMPL mean parameters"),
    Item("smplify-gmm", ("gmm_08.pkl",), "SMPLify GMM pose prior"),
    _network("openpose_body25"),
    _network("dwpose_det"),
    _network("dwpose_pose"),
)
_BY_FILE = {f.lower(): (item, rank) for item in ITEMS for rank, f in enumerate(item.files)}


@dataclass(frozen=True)
class Found:
    """A recognised file: the local copy to read, where it came from, and its sha256."""

    item: Item
    rank: int
    path: Path
    origin: str
    sha256: str


@dataclass(frozen=True)
class Row:
    """One line of the summary: item, "installed" / "already installed" / "missing", origin, sha256."""

    item: Item
    status: str
    origin: str = ""
    sha256: str = ""


@dataclass(frozen=True)
class Unfetched:
    """A download that could not be made without a browser (or failed): what to do instead."""

    source: SetupSource
    reason: str


@dataclass(frozen=True)
class SetupResult:
    """What a run did.

    Fields:
        rows: one per :data:`ITEMS` entry, in that order.
        unfetched: downloads that need the user (a share link answering with a web page).
    """

    rows: tuple[Row, ...]
    unfetched: tuple[Unfetched, ...] = ()

    @property
    def installed(self) -> list[str]:
        return [r.item.name for r in self.rows if r.status == "installed"]

    @property
    def missing(self) -> list[str]:
        return [r.item.name for r in self.rows if r.status == "missing"]


# --- sources -> local files ----------------------------------------------------------------


def is_url(text: str) -> bool:
    return bool(re.match(r"^https?://", str(text), re.IGNORECASE))


def _max_member() -> int:
    env = os.environ.get("BDMM_SETUP_MAX_MEMBER_BYTES")
    return int(env) if env else MAX_MEMBER_BYTES


def _unsafe_name(name: str) -> bool:
    """An archive member name that is absolute or climbs out of the extraction folder."""
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        return True
    return any(part == ".." for part in re.split(r"[\\/]", name))


def _kind_of_archive(path: Path) -> str | None:
    name = path.name.lower()
    if name.endswith(".zip"):
        return "zip"
    if name.endswith((".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")):
        return "tar"
    if zipfile.is_zipfile(path):
        return "zip"
    with contextlib.suppress(OSError, tarfile.TarError):
        if tarfile.is_tarfile(path):
            return "tar"
    return None


def _over_cap(archive: Path, member: str, limit: int) -> InputError:
    return InputError(f"archive {archive}: member {member} is larger than the {limit:,}-byte cap "
                      "(set BDMM_SETUP_MAX_MEMBER_BYTES to raise it)")


def _copy_capped(src, dest: Path, limit: int, archive: Path, member: str) -> None:
    written = 0
    with open(dest, "wb") as out:
        for block in iter(lambda: src.read(1 << 20), b""):
            written += len(block)
            if written > limit:
                raise _over_cap(archive, member, limit)
            out.write(block)


def _extract_zip(archive: Path, into: Path) -> list[tuple[Path, str]]:
    import zlib

    limit = _max_member()
    out = []
    try:
        with zipfile.ZipFile(archive) as zf:
            infos = zf.infolist()
            bad = [i.filename for i in infos if _unsafe_name(i.filename)]
            if bad:
                raise InputError(f"archive {archive} has a member outside its folder ({bad[0]!r}); refusing it")
            for info in infos:
                base = PurePosixPath(info.filename.replace("\\", "/")).name
                if info.is_dir() or base.lower() not in _BY_FILE:
                    continue
                if info.file_size > limit:
                    raise _over_cap(archive, info.filename, limit)
                dest = into / f"{len(out):03d}" / base
                dest.parent.mkdir()
                with zf.open(info) as src:
                    _copy_capped(src, dest, limit, archive, info.filename)
                out.append((dest, f"{archive.name}!{info.filename}"))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, ValueError, NotImplementedError, zlib.error) as exc:
        raise InputError(f"archive {archive} is not a readable zip archive (truncated or corrupt?): "
                         f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
    return out


def _extract_tar(archive: Path, into: Path) -> list[tuple[Path, str]]:
    import zlib

    limit = _max_member()
    out = []
    try:
        with tarfile.open(archive) as tf:
            members = tf.getmembers()  # reads the whole archive: a truncated one fails here
            bad = [m.name for m in members if _unsafe_name(m.name)]
            if bad:
                raise InputError(f"archive {archive} has a member outside its folder ({bad[0]!r}); refusing it")
            for m in members:
                base = PurePosixPath(m.name).name
                if not m.isfile() or base.lower() not in _BY_FILE:
                    continue
                if m.size > limit:
                    raise _over_cap(archive, m.name, limit)
                dest = into / f"{len(out):03d}" / base
                dest.parent.mkdir()
                src = tf.extractfile(m)
                if src is None:
                    continue
                with src:
                    _copy_capped(src, dest, limit, archive, m.name)
                if dest.stat().st_size != m.size:
                    raise InputError(f"archive {archive}: member {m.name} is truncated")
                out.append((dest, f"{archive.name}!{m.name}"))
    except (tarfile.TarError, EOFError, zlib.error, ValueError, OSError) as exc:
        if isinstance(exc, OSError) and exc.errno is not None:  # disk full, permissions: not the archive
            raise
        raise InputError(f"archive {archive} is not a readable tar archive (truncated or corrupt?): "
                         f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
    return out


def _files_of(source: Path, label: str, tmp: Path) -> list[tuple[Path, str]]:
    """(local file, origin) of every recognised file a source holds."""
    if source.is_dir():
        return [(p, str(p)) for p in sorted(source.rglob("*")) if p.is_file() and p.name.lower() in _BY_FILE]
    if not source.is_file():
        raise InputError(f"--from {label}: no such file or folder")
    if source.name.lower() in _BY_FILE:
        return [(source, str(source))]
    kind = _kind_of_archive(source)
    folder = Path(tempfile.mkdtemp(prefix="src.", dir=tmp))
    if kind == "zip":
        return _extract_zip(source, folder)
    if kind == "tar":
        return _extract_tar(source, folder)
    names = ", ".join(sorted({f for i in ITEMS for f in i.files}))
    raise InputError(f"--from {label} is neither a zip/tar archive, a folder, nor a file bdmm setup knows ({names})")


def _choose(files: list[tuple[Path, str]]) -> dict[str, Found]:
    """One file per item (the preferred name); the same name twice with different content is an error."""
    chosen: dict[str, Found] = {}
    for path, origin in files:
        item, rank = _BY_FILE[path.name.lower()]
        found = Found(item, rank, path, origin, sha256_file(path))
        have = chosen.get(item.name)
        if have is None or rank < have.rank:
            chosen[item.name] = found
        elif rank == have.rank and found.sha256 != have.sha256:
            raise InputError(f"two different {path.name} files: {have.origin} and {origin}; pass only one of them")
    return chosen


# --- items: validate, then install ---------------------------------------------------------

def _validate(found: Found) -> Callable[[], inst.Installed]:
    """Read `found` with its strict, safe loader now; return the step that installs it."""
    name, origin, digest = found.item.name, found.origin, found.sha256
    root = inst.installed_root()
    if name == "smpl":
        from bdmm_cli.body.body_model import install_body_model
        from bdmm_cli.body.smpl_file import read_smpl_file

        read_smpl_file(found.path)

        def install() -> inst.Installed:
            dest, _ = install_body_model(found.path, force=True)
            return inst.describe(name, dest, dest, origin, digest)

        return install
    kind = by_setup_name(name)
    if kind is not None and kind.importable:
        from bdmm_cli.checkpoints import import_checkpoint, write_folder

        ckpt = import_checkpoint(found.path, kind.name, "bdmm setup", source=origin, sha256=digest)

        def install() -> inst.Installed:
            root.mkdir(parents=True, exist_ok=True)
            folder = write_folder(ckpt, root / name, force=True)
            return inst.describe(name, folder, folder / "model.safetensors", origin, digest)

        return install
    if name == "smpl-mean-params":
        from bdmm_cli.pose.hmr import read_smpl_mean_params

        read_smpl_mean_params(found.path)

        def install() -> inst.Installed:
            dest = root / name / "smpl_mean_params.npz"
            dest.parent.mkdir(parents=True, exist_ok=True)
            with atomic_output(dest, force=True) as tmp:
                shutil.copyfile(found.path, tmp)
            return inst.describe(name, dest, dest, origin, digest)

        return install
    if name == "smplify-gmm":
        from bdmm_cli.pose.gmm import installed_gmm_path, read_gmm_file, save_gmm_npz

        gmm = read_gmm_file(found.path)

        def install() -> inst.Installed:
            dest = installed_gmm_path()
            dest.parent.mkdir(parents=True, exist_ok=True)
            with atomic_output(dest, force=True) as tmp:
                save_gmm_npz(gmm, tmp, digest, found.path.name)
            return inst.describe(name, dest, dest, origin, digest)

        return install
    if kind is not None:  # an ONNX graph
        kind.checker()(name, found.path)  # onnxruntime reads it; input and outputs match the published file's

        def install() -> inst.Installed:
            dest = root / name / found.item.files[0]
            dest.parent.mkdir(parents=True, exist_ok=True)
            with atomic_output(dest, force=True) as tmp:
                shutil.copyfile(found.path, tmp)
            return inst.describe(name, dest, dest, origin, digest)

        return install
    raise AssertionError(name)  # pragma: no cover - ITEMS and this function list the same names


def _rank_of(origin: str) -> int:
    """Preference rank of the file an item was installed from (its name, at the end of `origin`)."""
    name = PurePosixPath(origin.split("!")[-1].replace("\\", "/")).name.lower()
    return _BY_FILE.get(name, (None, len(_BY_FILE)))[1]


def _current(item: Item, manifest: dict[str, inst.Installed]) -> inst.Installed | None:
    """The verified install of `item`, or None (gone or changed: it will be installed again)."""
    entry = manifest.get(item.name)
    if entry is None:
        return None
    try:
        inst.check(entry)
    except BdmmError:
        return None
    return entry


def _smpl_installed_sha() -> str | None:
    """sha256 of the file `bdmm body install` (or setup) installed the body model from, if any."""
    import numpy as np

    from bdmm_cli.body.body_model import installed_model_path

    dest = installed_model_path()
    if not dest.is_file():
        return None
    try:
        with np.load(dest, allow_pickle=False) as z:
            return str(z["source_sha256"]) if "source_sha256" in z.files else ""
    except (OSError, ValueError):
        return ""


# --- the command -----------------------------------------------------------------------------


def _check_download(path: Path, src: SetupSource) -> None:
    """A download whose registry entry pins its sha256 must have it; a different file is deleted
    from the download cache (so the next run fetches it again) and nothing is installed."""
    digest = sha256_file(path)
    if digest != src.sha256:
        path.unlink(missing_ok=True)
        raise InputError(f"{src.name}: the file downloaded from {src.download_url or src.url} has sha256 {digest}, "
                         f"not the published {src.sha256}; nothing was installed")


def plan_downloads(manifest: dict[str, inst.Installed] | None = None) -> list[SetupSource]:
    """The registry's [sources.*] that carry something not installed yet, in order (a later
    source for the same item is a fallback: fetched only when the earlier one fails)."""
    manifest = inst.read_manifest() if manifest is None else manifest
    have = {i.name for i in ITEMS if _current(i, manifest) is not None}
    if _smpl_installed_sha() is not None:
        have.add("smpl")
    return [src for src in load_registry().sources if set(src.provides) - have]


def run_setup(
    sources: list[str],
    *,
    accept_licenses: bool = False,
    force: bool = False,
    announce: Callable[[str], None] = lambda _msg: None,
) -> SetupResult:
    """Install what `sources` (paths or URLs; none = the registry's downloads) carry.

    Args:
        sources: zip/tar archives, folders, files or http(s) URLs.
        accept_licenses: allow downloads (URLs, or the registry's sources when `sources` is
            empty); their licenses are announced first.
        force: replace an item installed from a different file.
        announce: receives one line per license notice, download and manual step.
    Raises:
        InputError: a bad source (missing path, traversal member, truncated archive, ...);
            nothing is installed then.
        CheckpointError: a recognised file fails its strict loader; nothing is installed.
    """
    manifest = inst.read_manifest()
    unfetched: list[Unfetched] = []
    locals_: list[tuple[Path, str]] = []
    urls = [s for s in sources if is_url(s)]
    if urls and not accept_licenses:
        raise InputError(f"--from {urls[0]} is a download: pass --accept-licenses to download it "
                         "(or download it yourself and pass --from FILE)")
    for s in sources:
        if is_url(s):
            announce(f"downloading {s}")
            locals_.append((download_url(s, label=Path(s).name), s))
        else:
            locals_.append((Path(s).expanduser(), s))
    if not sources:
        planned = plan_downloads(manifest)
        for src in planned:
            announce(f"{src.name}: {src.url}\n  carries: {', '.join(src.provides)}\n  license: {src.license}")
        if planned and not accept_licenses:
            raise InputError("nothing to install from: pass --accept-licenses to download the files listed above "
                             "under their licenses, or --from PATH for archives you already have")
        covered = {i.name for i in ITEMS if _current(i, manifest) is not None}
        for src in planned:
            if not set(src.provides) - covered:
                continue  # an earlier download carries all of it
            try:
                path = download_url(src.download_url or src.url, filename=src.filename, expected_size=src.size,
                                    label=src.name)
            except MissingResourceError as exc:
                unfetched.append(Unfetched(src, str(exc)))
                announce(f"{src.name}: not downloaded ({exc}).\n"
                         f"  Open {src.url}, save the file, then run: bdmm setup --from {src.filename}")
                continue
            if src.sha256:
                _check_download(path, src)
            covered |= set(src.provides)
            locals_.append((path, src.url))

    cache_dir().mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".bdmm-setup.", dir=cache_dir()) as tmp_name:
        tmp = Path(tmp_name)
        files: list[tuple[Path, str]] = []
        for path, label in locals_:  # 1. every source checked and unpacked
            files += _files_of(path, label, tmp)
        chosen = _choose(files)
        smpl_sha = _smpl_installed_sha()
        steps: list[tuple[Found, Callable[[], inst.Installed]]] = []
        rows: dict[str, Row] = {}
        for item in ITEMS:  # 2. every recognised file read by its strict loader
            found = chosen.get(item.name)
            current = _current(item, manifest)
            if item.name == "smpl":
                installed_sha = smpl_sha
            else:
                installed_sha = current.source_sha256 if current else None
            if found is None:
                rows[item.name] = (Row(item, "already installed", current.source if current else "", installed_sha or "")
                                   if installed_sha is not None else Row(item, "missing"))
                continue
            if installed_sha == found.sha256:
                rows[item.name] = Row(item, "already installed", current.source if current else found.origin,
                                      found.sha256)
                continue
            installed_rank = _rank_of(current.source) if current else found.rank
            if installed_sha is not None and not force and installed_rank < found.rank:
                rows[item.name] = Row(item, "already installed", current.source, installed_sha)
                continue  # installed from a preferred file (spin_ckpt.pth over model_checkpoint.pt): kept
            if installed_sha is not None and not force and installed_rank == found.rank:
                where = current.source if current else "an earlier `bdmm body install`"
                raise InputError(f"{item.name} is already installed from a different file ({where}); "
                                 f"pass --force to replace it with {found.origin}")
            steps.append((found, _validate(found)))
        records = []
        for found, install in steps:  # 3. install, each atomically
            records.append(install())
            inst.record(records[-1:])
            rows[found.item.name] = Row(found.item, "installed", found.origin, found.sha256)
    return SetupResult(tuple(rows[i.name] for i in ITEMS), tuple(unfetched))


__all__ = ["ITEMS", "Item", "Row", "SetupResult", "Unfetched", "is_url", "plan_downloads", "run_setup"]
