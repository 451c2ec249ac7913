"""The two Inception-v3 feature extractors used for FID (2048-d average-pool features).

* `torchvision` (protocol bdmm): torchvision's ImageNet Inception-v3, images in [0, 1]
  resized bilinearly to 299 and normalised as x*(std/0.5) + (mean-0.5)/0.5 with the
  ImageNet mean/std (torchvision's `transform_input`), as the authors do.
* `fid` (protocol standard): the network of the TensorFlow FID code as ported by
  pytorch-fid (weights `pt_inception-2015-12-05`): 1008 classes, and four blocks whose
  pooling branch differs from torchvision's: average pools that exclude the zero padding
  (Mixed_5b-d, Mixed_6b-e, Mixed_7b) and a max pool in Mixed_7c. Input 2x - 1.

Both stop after the global average pool. Built with `init_weights=False` (no ImageNet
download), then loaded from a state dict whose keys are torchvision's names.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.models.inception import Inception3, InceptionA, InceptionC, InceptionE

InceptionKind = Literal["torchvision", "fid"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# torchvision's Inception3 layers, in order, up to the 2048-d global average pool.
TRUNK = (
    "Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "maxpool1",
    "Conv2d_3b_1x1", "Conv2d_4a_3x3", "maxpool2",
    "Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e",
    "Mixed_7a", "Mixed_7b", "Mixed_7c", "avgpool",
)


def _avg_pool_no_pad(x: Tensor) -> Tensor:
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


class FIDInceptionA(InceptionA):
    """InceptionA whose pooling branch averages over real pixels only."""

    def _forward(self, x: Tensor) -> list[Tensor]:
        b1 = self.branch1x1(x)
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        bp = self.branch_pool(_avg_pool_no_pad(x))
        return [b1, b5, b3, bp]


class FIDInceptionC(InceptionC):
    """InceptionC whose pooling branch averages over real pixels only."""

    def _forward(self, x: Tensor) -> list[Tensor]:
        b1 = self.branch1x1(x)
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        bd = x
        for layer in (self.branch7x7dbl_1, self.branch7x7dbl_2, self.branch7x7dbl_3,
                      self.branch7x7dbl_4, self.branch7x7dbl_5):
            bd = layer(bd)
        bp = self.branch_pool(_avg_pool_no_pad(x))
        return [b1, b7, bd, bp]


class FIDInceptionE(InceptionE):
    """InceptionE with the pooling of the FID network: 'avg' (Mixed_7b) or 'max' (Mixed_7c)."""

    def __init__(self, in_channels: int, pool: Literal["avg", "max"]) -> None:
        super().__init__(in_channels)
        self.pool = pool

    def _forward(self, x: Tensor) -> list[Tensor]:
        b1 = self.branch1x1(x)
        b3 = self.branch3x3_1(x)
        b3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], 1)
        bd = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        bd = torch.cat([self.branch3x3dbl_3a(bd), self.branch3x3dbl_3b(bd)], 1)
        if self.pool == "avg":
            pooled = _avg_pool_no_pad(x)
        else:
            pooled = F.max_pool2d(x, kernel_size=3, stride=1, padding=1)
        return [b1, b3, bd, self.branch_pool(pooled)]


def build_inception(kind: InceptionKind) -> Inception3:
    """An Inception3 with the layout of the `kind` weights (parameters left at default init)."""
    if kind == "torchvision":
        # torchvision's ImageNet checkpoint carries the auxiliary classifier.
        return Inception3(num_classes=1000, aux_logits=True, transform_input=False, init_weights=False)
    if kind == "fid":
        net = Inception3(num_classes=1008, aux_logits=False, transform_input=False, init_weights=False)
        net.Mixed_5b = FIDInceptionA(192, pool_features=32)
        net.Mixed_5c = FIDInceptionA(256, pool_features=64)
        net.Mixed_5d = FIDInceptionA(288, pool_features=64)
        net.Mixed_6b = FIDInceptionC(768, channels_7x7=128)
        net.Mixed_6c = FIDInceptionC(768, channels_7x7=160)
        net.Mixed_6d = FIDInceptionC(768, channels_7x7=160)
        net.Mixed_6e = FIDInceptionC(768, channels_7x7=192)
        net.Mixed_7b = FIDInceptionE(1280, pool="avg")
        net.Mixed_7c = FIDInceptionE(2048, pool="max")
        return net
    raise ValueError(f"unknown Inception kind {kind!r}")


class InceptionFeatures(nn.Module):
    """Images -> 2048-d pool features with a protocol's input rule.

    forward(images (B, 3, H, W) float in [0, 1]) -> (B, 2048) float32
    """

    def __init__(self, inception: Inception3, kind: InceptionKind) -> None:
        super().__init__()
        self.inception = inception.eval().requires_grad_(False)
        self.kind = kind
        mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
        if kind == "torchvision":  # x*(std/0.5) + (mean-0.5)/0.5
            scale, shift = std / 0.5, (mean - 0.5) / 0.5
        else:  # 2x - 1
            scale, shift = torch.full((1, 3, 1, 1), 2.0), torch.full((1, 3, 1, 1), -1.0)
        self.register_buffer("scale", scale, persistent=False)
        self.register_buffer("shift", shift, persistent=False)

    @torch.no_grad()
    def forward(self, images: Tensor) -> Tensor:
        x = F.interpolate(images.float(), size=(299, 299), mode="bilinear", align_corners=False)
        x = x * self.scale + self.shift
        for name in TRUNK:
            x = getattr(self.inception, name)(x)
        return torch.flatten(x, 1)


def load_inception(weights, kind: InceptionKind, device: str | torch.device = "cpu") -> InceptionFeatures:
    """InceptionFeatures from a registry name, a local weights file, or an Inception3 / InceptionFeatures."""
    from bdmm_cli.metrics.networks import load_weights

    if isinstance(weights, InceptionFeatures):
        return weights.to(device)
    if isinstance(weights, Inception3):
        return InceptionFeatures(weights, kind).to(device)
    net = build_inception(kind)
    load_weights(net, weights, f"inception_{kind}", f"Inception-v3 ({kind})")
    return InceptionFeatures(net, kind).to(device)
