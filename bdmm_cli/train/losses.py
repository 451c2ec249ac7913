"""The generator's and the discriminators' losses, as in the authors' code.

Generator, per frame of a window and summed over the window's frames
(`model/dance_model.py` `backward_G`, `model/networks/external_function.py` `VGGLoss`):

    L1          = mean |x - y|                                               x 5
    perceptual  = sum_l mean |phi_l(x) - phi_l(y)|,  l = relu1_1 ... relu5_1  x 0.5
    style       = sum_l mean |G(phi_l(x)) - G(phi_l(y))|,
                  l = relu2_2, relu3_4, relu4_4, relu5_2,  G(f) = f f^T / (C H W)  x 500
    contextual  = sum_l CX(phi_l(x), phi_l(y)),  l = relu3_2*, relu4_2, relu5_2  x 0.1
    adversarial = mean (D(x_i) - 1)^2 (random frame i) x 2, mean (D_V(x) - 1)^2 x 2

Discriminators (LSGAN): 0.5 (mean (D(real) - 1)^2 + mean D(fake)^2), for D on one random
frame and for D_V on the window.

phi is VGG19 fed the [-1, 1] images as they are (no ImageNet normalisation).
*The authors' VGG19 wrapper puts features 12..15 into its `relu3_2` slice, so what
their losses call relu3_2 is the output of relu3_3 (index 15); we reproduce that
(`AUTHORS_LAYERS`).

CX is the contextual loss of Mechrez et al. (ECCV 2018) in the form the authors' code
lineage uses (`CXLoss(sigma=0.5)`, called as `cx(x_features, y_features)`), i.e. with
x = generated features playing the "T" role: features are centred by the spatial mean
of x, L2-normalised per position, d_ji = (1 - cos(x_j, y_i)) / 2, relative distances
d~_ji = d_ji / (min_j d_ji + 1e-5), w_ji = exp((1 - d~_ji) / h), cx_ji = w_ji / sum_j w_ji,
CX = mean_j max_i cx_ji, loss = -log CX averaged over the batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from bdmm_cli.errors import CheckpointError

#: VGG19 `features` layout (torchvision's configuration "E", no batch norm).
VGG19_CFG = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
             512, 512, 512, 512, "M")

#: The layer names the authors' losses use -> index of the ReLU in `features`.
AUTHORS_LAYERS = {
    "relu1_1": 1, "relu2_1": 6, "relu2_2": 8, "relu3_1": 11,
    "relu3_2": 15,  # the authors' slice bug: their "relu3_2" is relu3_3
    "relu3_4": 17, "relu4_1": 20, "relu4_2": 22, "relu4_4": 26,
    "relu5_1": 29, "relu5_2": 31,
}
PERCEPTUAL_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
STYLE_LAYERS = ("relu2_2", "relu3_4", "relu4_4", "relu5_2")
CONTEXTUAL_LAYERS = ("relu3_2", "relu4_2", "relu5_2")


# ---------------------------------------------------------------------------- functional


def gram_matrix(f: Tensor) -> Tensor:
    """(B, C, H, W) -> (B, C, C): f f^T / (C H W)."""
    b, c, h, w = f.shape
    flat = f.reshape(b, c, h * w)
    return flat @ flat.transpose(1, 2) / (c * h * w)


def style_loss(fx: Tensor, fy: Tensor) -> Tensor:
    """mean |G(fx) - G(fy)| for features (B, C, H, W)."""
    return F.l1_loss(gram_matrix(fx), gram_matrix(fy))


def contextual_loss(x: Tensor, y: Tensor, bandwidth: float = 0.5, eps: float = 1e-5) -> Tensor:
    """Contextual loss between generated features `x` and target features `y` (B, C, H, W).

    Returns a scalar: the mean over the batch of -log CX (see the module docstring).
    Computed one sample at a time to bound memory ((HW)^2 per sample).
    """
    if x.shape != y.shape or x.dim() != 4:
        raise ValueError(f"contextual_loss expects two (B, C, H, W) tensors of one shape, got {tuple(x.shape)} and {tuple(y.shape)}")
    x, y = x.float(), y.float()
    losses = []
    for xb, yb in zip(x, y):
        mu = xb.mean(dim=(1, 2), keepdim=True)                      # centre by the "T" (= x) mean
        xn = F.normalize((xb - mu).flatten(1), dim=0)               # (C, Px)
        yn = F.normalize((yb - mu).flatten(1), dim=0)               # (C, Py)
        d = (1.0 - xn.t() @ yn) / 2.0                               # (Px, Py)
        d_rel = d / (d.min(dim=0, keepdim=True).values + eps)       # min over x positions
        w = torch.exp((1.0 - d_rel) / bandwidth)
        cx = w / w.sum(dim=0, keepdim=True)                         # normalised over x positions
        losses.append(-torch.log(cx.max(dim=1).values.mean()))      # max over y, mean over x
    return torch.stack(losses).mean()


def l1_per_frame(fake: Tensor, real: Tensor) -> Tensor:
    """The unweighted mean absolute error per frame on [-1, 1]: mean |fake - real| over
    all of (B, T, C, H, W) (the L1 term divided by its weight and by T)."""
    return (fake.float() - real.float()).abs().mean()


def constant_image_l1(real: Tensor) -> Tensor:
    """The L1 of the best constant image for ``real`` (B, T, C, H, W): per clip and channel
    the median over the window's pixels (the L1-optimal constant), mean |real - median|."""
    b, t, c = real.shape[:3]
    flat = real.float().transpose(1, 2).reshape(b, c, -1)
    return (flat - flat.median(dim=-1, keepdim=True).values).abs().mean()


def lsgan_d_loss(real_out: Tensor, fake_out: Tensor) -> Tensor:
    """0.5 (mean (D(real) - 1)^2 + mean D(fake)^2)."""
    return 0.5 * (F.mse_loss(real_out, torch.ones_like(real_out))
                  + F.mse_loss(fake_out, torch.zeros_like(fake_out)))


def lsgan_g_loss(fake_out: Tensor) -> Tensor:
    """mean (D(fake) - 1)^2."""
    return F.mse_loss(fake_out, torch.ones_like(fake_out))


# ---------------------------------------------------------------------------- VGG19


class VGG19Features(nn.Module):
    """VGG19 `features` (torchvision layout, key `<index>.weight`), returning the named ReLU
    outputs of `AUTHORS_LAYERS`. `width_divisor` > 1 builds the same layers thinner (tests).
    Frozen: parameters never require grad; gradients flow to the input."""

    def __init__(self, width_divisor: int = 1) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 3
        for v in VGG19_CFG:
            if v == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                c_out = max(1, int(v) // width_divisor)
                layers += [nn.Conv2d(c_in, c_out, kernel_size=3, padding=1), nn.ReLU(inplace=False)]
                c_in = c_out
        self.features = nn.Sequential(*layers[: max(AUTHORS_LAYERS.values()) + 1])
        self.width_divisor = width_divisor
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> "VGG19Features":  # always eval (no mode-dependent layers anyway)
        return super().train(False)

    def forward(self, x: Tensor, names: tuple[str, ...] = tuple(AUTHORS_LAYERS)) -> dict[str, Tensor]:
        wanted = {AUTHORS_LAYERS[n]: n for n in names}
        last = max(wanted)
        out: dict[str, Tensor] = {}
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in wanted:
                out[wanted[i]] = x
            if i == last:
                break
        return out


def load_vgg19(weights: str = "vgg19", width_divisor: int = 1, device: str | torch.device = "cpu") -> VGG19Features:
    """Build the frozen VGG19 feature extractor.

    `weights`: a weights-registry name (e.g. "vgg19": torchvision's ImageNet VGG19), a local
    `.pth`/`.safetensors` file (torchvision keys `features.<i>.*` or `<i>.*`), or "random"
    (untrained, seeded; tests and benchmarks only). The file is found by `hub.resolve_weights`
    and read and loaded by the one strict path (`state_dict.read_checkpoint_file`, then
    `state_dict.load_strict` into the layers up to relu5_2 built on the meta device: the
    classifier and the layers after relu5_2 that torchvision's file also holds are not used).
    MissingResourceError when the registry cannot provide the file (offline, cold cache).
    """
    from bdmm_cli.hub.resolve import resolve_weights
    from bdmm_cli.state_dict import load_strict, read_checkpoint_file

    if weights == "random":  # reproducible: seeded, without touching the global generator
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            return VGG19Features(width_divisor).to(device)
    path = resolve_weights(weights, "vgg19")
    try:
        sd = read_checkpoint_file(path).state_dict
    except CheckpointError as exc:
        raise CheckpointError(f"cannot read VGG19 weights: {exc}") from None
    with torch.device("meta"):
        net = VGG19Features(width_divisor)
    used = set(net.features.state_dict())
    sd = {k.removeprefix("features."): v for k, v in sd.items()}
    load_strict(net.features, {k: v for k, v in sd.items() if k in used}, f"{path} does not fit VGG19")
    return net.requires_grad_(False).to(device)


# ---------------------------------------------------------------------------- module


@dataclass(frozen=True)
class LossWeights:
    """Weights of the reconstruction terms (the adversarial weights live in TrainConfig)."""

    l1: float = 5.0
    perceptual: float = 0.5
    style: float = 500.0
    contextual: float = 0.1
    cx_bandwidth: float = 0.5


class ReconstructionLoss(nn.Module):
    """L1 + perceptual + style + contextual between generated and real frames.

    forward(fake (B, T, 3, S, S), real (B, T, 3, S, S)) -> dict of weighted terms
    ("l1", "perceptual", "style", "contextual"), each the per-frame loss (mean over the
    batch) summed over the T frames, times its weight, as in the authors' `backward_G`.
    """

    def __init__(self, vgg: VGG19Features, weights: LossWeights = LossWeights()) -> None:
        super().__init__()
        self.vgg = vgg
        self.weights = weights

    def forward(self, fake: Tensor, real: Tensor) -> dict[str, Tensor]:
        b, t = fake.shape[:2]
        x = fake.reshape(b * t, *fake.shape[2:])
        y = real.reshape(b * t, *real.shape[2:]).to(x.dtype)
        w = self.weights
        terms = {"l1": F.l1_loss(x.float(), y.float()) * t * w.l1}
        needs_vgg = w.perceptual or w.style or w.contextual
        if not needs_vgg:
            return terms
        fx = self.vgg(x)
        with torch.no_grad():
            fy = self.vgg(y)
        fx = {k: v.float() for k, v in fx.items()}
        fy = {k: v.float() for k, v in fy.items()}
        # every term is a mean over the B*T frames; x T = per-frame batch means summed over frames
        terms["perceptual"] = sum(F.l1_loss(fx[n], fy[n]) for n in PERCEPTUAL_LAYERS) * t * w.perceptual
        terms["style"] = sum(style_loss(fx[n], fy[n]) for n in STYLE_LAYERS) * t * w.style
        terms["contextual"] = sum(
            contextual_loss(fx[n], fy[n], w.cx_bandwidth) for n in CONTEXTUAL_LAYERS) * t * w.contextual
        return terms
