"""What the main job needs, checked one by one (the engine of `bdmm doctor`).

Each check returns a :class:`Check`: its name, whether it passed, whether ``bdmm animate``
needs it (a failed *required* check means the main job cannot run with its defaults), a
one-line detail and the command that fixes it.
"""

from __future__ import annotations

import importlib.util
import platform
import subprocess
from dataclasses import dataclass
from typing import Callable

from bdmm_cli.pipeline.config import DEFAULT_WEIGHTS


@dataclass(frozen=True)
class Check:
    """One line of the doctor's table.

    Attributes:
        name: what was checked ("torch", "GPU", "weights: spin", ...).
        ok: it passed (for an optional item: it is available).
        required: ``bdmm animate`` with default options cannot run without it.
        detail: what was found (version, path, reason).
        fix: the command (or step) that fixes a failed check; "" when nothing to do.
    """

    name: str
    ok: bool
    required: bool
    detail: str
    fix: str = ""


def check_torch() -> list[Check]:
    import torch

    checks = [Check("torch", True, True, f"torch {torch.__version__}, Python {platform.python_version()}")]
    try:
        import torchvision
        from torchvision.ops import deform_conv2d  # noqa: F401

        checks.append(Check("torchvision", True, True, f"torchvision {torchvision.__version__} (deform_conv2d)"))
    except ImportError as exc:
        checks.append(Check("torchvision", False, True, f"not importable: {exc}", "pip install torchvision"))
    if torch.cuda.is_available():
        names = ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
        checks.append(Check("GPU (CUDA)", True, False, f"CUDA {torch.version.cuda}: {names}"))
    else:
        why = "torch built without CUDA" if torch.version.cuda is None else "no CUDA device visible"
        checks.append(Check("GPU (CUDA)", False, False, f"{why}; animate runs on the CPU (slowly)",
                            "install a CUDA build of torch: https://pytorch.org/get-started/locally/"))
    return checks


def check_ffmpeg() -> list[Check]:
    try:
        import imageio_ffmpeg

        exe = imageio_ffmpeg.get_ffmpeg_exe()
        out = subprocess.run([exe, "-hide_banner", "-encoders"], capture_output=True, text=True, timeout=30).stdout
    except (ImportError, OSError, RuntimeError, subprocess.SubprocessError) as exc:
        return [Check("ffmpeg", False, True, f"bundled ffmpeg not usable: {exc}", "pip install --force-reinstall imageio-ffmpeg")]
    missing = [enc for enc in ("libx264", "aac") if enc not in out]
    if missing:
        return [Check("ffmpeg", False, True, f"{exe} lacks encoder(s) {', '.join(missing)}",
                      "pip install --force-reinstall imageio-ffmpeg")]
    return [Check("ffmpeg", True, True, f"{exe} (libx264, aac)")]


def check_optional_modules() -> list[Check]:
    checks = []
    from bdmm_cli.body.pytorch3d_backend import resolve_rasterizer

    if importlib.util.find_spec("pytorch3d") is None:
        checks.append(Check("pytorch3d", False, False, "not installed (optional); the pure-PyTorch rasterizer is used",
                            "optional: build pytorch3d from source (PyPI has no Linux wheel), then --rasterizer auto uses it"))
    elif resolve_rasterizer("auto") == "pytorch3d":
        checks.append(Check("pytorch3d", True, False, "installed and conforming; --rasterizer auto uses it"))
    else:
        checks.append(Check("pytorch3d", False, False, "installed but failed the one-triangle conformance check; "
                            "the pure-PyTorch rasterizer is used", "reinstall pytorch3d for this torch"))
    return checks + check_keypoints()


def check_keypoints() -> list[Check]:
    """One row per keypoint detector (optional), then whether `--keypoints auto` has one (required:
    new videos and photos cannot be posed without)."""
    from bdmm_cli.pose.detector import keypoint_detectors, no_detector_message, resolve_keypoints

    rows = [Check(f"keypoints: {d.name}", d.available, False, d.detail, d.fix) for d in keypoint_detectors()]
    auto = resolve_keypoints("auto")
    if auto == "none":
        rows.append(Check("keypoint detector", False, True, no_detector_message(),
                          "bdmm setup --accept-licenses"))
    else:
        rows.append(Check("keypoint detector", True, True, f"--keypoints auto uses {auto}"))
    return rows


def check_smpl() -> list[Check]:
    from bdmm_cli.body import installed_model_path

    path = installed_model_path()
    if not path.is_file():
        return [Check("SMPL model", False, True, f"not installed ({path})",
                      "`bdmm setup --accept-licenses` (the authors' archive carries smpl_model.pkl), or register at "
                      "https://smpl.is.tue.mpg.de, then `bdmm body install SMPL_NEUTRAL.pkl`")]
    try:
        from bdmm_cli.body import load_body_model

        body = load_body_model(None)
    except Exception as exc:  # noqa: BLE001 - any failure to load is what the doctor reports
        return [Check("SMPL model", False, True, f"{path} does not load: {exc}",
                      "`bdmm body install SMPL_NEUTRAL.pkl --force`")]
    kind = getattr(body, "kind", "smpl")
    note = " (synthetic stand-in, not SMPL)" if kind == "synthetic" else ""
    return [Check("SMPL model", True, True, f"{path}: {body.num_vertices} vertices{note}")]


def _verified(entry, path) -> tuple[bool, str]:
    """Check a cached file against the registry (fast when its verification stamp is current)."""
    from bdmm_cli.errors import BdmmError
    from bdmm_cli.hub.download import resolve_location
    from bdmm_cli.hub.registry import load_registry
    from bdmm_cli.hub.verify import verify_file

    try:
        loc = resolve_location(entry, load_registry())
        result = verify_file(entry, path, location=str(loc))
    except BdmmError as exc:
        return False, str(exc)
    return True, result.level


def check_weights() -> list[Check]:
    from bdmm_cli.errors import BdmmError
    from bdmm_cli.hub.installed import check as check_installed, read_manifest
    from bdmm_cli.hub.registry import ALIASES, load_registry

    try:
        registry = load_registry()
        installed = read_manifest()
    except BdmmError as exc:
        return [Check("weights registry", False, True, str(exc), "set BDMM_REGISTRY to a registry.toml")]
    default = ALIASES.get(DEFAULT_WEIGHTS, DEFAULT_WEIGHTS)
    rows = []
    spin_ok = False
    spin_rows = []
    for name in registry.names():
        entry = registry.get(name)
        required = name == default
        if name in installed:
            try:
                where = check_installed(installed[name])
                other = entry.sha256 and installed[name].source_sha256 not in ("", entry.sha256)
                note = f"; not the published file (sha256 {installed[name].source_sha256[:12]}...)" if other else ""
                check = Check(f"weights: {name}", True, required, f"installed by bdmm setup ({where}){note}")
            except BdmmError as exc:
                check = Check(f"weights: {name}", False, required, f"installed, NOT verified: {exc}",
                              "`bdmm setup --from ARCHIVE --force`")
        else:
            check = _cached_check(entry, registry, required)
        if entry.kind == "spin":
            spin_ok = spin_ok or check.ok
            spin_rows.append(check)
        else:
            rows.append(check)
    # Any one SPIN regressor is enough for the pose front-end.
    note = "" if spin_ok else " (any one SPIN regressor is enough)"
    rows += [Check(c.name, c.ok, not spin_ok, c.detail + note, c.fix) for c in spin_rows]
    return rows


_SETUP_FIX = "`bdmm setup --accept-licenses` (or `bdmm setup --from ARCHIVE`)"


def _cached_check(entry, registry, required: bool) -> Check:
    """The row of an entry `bdmm setup` did not install: cached and verified, or how to get it."""
    from bdmm_cli.errors import BdmmError
    from bdmm_cli.hub.download import cached_path

    name = entry.name
    try:
        path = cached_path(name, registry=registry)
    except BdmmError:
        path = None
    if path is None:
        importable = entry.kind in ("generator", "discriminator", "temporal_discriminator", "spin")
        if entry.source == "setup":
            fix = _SETUP_FIX
        elif not entry.published and importable:
            option = {"generator": "--weights DIR", "spin": "--pose-weights DIR"}.get(entry.kind, "DIR as the weights")
            fix = f"`bdmm weights import FILE -o DIR` (the authors' file), then pass {option}; or {_SETUP_FIX}"
        else:
            fix = f"bdmm weights download {name}" + ("  (or `bdmm weights import FILE -o DIR`)" if importable else "")
        detail = "not installed" if entry.source == "setup" else (
            "not cached" + ("" if entry.published else "; not published on the Hub yet"))
        return Check(f"weights: {name}", False, required, detail, fix)
    ok, level = _verified(entry, path)
    return Check(f"weights: {name}", ok, required, f"cached, verified ({level})" if ok else f"cached, NOT verified: {level}",
                 "" if ok else f"bdmm weights download {name} --force")


CHECKS: tuple[Callable[[], list[Check]], ...] = (
    check_torch, check_ffmpeg, check_optional_modules, check_smpl, check_weights,
)


def run_checks() -> list[Check]:
    """Every check, in table order."""
    out: list[Check] = []
    for fn in CHECKS:
        out += fn()
    return out


def can_animate(checks: list[Check]) -> bool:
    """True when every required check passed."""
    return all(c.ok for c in checks if c.required)


__all__ = ["Check", "can_animate", "check_keypoints", "run_checks"]
