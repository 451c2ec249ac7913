"""`bdmm weights list | download | import | verify | export`: a thin layer over bdmm_cli.hub."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from bdmm_cli.commands._common import handle_errors
from bdmm_cli.kinds import IMPORTABLE as _KINDS

group = typer.Typer(
    help=(
        "List, download, import, verify and export model weights.\n\n"
        "Examples:\n\n"
        "  bdmm weights list\n\n"
        "  bdmm weights download generator-fashionvideo vgg19\n\n"
        "  bdmm weights import latest_net_G.pth -o weights/fashionvideo-G\n\n"
        "  bdmm weights verify --all\n\n"
        "  bdmm weights export checkpoints/bdmm_dancefashion_checkpoints -o release/"
    ),
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)

_REPO_HELP = "Hub repo of the project's weights (a mirror or a private copy); default: $BDMM_HUB_REPO or the registry's."
_REV_HELP = "Revision (branch, tag or commit) of --repo; default: $BDMM_HUB_REVISION, the registry's pin, or main for another repo."
_TRUST_HELP = "Accept files the registry has no checksum for (their sha256 is then pinned locally). Also $BDMM_TRUST_UNVERIFIED=1."


def _console():
    from rich.console import Console

    return Console(highlight=False, soft_wrap=True)


def _size(entry) -> str:
    if entry.size:
        return f"{entry.size / 1e6:.1f} MB" if entry.size >= 1e5 else f"{entry.size:,} B"
    return f"~{entry.size_mb:.0f} MB" if entry.size_mb else "?"


@group.command("list")
@handle_errors
def list_cmd(
    repo: Optional[str] = typer.Option(None, "--repo", help=_REPO_HELP),
    revision: Optional[str] = typer.Option(None, "--revision", help=_REV_HELP),
) -> None:
    """Show every registry entry: kind, source, checksum, size and whether it is cached or installed.

    Example:

      bdmm weights list
    """
    from rich.table import Table

    from bdmm_cli.hub.download import cached_path, resolve_location
    from bdmm_cli.hub.registry import load_registry

    from bdmm_cli.hub.installed import read_manifest

    reg = load_registry()
    installed = read_manifest()
    table = Table(title=f"weights registry ({reg.path})")
    # The name is what users type: never cut it; the source may be shortened.
    table.add_column("name", no_wrap=True)
    table.add_column("kind", overflow="fold")
    table.add_column("source", overflow="ellipsis", max_width=48)
    for col in ("checksum", "size", "cached"):
        table.add_column(col, no_wrap=True)
    for name in reg.names():
        e = reg.entries[name]
        loc = resolve_location(e, reg, repo, revision)
        status = "yes" if cached_path(name, repo=repo, revision=revision, registry=reg) else "no"
        if e.source == "project" and not e.published and loc.repo == reg.hub.repo:
            status = "not published"
        if name in installed:
            status = "installed (bdmm setup)"
        table.add_row(name, e.kind, str(loc), e.verification, _size(e), status)
    _console().print(table)


@group.command("download")
@handle_errors
def download_cmd(
    names: Optional[List[str]] = typer.Argument(None, help="Registry names (see `bdmm weights list`)."),
    all_: bool = typer.Option(False, "--all/--no-all", help="Download every published entry."),
    repo: Optional[str] = typer.Option(None, "--repo", help=_REPO_HELP),
    revision: Optional[str] = typer.Option(None, "--revision", help=_REV_HELP),
    trust_unverified: bool = typer.Option(False, "--trust-unverified/--no-trust-unverified", help=_TRUST_HELP),
    force: bool = typer.Option(False, "--force/--no-force", help="Download again even when cached."),
) -> None:
    """Download registry entries into the cache and verify them (sha256) before use.

    Hub entries go to the Hugging Face cache (HF_HOME; HF_ENDPOINT, HF_TOKEN and
    HF_HUB_OFFLINE are honoured), URL entries to bdmm's cache (BDMM_CACHE_DIR).

    Examples:

      bdmm weights download generator-fashionvideo

      bdmm weights download vgg19 lpips-alex inception-fid

      bdmm weights download i3d --trust-unverified

      bdmm weights download generator-fashionvideo --repo my-org/bdmm-mirror
    """
    from bdmm_cli.errors import InputError
    from bdmm_cli.hub.download import fetch
    from bdmm_cli.hub.registry import load_registry

    reg = load_registry()
    if all_:
        names = [n for n in reg.names() if reg.entries[n].published]
    if not names:
        raise InputError("name at least one registry entry (see `bdmm weights list`) or pass --all")
    console = _console()
    for name in names:
        path = fetch(name, repo=repo, revision=revision, registry=reg,
                     trust_unverified=trust_unverified or None, force=force)
        console.print(f"{name}: {path}")


@group.command("import")
@handle_errors
def import_cmd(
    file: Path = typer.Argument(..., help="The authors' latest_net_G/D/D_V.pth or openpose_body25.pth, SPIN's model_checkpoint.pt or BDMM's spin_ckpt.pth."),
    output: Path = typer.Option(..., "-o", "--output", help="Folder to write (model.safetensors + config.json)."),
    kind: Optional[str] = typer.Option(None, "--kind", help=" | ".join(_KINDS) + " (default: detected from the keys)."),
    force: bool = typer.Option(False, "--force/--no-force", help="Replace an existing output folder."),
) -> None:
    """Convert an original checkpoint into bdmm's format (safetensors + config.json).

    The file is read with torch.load(weights_only=True) (no pickled code runs) and checked
    strictly: a wrong or truncated file is an error naming the missing or unexpected keys.

    Examples:

      bdmm weights import latest_net_G.pth -o fashionvideo-G

      bdmm weights import model_checkpoint.pt --kind spin -o spin

      bdmm animate person.jpg dance.mp4 --weights fashionvideo-G -o out.mp4
    """
    from bdmm_cli.errors import InputError
    from bdmm_cli.checkpoints import import_checkpoint, write_folder

    if kind is not None and kind not in _KINDS:
        raise InputError(f"--kind must be one of {', '.join(_KINDS)}, not {kind!r}")
    if output.exists() and (not output.is_dir() or any(output.iterdir())) and not force:
        raise InputError(f"output {output} already exists; use --force to replace it")
    ckpt = import_checkpoint(file, kind, "bdmm weights import")
    write_folder(ckpt, output, force=force)
    _console().print(f"{ckpt.kind.replace('_', ' ')} ({len(ckpt.state_dict)} tensors) written to {output}")


@group.command("verify")
@handle_errors
def verify_cmd(
    targets: Optional[List[str]] = typer.Argument(None, help="Registry names, or files/folders to check."),
    all_: bool = typer.Option(False, "--all/--no-all", help="Re-hash every cached registry entry."),
    repo: Optional[str] = typer.Option(None, "--repo", help=_REPO_HELP),
    revision: Optional[str] = typer.Option(None, "--revision", help=_REV_HELP),
    trust_unverified: bool = typer.Option(False, "--trust-unverified/--no-trust-unverified", help=_TRUST_HELP),
) -> None:
    """Re-hash cached weights against the registry, or check that files load strictly.

    A cached file that fails its checksum is deleted. Nothing is downloaded.

    Examples:

      bdmm weights verify --all

      bdmm weights verify vgg19

      bdmm weights verify fashionvideo-G/ latest_net_D.pth
    """
    from bdmm_cli.errors import CheckpointError, InputError, MissingResourceError
    from bdmm_cli.fileio import sha256_file
    from bdmm_cli.checkpoints import read_checkpoint
    from bdmm_cli.state_dict import WEIGHTS_NAME
    from bdmm_cli.hub.download import _verify_or_delete, cached_path, resolve_location
    from bdmm_cli.hub.registry import ALIASES, load_registry

    reg = load_registry()
    console = _console()
    if all_:
        targets = [n for n in reg.names() if cached_path(n, repo=repo, revision=revision, registry=reg)]
        if not targets:
            console.print("no registry weights are cached")
            return
    if not targets:
        raise InputError("name registry entries or files to verify, or pass --all")
    failures = 0
    for target in targets:
        name = ALIASES.get(target, target)
        if name in reg.entries and not Path(target).exists():
            entry = reg.entries[name]
            path = cached_path(name, repo=repo, revision=revision, registry=reg)
            if path is None:
                raise MissingResourceError(f"{name} is not cached; run `bdmm weights download {name}`")
            try:
                v = _verify_or_delete(entry, path, resolve_location(entry, reg, repo, revision),
                                      trust_unverified, rehash=True, delete=entry.source != "package")
            except CheckpointError as exc:
                console.print(f"[red]FAIL[/] {name}: {exc}")
                failures += 1
                continue
            console.print(f"[green]OK[/] {name}: sha256 {v.sha256} ({v.level})")
        else:
            ckpt = read_checkpoint(target)
            p = Path(target)
            digest = sha256_file(p / WEIGHTS_NAME if p.is_dir() else p)
            console.print(f"[green]OK[/] {target}: {ckpt.kind.replace('_', ' ')}, {len(ckpt.state_dict)} tensors, sha256 {digest}")
    if failures:
        raise CheckpointError(f"{failures} of {len(targets)} files failed verification")


@group.command("export")
@handle_errors
def export_cmd(
    source: Optional[Path] = typer.Argument(None, help="A folder with the authors' latest_net_*.pth or our exported sub-folders."),
    output: Path = typer.Option(..., "-o", "--output", help="Folder to write (upload it as the Hub repo)."),
    dataset: str = typer.Option("fashionvideo", "--dataset", help="Data set the weights were trained on."),
    generator: Optional[Path] = typer.Option(None, "--generator", help="Generator weights (overrides SOURCE)."),
    discriminator: Optional[Path] = typer.Option(None, "--discriminator", help="Spatial discriminator weights."),
    temporal_discriminator: Optional[Path] = typer.Option(None, "--temporal-discriminator", help="Temporal discriminator weights."),
    spin: Optional[Path] = typer.Option(None, "--spin", help="SPIN/HMR weights to include."),
    license_id: str = typer.Option("other", "--license", help="License id for the model card (SPDX id, or 'other')."),
    license_note: Optional[str] = typer.Option(None, "--license-note", help="License text for the model card."),
    provenance: Optional[str] = typer.Option(None, "--provenance", help="Provenance text for the model card."),
    force: bool = typer.Option(False, "--force/--no-force", help="Replace an existing output folder."),
) -> None:
    """Write a folder ready to upload as a Hub model repo: weights, config, model card.

    The model card states the license, the provenance and the paper's FashionVideo numbers;
    registry-snippet.toml holds the sha256 and size of every file for weights/registry.toml.

    Examples:

      bdmm weights export checkpoints/bdmm_dancefashion_checkpoints -o release/

      bdmm weights export --generator fashionvideo-G/ --spin spin/ -o release/

      hf upload my-org/bdmm release/ .
    """
    from bdmm_cli.errors import BdmmError, InputError
    from bdmm_cli.checkpoints import import_checkpoint, read_checkpoint
    from bdmm_cli.hub.export import AUTHORS_LICENSE_NOTE, export_release
    from bdmm_cli.hub.resolve import resolve_weights

    chosen = {"generator": generator, "discriminator": discriminator,
              "temporal_discriminator": temporal_discriminator, "spin": spin}
    ckpts = []
    for kind, path in chosen.items():
        if path is None and source is not None:
            try:
                path = resolve_weights(source, kind) if source.is_dir() else None
            except BdmmError:  # a kind SOURCE does not hold is simply left out
                path = None
            if source.is_file() and kind == "generator":
                path = source
        if path is not None:
            original = Path(path).is_file() and Path(path).suffix != ".safetensors"  # an authors' file
            ckpts.append(import_checkpoint(path, kind, "bdmm weights export") if original
                         else read_checkpoint(path, kind=kind))
    if not any(c.kind == "generator" for c in ckpts):
        raise InputError("no generator found: pass SOURCE (a folder with latest_net_G.pth or generator/) or --generator")
    files = export_release(output, ckpts, dataset=dataset, license_id=license_id,
                           license_note=license_note or AUTHORS_LICENSE_NOTE, provenance=provenance or "",
                           force=force)
    console = _console()
    for f in files:
        console.print(f"{f.repo_path}: {f.size:,} bytes, sha256 {f.sha256}")
    console.print(f"wrote {output} (README.md model card, registry-snippet.toml)")


def register(app: typer.Typer) -> None:
    app.add_typer(group, name="weights")
