"""What the main job needs, checked one by one (the engine of `bdmm doctor`).

Each check returns a :class:`Check`: its name, whether it passed, whether ``bdmm animate``
needs it (a failed *required* check means the main job cannot run with its defaults), a
one-line detail, the command that fixes it, and which job it is for (``animate``, or
``training``: training and evaluation only).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import platform
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from bdmm_cli.pipeline.config import DEFAULT_WEIGHTS

#: `Check.section` values: what ``bdmm animate`` uses, what only training / evaluation use.
ANIMATE, TRAINING = "animate", "training"
#: Vertices of the SMPL mesh (the released weights were trained on SMPL's mesh flows).
SMPL_VERTICES = 6890
#: PyTorch's index of CPU-only wheels (the README's install for machines without a GPU).
CPU_WHEEL_INDEX = "https://download.pytorch.org/whl/cpu"


@dataclass(frozen=True)
class Check:
    """One line of the doctor's table.

    Attributes:
        name: what was checked ("torch", "GPU", "weights: spin", ...).
        ok: it passed (for an optional item: it is available).
        required: ``bdmm animate`` with default options cannot run without it.
        detail: what was found (version, path, reason).
        fix: the command (or step) that fixes a failed check; "" when nothing to do.
        section: ``ANIMATE`` (the main job uses it) or ``TRAINING`` (only ``bdmm train``,
            ``bdmm data prepare``, ``bdmm pose --refine`` or ``bdmm eval`` do).
        warning: it passed, with a caveat the detail explains (e.g. a body model that is not
            SMPL-sized): the job runs, but not as the released weights expect.
    """

    name: str
    ok: bool
    required: bool
    detail: str
    fix: str = ""
    section: str = ANIMATE
    warning: bool = False


def nvidia_gpus(sys_root: Path = Path("/sys")) -> int:
    """NVIDIA GPUs on this machine's PCI bus (vendor 0x10de, display / 3D controller class),
    found without CUDA or a driver: 0 when there are none or sysfs cannot be read."""
    count = 0
    try:
        devices = list((Path(sys_root) / "bus" / "pci" / "devices").iterdir())
    except OSError:
        return 0
    for dev in devices:
        try:
            vendor = (dev / "vendor").read_text().strip().lower()
            klass = (dev / "class").read_text().strip().lower()
        except OSError:
            continue
        if vendor == "0x10de" and klass.startswith("0x03"):
            count += 1
    return count


def _wheel_pins() -> str:
    """``torch==X torchvision==Y`` of the installed versions (without a local ``+cu130`` tag)."""
    import torch

    pins = [f"torch=={torch.__version__.split('+')[0]}"]
    try:
        import torchvision

        pins.append(f"torchvision=={torchvision.__version__.split('+')[0]}")
    except ImportError:
        pins.append("torchvision")
    return " ".join(pins)


def gpu_check(cuda_build: str | None, available: bool, devices: list[str], gpus_on_machine: int,
              pins: str = "torch torchvision") -> Check:
    """The GPU row: advice that matches the machine.

    Args:
        cuda_build: ``torch.version.cuda`` (None: the CPU-only build).
        available: ``torch.cuda.is_available()``.
        devices: names of the visible CUDA devices.
        gpus_on_machine: `nvidia_gpus()`, the NVIDIA GPUs present whatever CUDA sees.
        pins: the ``torch==... torchvision==...`` of the install commands.
    """
    name = "GPU (CUDA)"
    if available:
        return Check(name, True, False, f"CUDA {cuda_build}: {', '.join(devices)}")
    if cuda_build is None:
        if gpus_on_machine:
            return Check(name, False, False, f"torch is the CPU-only build, but this machine has {gpus_on_machine} "
                         "NVIDIA GPU(s); animate runs on the CPU (slowly)",
                         f"install the CUDA build (PyPI's default): pip install --force-reinstall {pins}")
        return Check(name, False, False, "no GPU on this machine; torch is the CPU-only build, the right one here; "
                     "animate runs on the CPU (slowly)", "")
    if gpus_on_machine:
        hidden = os.environ.get("CUDA_VISIBLE_DEVICES")
        why = ("CUDA_VISIBLE_DEVICES hides it" if hidden is not None and hidden.strip() in ("", "-1")
               else f"no usable NVIDIA driver for CUDA {cuda_build}")
        return Check(name, False, False, f"this machine has {gpus_on_machine} NVIDIA GPU(s) but torch cannot use "
                     f"them ({why}); animate runs on the CPU (slowly)",
                     "check `nvidia-smi`; install or update the NVIDIA driver, or a torch build for the "
                     "installed driver: https://pytorch.org/get-started/locally/")
    return Check(name, False, False, f"torch is a CUDA {cuda_build} build but this machine has no NVIDIA GPU; "
                 "animate runs on the CPU (slowly)",
                 f"nothing to do; the CPU-only build is a ~0.2 GB download instead of ~3 GB (see README): "
                 f"pip install --force-reinstall {pins} --index-url {CPU_WHEEL_INDEX}")


def check_torch() -> list[Check]:
    import torch

    checks = [Check("torch", True, True, f"torch {torch.__version__}, Python {platform.python_version()}")]
    try:
        import torchvision
        from torchvision.ops import deform_conv2d  # noqa: F401

        checks.append(Check("torchvision", True, True, f"torchvision {torchvision.__version__} (deform_conv2d)"))
    except ImportError as exc:
        checks.append(Check("torchvision", False, True, f"not importable: {exc}", "pip install torchvision"))
    available = torch.cuda.is_available()
    devices = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if available else []
    checks.append(gpu_check(torch.version.cuda, available, devices, nvidia_gpus(), _wheel_pins()))
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
    if body.num_vertices != SMPL_VERTICES:
        return [Check("SMPL model", True, True,
                      f"{path}: {body.num_vertices} vertices{note}, not SMPL's {SMPL_VERTICES}: animate runs, but the "
                      "released weights expect the SMPL mesh (results will be wrong)",
                      "`bdmm body install SMPL_NEUTRAL.pkl --force` (the model from https://smpl.is.tue.mpg.de)",
                      warning=True)]
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
            for_animate = required or entry.kind in ANIMATE_WEIGHT_KINDS
            rows.append(dataclasses.replace(check, section=ANIMATE if for_animate else TRAINING))
    # Any one SPIN regressor is enough for the pose front-end.
    note = "" if spin_ok else " (any one SPIN regressor is enough)"
    rows += [Check(c.name, c.ok, not spin_ok, c.detail + note, c.fix) for c in spin_rows]
    return rows


#: Weight kinds ``bdmm animate`` uses besides its generator: the SPIN regressor and OpenPose
#: (``--keypoints auto`` prefers it). Other generators, the discriminators, the SMPLify prior,
#: the SPIN mean parameters and the metric networks are for training and evaluation.
ANIMATE_WEIGHT_KINDS = ("spin", "openpose_body25")


_SETUP_FIX = "`bdmm setup --accept-licenses` (or `bdmm setup --from ARCHIVE`)"


def _cached_check(entry, registry, required: bool) -> Check:
    """The row of an entry `bdmm setup` did not install: cached and verified, or how to get it."""
    from bdmm_cli.errors import BdmmError
    from bdmm_cli.hub.download import cached_path
    from bdmm_cli.kinds import IMPORTABLE, KINDS

    name = entry.name
    try:
        path = cached_path(name, registry=registry)
    except BdmmError:
        path = None
    if path is None:
        importable = entry.kind in IMPORTABLE
        if entry.source == "setup":
            fix = _SETUP_FIX
        elif not entry.published and importable:
            option = KINDS[entry.kind].option or "DIR as the weights"
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


__all__ = ["ANIMATE", "TRAINING", "Check", "can_animate", "check_keypoints", "gpu_check", "nvidia_gpus", "run_checks"]
