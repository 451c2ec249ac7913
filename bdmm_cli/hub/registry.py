"""The weights registry: `weights/registry.toml` parsed into frozen dataclasses.

The registry is data, not code: one entry per file the tool can fetch, with its source, its
checksum (full sha256, a torch.hub-style prefix, or nothing), size, license and provenance.
Which file is read: `$BDMM_REGISTRY` if set, else `weights/registry.toml` of this checkout
(or, for a wheel install, the copy installed under `<prefix>/share/bdmm/`).
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from bdmm_cli.errors import InputError, MissingResourceError
from bdmm_cli.kinds import KINDS as NETWORK_KINDS

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

REPO_ROOT = Path(__file__).resolve().parents[2]
# A checkout (or editable install) reads weights/registry.toml; a wheel installs the same
# file as data into <prefix>/share/bdmm/ (pyproject.toml, [tool.setuptools.data-files]).
_CHECKOUT_REGISTRY = REPO_ROOT / "weights" / "registry.toml"
_INSTALLED_REGISTRY = Path(sys.prefix) / "share" / "bdmm" / "registry.toml"
DEFAULT_REGISTRY = _CHECKOUT_REGISTRY if _CHECKOUT_REGISTRY.is_file() else _INSTALLED_REGISTRY

SOURCES = ("project", "url", "package", "setup")
#: Registry kinds: the network kinds of the one table (`bdmm_cli.kinds`), the data files and
#: the feature networks of training and evaluation.
KINDS = (
    *NETWORK_KINDS, "smpl_mean_params", "smplify_gmm",
    "vgg19", "alexnet", "lpips_linear", "inception_torchvision", "inception_fid", "i3d",
)
_HEX64 = re.compile(r"[0-9a-f]{64}")
_HEX = re.compile(r"[0-9a-f]{6,63}")


@dataclass(frozen=True)
class WeightEntry:
    """One file of the registry.

    Fields:
        name: registry key (`generator-fashionvideo`, `vgg19`, ...).
        kind: what the file holds (one of `KINDS`).
        source: "project" (our Hub repo), "url" (pooch), "package" (a pip package's file) or
            "setup" (only installed by `bdmm setup` from the archive that carries it).
        filename: path inside the Hub repo (project) or the cached file name (url, package).
        sha256: full lowercase hex digest, "" when not known.
        sha256_prefix: torch.hub-style name prefix ("" when none); weaker than sha256.
        size: exact size in bytes, 0 when not known.
        size_mb: approximate size for display, 0.0 when not known.
        url: download URL (url entries; fallback for package entries), "" otherwise.
        member: archive member to extract (url entries that are archives), "" otherwise.
        package, package_path: the pip package and the path inside it (package entries).
        dataset: data set the weights were trained on ("" for generic networks).
        published: False when the file is planned but not uploaded yet.
        license, provenance: free text.
    """

    name: str
    kind: str
    source: str
    filename: str
    sha256: str = ""
    sha256_prefix: str = ""
    size: int = 0
    size_mb: float = 0.0
    url: str = ""
    member: str = ""
    package: str = ""
    package_path: str = ""
    dataset: str = ""
    published: bool = True
    license: str = ""
    provenance: str = ""

    @property
    def verification(self) -> str:
        """"sha256" (full digest), "prefix" (torch.hub name prefix only) or "none"."""
        if self.sha256:
            return "sha256"
        if self.sha256_prefix:
            return "prefix"
        return "none"


@dataclass(frozen=True)
class HubDefaults:
    """The project's own Hub repo (`[hub]` table): repo id and pinned revision."""

    repo: str
    revision: str


@dataclass(frozen=True)
class SetupSource:
    """One download `bdmm setup --accept-licenses` fetches when no --from is given (`[sources.*]`).

    Fields:
        name: table key ("bdmm-smpldataset", ...).
        url: the link as its publisher gives it (printed for the user).
        download_url: what is fetched non-interactively ("" = `url`).
        filename: the name it is cached under (recognised like a --from path).
        provides: the registry names (and "smpl") it carries.
        license, provenance: free text, printed before anything is downloaded.
        size: exact size in bytes, 0 when not known (checked after the download).
        sha256: full hex digest of the download, "" when not known (checked after the download).
    """

    name: str
    url: str
    filename: str
    provides: tuple[str, ...] = ()
    download_url: str = ""
    license: str = ""
    provenance: str = ""
    size: int = 0
    sha256: str = ""


@dataclass(frozen=True)
class Registry:
    """A parsed registry file: the project's Hub defaults, the entries by name, and the
    downloads `bdmm setup` knows."""

    path: Path
    hub: HubDefaults
    entries: dict[str, WeightEntry]
    sources: tuple[SetupSource, ...] = ()

    def get(self, name: str) -> WeightEntry:
        """The entry called `name`; MissingResourceError listing the known names otherwise."""
        name = ALIASES.get(name, name)
        try:
            return self.entries[name]
        except KeyError:
            known = ", ".join(sorted(self.entries))
            raise MissingResourceError(
                f"no weights called {name!r} in the registry {self.path}; known: {known}"
            ) from None

    def names(self) -> list[str]:
        return sorted(self.entries)


# Short names accepted wherever a registry name is: `bdmm animate --weights fashionvideo`.
ALIASES = {"fashionvideo": "generator-fashionvideo", "iper": "generator-iper"}

_FIELDS = set(WeightEntry.__dataclass_fields__) - {"name"}


def registry_path() -> Path:
    env = os.environ.get("BDMM_REGISTRY")
    return Path(env).expanduser() if env else DEFAULT_REGISTRY


def _entry(name: str, table: dict, path: Path) -> WeightEntry:
    unknown = set(table) - _FIELDS
    if unknown:
        raise InputError(f"registry {path}: entry {name!r} has unknown fields {sorted(unknown)}")
    for field in ("kind", "source", "filename"):
        if not table.get(field):
            raise InputError(f"registry {path}: entry {name!r} lacks {field!r}")
    entry = WeightEntry(name=name, **table)
    if entry.source not in SOURCES:
        raise InputError(f"registry {path}: entry {name!r} has source {entry.source!r}; use one of {SOURCES}")
    if entry.kind not in KINDS:
        raise InputError(f"registry {path}: entry {name!r} has kind {entry.kind!r}; use one of {KINDS}")
    if entry.sha256 and not _HEX64.fullmatch(entry.sha256):
        raise InputError(f"registry {path}: entry {name!r}: sha256 must be 64 lowercase hex digits or \"\"")
    if entry.sha256_prefix and not _HEX.fullmatch(entry.sha256_prefix):
        raise InputError(f"registry {path}: entry {name!r}: sha256_prefix must be lowercase hex")
    if entry.source == "url" and not entry.url:
        raise InputError(f"registry {path}: url entry {name!r} lacks 'url'")
    if entry.source == "package" and not (entry.package and entry.package_path):
        raise InputError(f"registry {path}: package entry {name!r} lacks 'package'/'package_path'")
    return entry


def load_registry(path: str | Path | None = None) -> Registry:
    """Parse a registry TOML file (default: `registry_path()`); InputError on a malformed one."""
    path = Path(path) if path is not None else registry_path()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise MissingResourceError(f"weights registry {path} not found (set BDMM_REGISTRY to a registry.toml)") from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"weights registry {path} is not valid TOML: {exc}") from None
    if data.get("schema") != 1:
        raise InputError(f"weights registry {path}: unsupported schema {data.get('schema')!r} (expected 1)")
    hub = data.get("hub", {})
    if not hub.get("repo") or not hub.get("revision"):
        raise InputError(f"weights registry {path}: [hub] needs 'repo' and 'revision'")
    entries = {name: _entry(name, table, path) for name, table in data.get("models", {}).items()}
    sources = tuple(_source(name, table, path) for name, table in data.get("sources", {}).items())
    return Registry(path=path, hub=HubDefaults(repo=hub["repo"], revision=hub["revision"]), entries=entries,
                    sources=sources)


_SOURCE_FIELDS = set(SetupSource.__dataclass_fields__) - {"name"}


def _source(name: str, table: dict, path: Path) -> SetupSource:
    unknown = set(table) - _SOURCE_FIELDS
    if unknown:
        raise InputError(f"registry {path}: source {name!r} has unknown fields {sorted(unknown)}")
    if not table.get("url") or not table.get("filename"):
        raise InputError(f"registry {path}: source {name!r} needs 'url' and 'filename'")
    if table.get("sha256") and not _HEX64.fullmatch(table["sha256"]):
        raise InputError(f"registry {path}: source {name!r}: sha256 must be 64 lowercase hex digits or \"\"")
    return SetupSource(name=name, **{**table, "provides": tuple(table.get("provides", ()))})
