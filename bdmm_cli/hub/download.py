"""Fetch a registry entry to a verified local file.

1. Resolve where it lives: the project's Hub repo (`--repo` / `BDMM_HUB_REPO`, revision
   `--revision` / `BDMM_HUB_REVISION`, else the registry's pinned revision), a URL, or a file
   shipped in a pip package.
2. Use the cached copy when there is one (no network at all); in offline mode a cold cache is
   a MissingResourceError naming the file and how to get it.
3. Otherwise download: Hub files with `huggingface_hub.hf_hub_download` into the standard HF
   cache (after a single, non-retrying HEAD so that an unreachable server fails in seconds,
   not after huggingface_hub's 20 s of retries), URL files with `pooch.retrieve` into
   `cache_dir()/weights/<name>/`; both with a rich progress bar.
4. Verify (bdmm_cli.hub.verify) before returning; a file that fails is deleted from the cache
   and never returned.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from bdmm_cli.errors import CheckpointError, MissingResourceError
from bdmm_cli.fileio import apply_umask
from bdmm_cli.hub import hfenv
from bdmm_cli.hub.progress import RichBar
from bdmm_cli.hub.registry import Registry, WeightEntry, load_registry
from bdmm_cli.hub.verify import ChecksumError, VerifiedFile, forget, verify_file
from bdmm_cli.kinds import IMPORTABLE
from bdmm_cli.paths import cache_dir

HEAD_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Location:
    """Where an entry is fetched from.

    Fields:
        source: "project", "url" or "package".
        repo, revision, filename: the Hub coordinates (project entries), "" otherwise.
        url: the URL (url entries, and package entries' fallback), "" otherwise.
    """

    source: str
    repo: str = ""
    revision: str = ""
    filename: str = ""
    url: str = ""

    def __str__(self) -> str:
        if self.source == "project":
            return f"{self.repo}/{self.filename}@{self.revision}"
        return self.url or self.filename


def resolve_location(
    entry: WeightEntry, registry: Registry, repo: str | None = None, revision: str | None = None
) -> Location:
    """The coordinates of `entry`, with the repo/revision overrides applied (project entries)."""
    if entry.source != "project":
        return Location(source=entry.source, filename=entry.filename, url=entry.url)
    repo_id = repo or os.environ.get("BDMM_HUB_REPO") or registry.hub.repo
    rev = revision or os.environ.get("BDMM_HUB_REVISION")
    if not rev:
        # The registry's pin is a revision of the project's repo; a mirror or private copy has
        # its own history, so it is read at "main" (the sha256 check still applies).
        rev = registry.hub.revision if repo_id == registry.hub.repo else "main"
    return Location(source="project", repo=repo_id, revision=rev, filename=entry.filename)


def _pass_option(entry: WeightEntry) -> str:
    """Which option takes an imported folder of this kind."""
    from bdmm_cli.kinds import KINDS

    kind = KINDS.get(entry.kind)
    return (kind.option if kind else "") or "DIR as the weights"


def _how_to_get(entry: WeightEntry) -> str:
    if entry.source == "setup":
        return "run `bdmm setup --accept-licenses`, or `bdmm setup --from ARCHIVE` with the archive that carries it"
    if entry.kind in IMPORTABLE:
        return (f"run `bdmm setup --accept-licenses` (the authors' release), `bdmm weights download {entry.name}` "
                f"while online, or convert the authors' file with `bdmm weights import FILE -o DIR` and pass "
                f"{_pass_option(entry)} instead")
    return f"run `bdmm weights download {entry.name}` while online"


def _remove_cached(path: Path) -> None:
    """Delete a cached file: the HF snapshot pointer and the blob it points to, or the file."""
    path = Path(path)
    target = path.resolve()
    for p in {path, target}:
        try:
            p.unlink()
        except FileNotFoundError:
            pass
    forget(target)


def _verify_or_delete(entry: WeightEntry, path: Path, location: Location, trust: bool, rehash: bool,
                      delete: bool = True) -> VerifiedFile:
    try:
        return verify_file(entry, path, location=str(location), trust_unverified=trust, rehash=rehash)
    except ChecksumError as exc:
        if not delete:
            raise
        _remove_cached(path)
        raise ChecksumError(f"{exc} (the cached copy was deleted; {_how_to_get(entry)})") from None


# --- Hub -------------------------------------------------------------------------------------


def _hub_error(exc: Exception, entry: WeightEntry, loc: Location, endpoint: str) -> MissingResourceError:
    from huggingface_hub import errors as hf_errors

    where = f"{loc} on {endpoint}"
    if isinstance(exc, hf_errors.GatedRepoError):
        why = "the repo is gated: accept its terms on the Hub and log in (`hf auth login` or HF_TOKEN)"
    elif isinstance(exc, hf_errors.RepositoryNotFoundError):
        why = "repository not found (or private: log in with `hf auth login` or set HF_TOKEN)"
    elif isinstance(exc, hf_errors.RevisionNotFoundError):
        why = f"revision {loc.revision!r} not found"
    elif isinstance(exc, hf_errors.RemoteEntryNotFoundError):
        why = "file not found in the repo"
    elif isinstance(exc, hf_errors.HfHubHTTPError):
        status = getattr(getattr(exc, "response", None), "status_code", "?")
        why = f"the server answered HTTP {status}"
    elif isinstance(exc, hf_errors.HFValidationError):
        why = f"invalid repo id, revision or file name ({str(exc).splitlines()[0]})"
    elif isinstance(exc, OSError) and exc.errno is None and type(exc).__module__ == "builtins":
        why = f"the download failed ({' '.join(str(exc).split())})"
    else:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        why = f"cannot reach the server ({detail})"
    return MissingResourceError(f"cannot download {entry.name} ({where}): {why}; {_how_to_get(entry)}")


def _fetch_hub(entry: WeightEntry, loc: Location, *, force: bool) -> Path:
    from huggingface_hub import get_hf_file_metadata, hf_hub_download, hf_hub_url, try_to_load_from_cache

    cache = hfenv.hf_cache_dir()
    endpoint = hfenv.hf_endpoint()
    if not force:
        cached = try_to_load_from_cache(loc.repo, loc.filename, cache_dir=str(cache), revision=loc.revision)
        if isinstance(cached, str) and os.path.exists(cached):
            return Path(cached)
    if hfenv.sync_hf_offline():
        raise MissingResourceError(
            f"{entry.name} ({loc}) is not in the Hugging Face cache {cache} and offline mode is on "
            f"(HF_HUB_OFFLINE); {_how_to_get(entry)}"
        )
    url = hf_hub_url(loc.repo, loc.filename, revision=loc.revision, endpoint=endpoint)
    try:
        # One HEAD without retries: fail fast and clearly when the server is unreachable.
        get_hf_file_metadata(url, timeout=HEAD_TIMEOUT_S, endpoint=endpoint)
        path = hf_hub_download(
            loc.repo, loc.filename, revision=loc.revision, cache_dir=str(cache), endpoint=endpoint,
            force_download=force, tqdm_class=RichBar.labelled(entry.name),
            etag_timeout=HEAD_TIMEOUT_S,
        )
    except Exception as exc:
        # Hub answers and transport failures become one actionable line; anything else
        # (disk full, permissions: plain OSErrors) propagates as it is.
        transfer = isinstance(exc, OSError) and exc.errno is None  # e.g. "Consistency check failed"
        if transfer or type(exc).__module__.split(".")[0] in ("httpx2", "httpx", "huggingface_hub"):
            raise _hub_error(exc, entry, loc, endpoint) from None
        raise
    return Path(path)


# --- URL (pooch) -----------------------------------------------------------------------------


def _url_cache(entry: WeightEntry) -> Path:
    return cache_dir() / "weights" / entry.name


def _fetch_url(entry: WeightEntry, url: str, *, force: bool) -> Path:
    folder = _url_cache(entry)
    path = folder / entry.filename
    if force and path.exists():
        _remove_cached(path)
    if path.exists():
        return path
    if hfenv.offline():
        raise MissingResourceError(
            f"{entry.name} is not in the cache ({path}) and offline mode is on; {_how_to_get(entry)}, "
            f"or download {url} to {path} yourself"
        )
    import pooch
    import requests

    folder.mkdir(parents=True, exist_ok=True)
    known = f"sha256:{entry.sha256}" if entry.sha256 else None
    bar = RichBar(desc=entry.name)
    logger = pooch.get_logger()
    level = logger.level
    logger.setLevel("WARNING")  # our progress bar and errors say what pooch would log
    try:
        got = Path(pooch.retrieve(url, known_hash=known, fname=entry.filename, path=folder, progressbar=bar))
        apply_umask(got)  # pooch publishes its 0600 temporary as it is
        return got
    except ValueError as exc:  # pooch: hash mismatch (the download was already removed)
        raise ChecksumError(
            f"{entry.name}: sha256 mismatch for the download from {url}; the file is corrupt or was tampered "
            f"with and was deleted ({str(exc).splitlines()[0]})"
        ) from None
    except requests.exceptions.RequestException as exc:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise MissingResourceError(f"cannot download {entry.name} from {url}: {detail}; {_how_to_get(entry)}") from None
    finally:
        logger.setLevel(level)
        bar.close()


def _extract_member(entry: WeightEntry, archive: Path) -> Path:
    """Extract `entry.member` from a verified archive next to it (atomic rename)."""
    import tarfile

    out = archive.parent / Path(entry.member).name
    if out.exists():
        return out
    try:
        with tarfile.open(archive) as tar:
            member = tar.getmember(entry.member)
            src = tar.extractfile(member)
            if src is None:
                raise KeyError(entry.member)
            from bdmm_cli.fileio import atomic_write

            atomic_write(out, lambda tmp: tmp.write_bytes(src.read()))
    except (tarfile.TarError, KeyError) as exc:
        raise CheckpointError(f"{entry.name}: {archive} has no usable member {entry.member!r} ({exc})") from None
    return out


# --- package ---------------------------------------------------------------------------------


def _package_file(entry: WeightEntry) -> Path | None:
    import importlib.util

    spec = importlib.util.find_spec(entry.package)
    if spec is None or not spec.submodule_search_locations:
        return None
    for base in spec.submodule_search_locations:
        candidate = Path(base) / entry.package_path
        if candidate.is_file():
            return candidate
    return None


# --- entry point -----------------------------------------------------------------------------


def fetch(
    name: str,
    *,
    repo: str | None = None,
    revision: str | None = None,
    registry: Registry | None = None,
    trust_unverified: bool | None = None,
    force: bool = False,
    rehash: bool = False,
) -> Path:
    """Registry entry -> local, verified file path.

    Args:
        name: registry name (`bdmm weights list`), e.g. "generator-fashionvideo", "vgg19".
        repo, revision: override the project's Hub repo / revision (project entries).
        registry: a parsed registry (default: `load_registry()`).
        trust_unverified: accept a file the registry has no checksum for (default:
            `BDMM_TRUST_UNVERIFIED`).
        force: download again even when cached.
        rehash: hash the file even when its verification stamp is current.

    Raises:
        MissingResourceError: not cached and cannot be downloaded (offline, server down,
            not published, not found); the message says how to get it.
        CheckpointError: checksum mismatch (the cached copy is deleted) or no checksum known
            and not trusted.
    """
    registry = registry or load_registry()
    entry = registry.get(name)
    trust = hfenv.trust_unverified_env() if trust_unverified is None else trust_unverified
    loc = resolve_location(entry, registry, repo, revision)

    if entry.source == "setup":
        raise MissingResourceError(f"{entry.name} is not installed; {_how_to_get(entry)}")
    if entry.source == "project":
        if not entry.published and loc.repo == registry.hub.repo:
            raise MissingResourceError(
                f"{entry.name} is not published on the Hub yet ({loc}); run `bdmm setup --accept-licenses` "
                f"(the authors' release), convert the authors' checkpoint with `bdmm weights import FILE -o DIR` "
                f"and pass {_pass_option(entry)}, or point --repo / BDMM_HUB_REPO at a copy that has it"
            )
        path = _fetch_hub(entry, loc, force=force)
        return _verify_or_delete(entry, path, loc, trust, rehash).path

    if entry.source == "package":
        path = _package_file(entry)
        if path is not None:
            # A file of an installed package is not ours to delete: report, never use.
            return _verify_or_delete(entry, path, loc, trust, rehash, delete=False).path
        if not entry.url:
            raise MissingResourceError(f"{entry.name} needs the {entry.package!r} package: pip install {entry.package}")

    path = _fetch_url(entry, entry.url, force=force)
    verified = _verify_or_delete(entry, path, loc, trust, rehash)
    if entry.member:
        return _extract_member(entry, verified.path)
    return verified.path


def cached_path(name: str, *, repo: str | None = None, revision: str | None = None,
                registry: Registry | None = None) -> Path | None:
    """The cached file of an entry, or None; never touches the network (for `bdmm weights list`)."""
    registry = registry or load_registry()
    entry = registry.get(name)
    loc = resolve_location(entry, registry, repo, revision)
    if entry.source == "setup":
        return None
    if entry.source == "project":
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(loc.repo, loc.filename, cache_dir=str(hfenv.hf_cache_dir()),
                                        revision=loc.revision)
        return Path(cached) if isinstance(cached, str) and os.path.exists(cached) else None
    if entry.source == "package":
        found = _package_file(entry)
        if found is not None:
            return found
    path = _url_cache(entry) / entry.filename
    return path if path.exists() else None
