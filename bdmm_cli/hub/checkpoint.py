"""Checkpoint files: the authors' `.pth`, SPIN's `.pt`, and our safetensors format.

Our format is a folder with
- `model.safetensors`: the state dict under the authors' key names (so `load_state_dict`
  is strict), with `config.json`'s content also embedded in the safetensors metadata
  (key "bdmm_config"), so the weights file alone is enough to build the network;
- `config.json`: {"bdmm_format": 1, "kind": ..., <the model config dataclass fields>,
  "provenance": {...}}.

Pickled checkpoints are read with `torch.load(weights_only=True)` only: tensors, plain
containers and numbers. A file that needs anything else is refused (numpy scalars and arrays
are the one exception, allow-listed explicitly: old checkpoints store them).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch

from bdmm_cli.errors import CheckpointError, InputError
from bdmm_cli.fileio import atomic_output_dir
from bdmm_cli.state_dict import check_layout, few as _few, read_torch_file

FORMAT_VERSION = 1
WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"
NETWORK_KINDS = ("generator", "discriminator", "temporal_discriminator", "spin")

@dataclass(frozen=True)
class Checkpoint:
    """A state dict with what it is.

    Fields:
        state_dict: {authors' key: tensor} (no `module.` prefix), CPU tensors.
        kind: one of NETWORK_KINDS.
        config: the model config's fields ({} for spin: its layout is fixed).
        provenance: where it came from (free-form, JSON-serialisable).
    """

    state_dict: dict[str, torch.Tensor]
    kind: str
    config: dict = field(default_factory=dict)
    provenance: dict = field(default_factory=dict)

    def config_json(self) -> dict:
        return {"bdmm_format": FORMAT_VERSION, "kind": self.kind, **self.config, "provenance": self.provenance}


def unwrap_state_dict(obj: object, source: str = "checkpoint") -> dict[str, torch.Tensor]:
    """The state dict inside a loaded checkpoint: the object itself, or its "model" /
    "state_dict" entry (SPIN's model_checkpoint.pt keeps it under "model"); `module.` stripped."""
    if isinstance(obj, Mapping):
        for key in ("model", "state_dict", "model_state_dict"):
            inner = obj.get(key)
            if isinstance(inner, Mapping) and inner and all(isinstance(v, torch.Tensor) for v in inner.values()):
                obj = inner
                break
    if not isinstance(obj, Mapping) or not obj:
        raise CheckpointError(f"{source} is not a state dict (got {type(obj).__name__})")
    out: dict[str, torch.Tensor] = {}
    for key, value in obj.items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            what = type(value).__name__ if isinstance(key, str) else f"key {key!r}"
            raise CheckpointError(f"{source} is not a state dict of tensors (entry {key!r}: {what})")
        name = key[len("module."):] if key.startswith("module.") else key
        if name in out:
            raise CheckpointError(f"{source} has key {name!r} twice (with and without 'module.')")
        out[name] = value
    return out


# --- what a state dict is ----------------------------------------------------------------------

_GENERATOR_PREFIXES = ("x_ref.", "x_encoder.", "warp_encoder.", "decoder256.")
_SPIN_HEAD = ("fc1.weight", "fc2.weight", "decpose.weight", "decshape.weight", "deccam.weight")


def detect_kind(sd: Mapping[str, torch.Tensor], source: str = "checkpoint") -> str:
    """generator | discriminator | temporal_discriminator | spin, from the key layout."""
    keys = set(sd)
    if any(k.startswith(p) for p in _GENERATOR_PREFIXES for k in keys):
        return "generator"
    if any(k in keys for k in _SPIN_HEAD) or "init_pose" in keys:
        return "spin"
    first = sd.get("block0.model.1.weight")
    if first is not None or "conv.weight_orig" in keys:
        if (first is not None and first.dim() == 5) or any(k.startswith("block1.") for k in keys):
            return "temporal_discriminator"
        return "discriminator"
    raise CheckpointError(
        f"{source} is not a BDMM generator, discriminator or SPIN checkpoint "
        f"(its keys start with {_few(sorted(keys))})"
    )


def _shape(sd: Mapping[str, torch.Tensor], key: str) -> tuple[int, ...] | None:
    t = sd.get(key)
    return tuple(t.shape) if t is not None else None


def infer_generator_config(sd: Mapping[str, torch.Tensor]) -> dict:
    """GeneratorConfig fields read off the tensor shapes (defaults where a key is absent;
    the strict load that follows names what is missing)."""
    from bdmm_cli.model import GeneratorConfig

    cfg = GeneratorConfig().to_dict()
    first = _shape(sd, "x_ref.block0.model.2.weight")
    if first:
        cfg["ngf"], cfg["image_nc"] = first[0], first[1]
    enc = _shape(sd, "x_encoder.block0.model.2.weight")
    if enc:
        cfg["structure_nc"] = enc[1] - cfg["image_nc"]
    widths = [t.shape[0] for k, t in sd.items() if k.startswith("x_ref.") and k.endswith(".model.2.weight")]
    if widths:
        cfg["img_f"] = max(widths)
    mod = _shape(sd, "decoder256.conv.modulation.weight")
    if mod:
        cfg["style_dim"] = mod[1]
    return cfg


def infer_discriminator_config(sd: Mapping[str, torch.Tensor]) -> dict:
    """DiscriminatorConfig fields read off the tensor shapes (input_length keeps its default)."""
    from bdmm_cli.model import DiscriminatorConfig

    cfg = DiscriminatorConfig().to_dict()
    first = _shape(sd, "block0.model.1.weight")
    if first:
        cfg["ndf"], cfg["input_nc"] = first[0], first[1]
    last = _shape(sd, "conv.weight_orig")
    if last:
        cfg["img_f"] = last[1]
    stages = {k.split(".")[0] for k in sd if k.split(".")[0].startswith(("block", "encoder"))}
    if stages:
        cfg["layers"] = len(stages)
    return cfg


# --- SPIN / HMR: the documented layout (ResNet-50 trunk + iterative regressor head) ---------------

SPIN_POSE_DIM = 144  # 24 joints x 6D
SPIN_SHAPE_DIM = 10
SPIN_CAM_DIM = 3


RESNET50_BLOCKS = (3, 4, 6, 3)


def _bn(prefix: str, n: int) -> dict[str, tuple[int, ...]]:
    return {f"{prefix}.weight": (n,), f"{prefix}.bias": (n,), f"{prefix}.running_mean": (n,),
            f"{prefix}.running_var": (n,), f"{prefix}.num_batches_tracked": ()}


def spin_expected_shapes() -> dict[str, tuple[int, ...]]:
    """Every key of an HMR/SPIN state dict and its shape: the ResNet-50 trunk under
    torchvision's names (SPIN's `hmr` uses them; bottleneck blocks 3-4-6-3, expansion 4,
    no `fc`), then the regressor (fc1, fc2, decpose, decshape, deccam) and the
    mean-parameter buffers init_pose / init_shape / init_cam."""
    shapes: dict[str, tuple[int, ...]] = {"conv1.weight": (64, 3, 7, 7), **_bn("bn1", 64)}
    inplanes = 64
    for stage, (blocks, planes) in enumerate(zip(RESNET50_BLOCKS, (64, 128, 256, 512)), start=1):
        for b in range(blocks):
            p = f"layer{stage}.{b}"
            shapes[f"{p}.conv1.weight"] = (planes, inplanes, 1, 1)
            shapes.update(_bn(f"{p}.bn1", planes))
            shapes[f"{p}.conv2.weight"] = (planes, planes, 3, 3)
            shapes.update(_bn(f"{p}.bn2", planes))
            shapes[f"{p}.conv3.weight"] = (planes * 4, planes, 1, 1)
            shapes.update(_bn(f"{p}.bn3", planes * 4))
            if b == 0:
                shapes[f"{p}.downsample.0.weight"] = (planes * 4, inplanes, 1, 1)
                shapes.update(_bn(f"{p}.downsample.1", planes * 4))
            inplanes = planes * 4
    feat = 2048 + SPIN_POSE_DIM + SPIN_SHAPE_DIM + SPIN_CAM_DIM
    head = {"fc1": (1024, feat), "fc2": (1024, 1024), "decpose": (SPIN_POSE_DIM, 1024),
            "decshape": (SPIN_SHAPE_DIM, 1024), "deccam": (SPIN_CAM_DIM, 1024)}
    for name, (out, inp) in head.items():
        shapes[f"{name}.weight"] = (out, inp)
        shapes[f"{name}.bias"] = (out,)
    shapes["init_pose"] = (1, SPIN_POSE_DIM)
    shapes["init_shape"] = (1, SPIN_SHAPE_DIM)
    shapes["init_cam"] = (1, SPIN_CAM_DIM)
    return shapes


def check_spin_state_dict(sd: Mapping[str, torch.Tensor], source: str = "checkpoint") -> dict[str, torch.Tensor]:
    """Strict key/shape check of a SPIN state dict; returns it with BatchNorm's
    `num_batches_tracked` counters added where an old checkpoint lacks them (they do not
    affect inference). CheckpointError naming missing / unexpected / misshaped keys."""
    want = spin_expected_shapes()
    out = dict(sd)
    for k in want:
        if k.endswith("num_batches_tracked") and k not in out:
            out[k] = torch.zeros((), dtype=torch.long)
    _check_layout(out, want, "a SPIN/HMR regressor", source)
    return out


def _check_layout(sd: Mapping[str, torch.Tensor], want: Mapping[str, tuple[int, ...]], what: str, source: str) -> None:
    check_layout(sd, want, f"{source} does not fit {what}")


def check_network_state_dict(kind: str, sd: Mapping[str, torch.Tensor], config: dict, source: str) -> None:
    """Strict check of a BDMM network's state dict against the model built from `config`
    (shapes only: the model is built on the meta device, nothing is allocated)."""
    if kind == "spin":
        check_spin_state_dict(sd, source)
        return
    module = build_network(kind, config, device="meta", source=source)
    want = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    _check_layout(sd, want, "a " + _KIND_NAMES[kind], source)


def build_network(kind: str, config: dict, device: str | torch.device = "cpu", source: str = "checkpoint"):
    """The bdmm_cli.model network for `kind`, built from `config` (its dataclass fields)."""
    from bdmm_cli import model as M

    try:
        if kind == "generator":
            cfg = M.GeneratorConfig.from_dict(config)
            ctor = M.BDMMGenerator
        elif kind in ("discriminator", "temporal_discriminator"):
            cfg = M.DiscriminatorConfig.from_dict(config)
            ctor = M.SpatialDiscriminator if kind == "discriminator" else M.TemporalDiscriminator
        else:
            raise CheckpointError(f"{source}: cannot build a network of kind {kind!r}")
    except (ValueError, TypeError) as exc:
        raise CheckpointError(f"{source} has an invalid {kind} config: {exc}") from None
    with torch.device(device):
        return ctor(cfg)


# --- our format --------------------------------------------------------------------------------


def _from_config_json(data: dict, source: str) -> tuple[str, dict, dict]:
    if not isinstance(data, dict) or "kind" not in data:
        raise CheckpointError(f"{source}: config has no 'kind'")
    version = data.get("bdmm_format", FORMAT_VERSION)
    if version != FORMAT_VERSION:
        raise CheckpointError(f"{source}: unsupported bdmm_format {version!r} (this bdmm reads {FORMAT_VERSION})")
    kind = data["kind"]
    if kind not in NETWORK_KINDS:
        raise CheckpointError(f"{source}: unknown kind {kind!r}")
    provenance = data.get("provenance", {})
    config = {k: v for k, v in data.items() if k not in ("bdmm_format", "kind", "provenance")}
    return kind, config, provenance


def read_safetensors(path: Path) -> Checkpoint:
    """A `.safetensors` file (ours: config in its metadata, or a config.json beside it)."""
    from safetensors import SafetensorError
    from safetensors import safe_open

    path = Path(path)
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            meta = f.metadata() or {}
            sd = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path} is not a readable safetensors file (truncated or corrupt?): {exc}") from None
    config_json = path.parent / CONFIG_NAME
    if "bdmm_config" in meta:
        try:
            data = json.loads(meta["bdmm_config"])
        except json.JSONDecodeError:
            raise CheckpointError(f"{path}: its embedded bdmm_config is not valid JSON") from None
    elif config_json.is_file():
        data = _read_json(config_json)
    else:
        kind = detect_kind(sd, str(path))
        return Checkpoint(sd, kind, _infer_config(kind, sd), {"source_file": path.name})
    kind, config, provenance = _from_config_json(data, str(path))
    return Checkpoint(sd, kind, config, provenance)


def _read_json(path: Path) -> dict:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path} is not valid JSON: {exc}") from None


def _infer_config(kind: str, sd: Mapping[str, torch.Tensor]) -> dict:
    if kind == "generator":
        return infer_generator_config(sd)
    if kind in ("discriminator", "temporal_discriminator"):
        return infer_discriminator_config(sd)
    return {}


def read_folder(folder: Path) -> Checkpoint:
    """Our folder format: model.safetensors + config.json (config.json wins if both exist)."""
    folder = Path(folder)
    weights = folder / WEIGHTS_NAME
    if not weights.is_file():
        raise CheckpointError(f"{folder} has no {WEIGHTS_NAME} (expected a folder written by `bdmm weights import`)")
    ckpt = read_safetensors(weights)
    cfg = folder / CONFIG_NAME
    if cfg.is_file():
        kind, config, provenance = _from_config_json(_read_json(cfg), str(cfg))
        ckpt = Checkpoint(ckpt.state_dict, kind, config, provenance)
    return ckpt


_KIND_NAMES = {"generator": "BDMM generator", "discriminator": "BDMM spatial discriminator (D)",
               "temporal_discriminator": "BDMM temporal discriminator (D_V)", "spin": "SPIN/HMR regressor"}


def _wrong_kind(path: Path, want: str, got: str) -> CheckpointError:
    return CheckpointError(f"{path} is not a {_KIND_NAMES[want]} checkpoint: it holds a {_KIND_NAMES[got]}")


def read_checkpoint(path: str | Path, kind: str | None = None) -> Checkpoint:
    """Any supported file or folder -> Checkpoint (kind auto-detected unless given; then
    checked strictly against the network it names).

    - a folder in our format, or a `.safetensors` file;
    - anything else is a pickled PyTorch checkpoint (the authors' `latest_net_G.pth`,
      `latest_net_D.pth`, `latest_net_D_V.pth`, SPIN's `model_checkpoint.pt`, BDMM's
      `spin_ckpt.pth`), read with `torch.load(weights_only=True)`.
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise InputError(f"checkpoint {path} not found")
    if path.is_dir():
        ckpt = read_folder(path)
    elif path.suffix == ".safetensors":
        ckpt = read_safetensors(path)
    else:
        sd = unwrap_state_dict(read_torch_file(path), str(path))
        detected = detect_kind(sd, str(path))
        use = kind or detected
        if kind and kind != detected:
            raise _wrong_kind(path, kind, detected)
        ckpt = Checkpoint(sd, use, _infer_config(use, sd), {"source_file": path.name})
    if kind and ckpt.kind != kind:
        raise _wrong_kind(path, kind, ckpt.kind)
    sd = ckpt.state_dict
    if ckpt.kind == "spin":
        sd = check_spin_state_dict(sd, str(path))
    else:
        check_network_state_dict(ckpt.kind, sd, ckpt.config, str(path))
    nonfloat = [k for k, v in sd.items() if not v.is_floating_point() and not k.endswith("num_batches_tracked")]
    if nonfloat:
        raise CheckpointError(f"{path} has non-float tensors where weights belong: {_few(nonfloat)}")
    return Checkpoint(sd, ckpt.kind, ckpt.config, ckpt.provenance)


def write_folder(ckpt: Checkpoint, folder: str | Path, force: bool = False) -> Path:
    """Write `ckpt` in our format to `folder`, atomically: everything goes to a temporary
    folder next to it that is renamed into place at the end. An existing non-empty folder
    is an error unless `force` (then it is replaced only after the new one is complete)."""
    from safetensors.torch import save_file

    folder = Path(folder).expanduser()
    config = ckpt.config_json()
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in ckpt.state_dict.items()}
    with atomic_output_dir(folder, force) as tmp:
        save_file(tensors, str(tmp / WEIGHTS_NAME), metadata={"bdmm_config": json.dumps(config, sort_keys=True)})
        (tmp / CONFIG_NAME).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return folder
