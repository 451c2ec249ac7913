"""Training configuration: one typed dataclass whose defaults are the paper's settings.

A run is configured by, in increasing priority: the defaults below, a TOML file
(`bdmm train --config run.toml`, keys = field names, flat), then `key=value` overrides
(`--set lr_g=2e-4 --set model_ngf=8`). The resolved config is written to the run
directory as `config.toml` and stored in every checkpoint.

Paper / authors' code (rocketappslab/BDMM, `model/dance_model.py`, `options/`):
Adam lr 1e-4 betas (0, 0.999) for G; D and D_V share one Adam with lr 1e-5 (ratio 0.1);
50,000 iterations (one iteration = one 30-frame clip = 5 windows of 6, each window one
D update and one G update); no learning-rate decay in practice; batch 1 per GPU;
loss weights L1 5, perceptual 0.5, style 500, contextual 0.1, adversarial 2 and 2.

One default is not the authors': `init`. Theirs (orthogonal, gain 0.02 on every conv and
linear layer: `init=orthogonal`) starts the generator's output ~1e-27 in magnitude with the
gradients of all its layers but the last below Adam's epsilon; a small model trained from it
sat at the zero image's error for ~100 iterations before it started to learn. The default
`init=none` keeps every layer's own initialisation, under which the signal and gradients
keep their scale and learning starts at once (`docs/training_init.md`).
"""

from __future__ import annotations

import dataclasses
import sys
import typing
from dataclasses import dataclass, fields
from pathlib import Path

from bdmm_cli.errors import InputError
from bdmm_cli.train.init import INITS

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run depends on (the paper's defaults)."""

    # data
    data: str = "fashionvideo"      # fashionvideo | iper | a folder in the official layout
    data_root: str = ""             # where the named data sets live ("" = $BDMM_HOME/datasets)
    image_size: int = 256           # S; frames are stored at 256, resized if different
    clip_len: int = 30              # frames per training item (a multiple of window)
    window: int = 6                 # frames per generator call (T)
    source_first_n: int = 20        # the source frame is uniform among the first N frames
    body_model: str = ""            # SMPL file ("" = the model installed with `bdmm body install`)
    batch_size: int = 1             # per process
    num_workers: int = 2            # DataLoader worker processes
    # optimisation
    iterations: int = 50_000        # training items (clips) seen by each process
    lr_g: float = 1e-4
    lr_d: float = 1e-5              # D and D_V, one optimiser
    beta1: float = 0.0
    beta2: float = 0.999
    grad_clip: float = 0.0          # 0 = off (the paper does not clip)
    ema_decay: float = 0.0          # 0 = off; e.g. 0.999 keeps an EMA copy of G
    # loss weights
    w_l1: float = 5.0
    w_perceptual: float = 0.5
    w_style: float = 500.0
    w_contextual: float = 0.1
    w_adv: float = 2.0              # spatial discriminator, random frame
    w_adv_video: float = 2.0        # temporal discriminator, whole window
    cx_bandwidth: float = 0.5
    vgg_weights: str = "vgg19"      # weights registry name; "random" = untrained (tests only)
    vgg_width_divisor: int = 1      # >1 only for tests: thinner VGG19, same layers
    # networks (the paper's sizes; tests shrink them)
    model_ngf: int = 64             # style_dim follows: ngf * min(32, img_f // ngf)
    model_img_f: int = 512
    disc_ndf: int = 32
    disc_img_f: int = 128
    init: str = "none"              # none (each layer's own; the default, it learns) | orthogonal (the authors') | kaiming
    init_gain: float = 0.02         # gain of init=orthogonal (the authors': 0.02)
    # numerics and devices
    device: str = "auto"            # auto | cpu | cuda
    amp: str = "bf16"               # on CUDA: bf16 | fp16 | off ; ignored on CPU
    seed: int = 0
    deterministic: bool = False     # torch.use_deterministic_algorithms on GPU
    # run directory
    checkpoint_every: int = 1000    # iterations
    log_every: int = 50             # iterations (stats.jsonl, TensorBoard)
    sample_every: int = 1000        # iterations (sample grid PNG); 0 = off
    stall_check: int = 500          # at this iteration, warn if G has not learnt (monitor.py); 0 = off
    tensorboard: bool = True

    def __post_init__(self) -> None:
        if self.window <= 0 or self.clip_len <= 0 or self.clip_len % self.window:
            raise InputError(f"clip_len ({self.clip_len}) must be a positive multiple of window ({self.window})")
        if self.window != 6:
            # the temporal discriminator's channel arithmetic only fits 6 frames
            raise InputError(f"window must be 6 (the temporal discriminator needs 6 frames), got {self.window}")
        if self.image_size < 128 or self.image_size % 64:
            raise InputError(f"image_size must be a multiple of 64 and at least 128, got {self.image_size}")
        if self.batch_size < 1 or self.iterations < 0:
            raise InputError("batch_size must be >= 1 and iterations >= 0")
        if self.source_first_n < 1:
            raise InputError("source_first_n must be >= 1")
        if self.amp not in ("bf16", "fp16", "off"):
            raise InputError(f"amp must be bf16, fp16 or off, got {self.amp!r}")
        if self.device not in ("auto", "cpu", "cuda") and not self.device.startswith("cuda:"):
            raise InputError(f"device must be auto, cpu or cuda, got {self.device!r}")
        if self.init not in INITS:
            raise InputError(f"init must be one of {', '.join(INITS)}, got {self.init!r}")
        if self.stall_check < 0:
            raise InputError(f"stall_check must be >= 0, got {self.stall_check}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise InputError(f"ema_decay must be in [0, 1), got {self.ema_decay}")

    @property
    def windows_per_clip(self) -> int:
        return self.clip_len // self.window

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_toml(self) -> str:
        """The config as a flat TOML document (round-trips through `load_config`)."""
        lines = []
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool):
                text = "true" if value else "false"
            elif isinstance(value, (int, float)):
                text = repr(value)
            else:
                text = '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'
            lines.append(f"{f.name} = {text}")
        return "\n".join(lines) + "\n"


_TYPES = {f.name: f.type for f in fields(TrainConfig)}


def _coerce(name: str, value: object) -> object:
    """Convert a TOML value or a command-line string to the field's type."""
    if name not in _TYPES:
        known = ", ".join(sorted(_TYPES))
        raise InputError(f"unknown config key {name!r}; known keys: {known}")
    kind = typing.get_type_hints(TrainConfig)[name]
    try:
        if kind is bool:
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
            raise ValueError(text)
        if kind is int:
            if isinstance(value, float) and not value.is_integer():
                raise ValueError(value)
            return int(float(value)) if isinstance(value, str) and "e" in value.lower() else int(value)
        if kind is float:
            return float(value)
        return str(value)
    except (TypeError, ValueError):
        raise InputError(f"config key {name!r} expects {kind.__name__}, got {value!r}") from None


def load_config(path: Path | None = None, overrides: typing.Sequence[str] = (),
                base: TrainConfig | None = None, **values: object) -> TrainConfig:
    """Resolve a config: `base` (defaults), then the TOML file, then `key=value` strings,
    then keyword `values` (the CLI's named options, None = not given)."""
    merged: dict[str, object] = dataclasses.asdict(base or TrainConfig())
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise InputError(f"config file {path} does not exist")
        try:
            doc = tomllib.loads(path.read_text())
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise InputError(f"config file {path} is not valid TOML: {exc}") from None
        for key, value in doc.items():
            if isinstance(value, dict):
                raise InputError(f"config file {path}: tables are not supported ([{key}]); use flat keys")
            merged[key] = _coerce(key, value)
    for item in overrides:
        if "=" not in item:
            raise InputError(f"override {item!r} must look like key=value")
        key, value = item.split("=", 1)
        merged[key.strip()] = _coerce(key.strip(), value.strip())
    for key, value in values.items():
        if value is not None:
            merged[key] = _coerce(key, value)
    return TrainConfig(**merged)


def config_from_dict(values: dict) -> TrainConfig:
    """Rebuild a config stored in a checkpoint (unknown keys are an error)."""
    return TrainConfig(**{k: _coerce(k, v) for k, v in values.items()})
