"""The architectures of DWPose's two ONNX files, rebuilt in PyTorch with random weights, to time
them where the published files cannot be downloaded (benchmarks/bench_pose.py --dwpose-arch).

- :class:`YoloxL`: Megvii's YOLOX-L (depth 1.0, width 1.0): Focus stem, CSPDarknet-53 stages
  (3, 9, 9, 3 bottlenecks), SPP, PAFPN, decoupled head (256 wide); exported as Megvii's demo
  exports it (no decoding inside: (N, 8400, 85) = box regression, sigmoid objectness,
  sigmoid class scores).
- :class:`DWPoseL`: RTMPose-L / DWPose-L 384x288: CSPNeXt P5 backbone (deepen 1.0, widen 1.0,
  channel attention, 5x5 depthwise blocks; 3, 6, 6, 3 blocks, SPP in the last stage), then
  RTMCC's head: 7x7 conv to 133 maps, flattened 12 x 9 -> ScaleNorm + linear 108 -> 256, one
  gated attention unit (s = 128, expansion 2) over the 133 points, linear to the SimCC bins
  (576 x, 768 y).

Layer sizes follow the public configurations (YOLOX's ``yolox_l.py`` experiment; mmpose's
``rtmpose-l_8xb32-270e_coco-wholebody-384x288.py`` that DWPose's ``dwpose_l`` config uses);
the parameter counts printed by ``python benchmarks/dwpose_arch.py`` (54.2 M and 33.6 M) match
the published files' sizes (216,746,733 and 134,399,116 bytes of float32: 54.2 M and 33.6 M
parameters). The weights are random: the timings mean something, the outputs do not.
"""

from __future__ import annotations

import torch
from torch import nn


class Conv(nn.Sequential):
    """conv (no bias) + BN + SiLU, 'same' padding."""

    def __init__(self, cin: int, cout: int, k: int = 1, s: int = 1, groups: int = 1) -> None:
        super().__init__(nn.Conv2d(cin, cout, k, s, (k - 1) // 2, groups=groups, bias=False),
                         nn.BatchNorm2d(cout, eps=1e-3), nn.SiLU())


class SPP(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv1, self.conv2 = Conv(cin, cin // 2), Conv(cin // 2 * 4, cout)
        self.pools = nn.ModuleList(nn.MaxPool2d(k, 1, k // 2) for k in (5, 9, 13))

    def forward(self, x):
        x = self.conv1(x)
        return self.conv2(torch.cat([x] + [p(x) for p in self.pools], 1))


# --- YOLOX-L -----------------------------------------------------------------------------------

class Bottleneck(nn.Module):
    def __init__(self, c: int, shortcut: bool) -> None:
        super().__init__()
        self.conv1, self.conv2, self.shortcut = Conv(c, c, 1), Conv(c, c, 3), shortcut

    def forward(self, x):
        y = self.conv2(self.conv1(x))
        return x + y if self.shortcut else y


class CSP(nn.Module):
    def __init__(self, cin: int, cout: int, n: int, shortcut: bool = True) -> None:
        super().__init__()
        h = cout // 2
        self.conv1, self.conv2, self.conv3 = Conv(cin, h), Conv(cin, h), Conv(2 * h, cout)
        self.m = nn.Sequential(*[Bottleneck(h, shortcut) for _ in range(n)])

    def forward(self, x):
        return self.conv3(torch.cat([self.m(self.conv1(x)), self.conv2(x)], 1))


class Focus(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = Conv(12, 64, 3)

    def forward(self, x):
        return self.conv(torch.cat([x[..., ::2, ::2], x[..., 1::2, ::2], x[..., ::2, 1::2], x[..., 1::2, 1::2]], 1))


class YoloxL(nn.Module):
    def __init__(self, classes: int = 80) -> None:
        super().__init__()
        self.stem = Focus()
        self.dark2 = nn.Sequential(Conv(64, 128, 3, 2), CSP(128, 128, 3))
        self.dark3 = nn.Sequential(Conv(128, 256, 3, 2), CSP(256, 256, 9))
        self.dark4 = nn.Sequential(Conv(256, 512, 3, 2), CSP(512, 512, 9))
        self.dark5 = nn.Sequential(Conv(512, 1024, 3, 2), SPP(1024, 1024), CSP(1024, 1024, 3, False))
        self.lateral0, self.c3_p4 = Conv(1024, 512), CSP(1024, 512, 3, False)
        self.reduce1, self.c3_p3 = Conv(512, 256), CSP(512, 256, 3, False)
        self.bu2, self.c3_n3 = Conv(256, 256, 3, 2), CSP(512, 512, 3, False)
        self.bu1, self.c3_n4 = Conv(512, 512, 3, 2), CSP(1024, 1024, 3, False)
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.stems = nn.ModuleList(Conv(c, 256) for c in (256, 512, 1024))
        self.cls = nn.ModuleList(nn.Sequential(Conv(256, 256, 3), Conv(256, 256, 3)) for _ in range(3))
        self.reg = nn.ModuleList(nn.Sequential(Conv(256, 256, 3), Conv(256, 256, 3)) for _ in range(3))
        self.cls_pred = nn.ModuleList(nn.Conv2d(256, classes, 1) for _ in range(3))
        self.reg_pred = nn.ModuleList(nn.Conv2d(256, 4, 1) for _ in range(3))
        self.obj_pred = nn.ModuleList(nn.Conv2d(256, 1, 1) for _ in range(3))

    def forward(self, x):
        x2 = self.dark3(self.dark2(self.stem(x)))
        x1 = self.dark4(x2)
        x0 = self.dark5(x1)
        fpn0 = self.lateral0(x0)
        f = self.c3_p4(torch.cat([self.up(fpn0), x1], 1))
        fpn1 = self.reduce1(f)
        p3 = self.c3_p3(torch.cat([self.up(fpn1), x2], 1))
        p4 = self.c3_n3(torch.cat([self.bu2(p3), fpn1], 1))
        p5 = self.c3_n4(torch.cat([self.bu1(p4), fpn0], 1))
        outs = []
        for i, feat in enumerate((p3, p4, p5)):
            h = self.stems[i](feat)
            c, r = self.cls[i](h), self.reg[i](h)
            out = torch.cat([self.reg_pred[i](r), self.obj_pred[i](r).sigmoid(), self.cls_pred[i](c).sigmoid()], 1)
            outs.append(out.flatten(2))
        return torch.cat(outs, 2).permute(0, 2, 1)


# --- DWPose-L (RTMPose-L, 384x288) -----------------------------------------------------------

class NeXtBlock(nn.Module):
    def __init__(self, c: int, identity: bool) -> None:
        super().__init__()
        self.conv1 = Conv(c, c, 3)
        self.dw, self.pw = Conv(c, c, 5, groups=c), Conv(c, c, 1)
        self.identity = identity

    def forward(self, x):
        y = self.pw(self.dw(self.conv1(x)))
        return x + y if self.identity else y


class NeXtCSP(nn.Module):
    def __init__(self, cin: int, cout: int, n: int, identity: bool) -> None:
        super().__init__()
        mid = cout // 2
        self.main, self.short, self.final = Conv(cin, mid), Conv(cin, mid), Conv(2 * mid, cout)
        self.blocks = nn.Sequential(*[NeXtBlock(mid, identity) for _ in range(n)])
        self.attention = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(2 * mid, 2 * mid, 1), nn.Hardsigmoid())

    def forward(self, x):
        y = torch.cat([self.blocks(self.main(x)), self.short(x)], 1)
        return self.final(y * self.attention(y))


class ScaleNorm(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.scale, self.g = dim ** -0.5, nn.Parameter(torch.ones(1))

    def forward(self, x):
        return x / torch.linalg.vector_norm(x, dim=-1, keepdim=True).clamp(min=1e-5) * self.scale * self.g


class GAU(nn.Module):
    """RTMCC's gated attention unit over the keypoint tokens (self-attention, no relative bias)."""

    def __init__(self, dim: int = 256, s: int = 128, expansion: int = 2) -> None:
        super().__init__()
        self.e, self.s = dim * expansion, s
        self.ln = ScaleNorm(dim)
        self.uv = nn.Linear(dim, 2 * self.e + s, bias=False)
        self.gamma, self.beta = nn.Parameter(torch.rand(2, s)), nn.Parameter(torch.zeros(2, s))
        self.o = nn.Linear(self.e, dim, bias=False)
        self.act = nn.SiLU()

    def forward(self, x):
        u, v, base = torch.split(self.act(self.uv(self.ln(x))), [self.e, self.e, self.s], dim=-1)
        q, k = (base.unsqueeze(2) * self.gamma + self.beta).unbind(2)
        kernel = torch.square(torch.relu(q @ k.transpose(1, 2) / self.s ** 0.5))
        return x + self.o(u * (kernel @ v))


class DWPoseL(nn.Module):
    def __init__(self, keypoints: int = 133, size=(384, 288)) -> None:
        super().__init__()
        self.stem = nn.Sequential(Conv(3, 32, 3, 2), Conv(32, 32, 3), Conv(32, 64, 3))
        stages = []
        for cin, cout, n, identity, spp in ((64, 128, 3, True, False), (128, 256, 6, True, False),
                                            (256, 512, 6, True, False), (512, 1024, 3, False, True)):
            layers = [Conv(cin, cout, 3, 2)] + ([SPP(cout, cout)] if spp else []) + [NeXtCSP(cout, cout, n, identity)]
            stages.append(nn.Sequential(*layers))
        self.stages = nn.Sequential(*stages)
        tokens = (size[0] // 32) * (size[1] // 32)
        self.final = nn.Conv2d(1024, keypoints, 7, padding=3)
        self.mlp = nn.Sequential(ScaleNorm(tokens), nn.Linear(tokens, 256, bias=False))
        self.gau = GAU(256)
        self.cls_x = nn.Linear(256, size[1] * 2, bias=False)
        self.cls_y = nn.Linear(256, size[0] * 2, bias=False)

    def forward(self, x):
        f = self.final(self.stages(self.stem(x))).flatten(2)
        t = self.gau(self.mlp(f))
        return self.cls_x(t), self.cls_y(t)


def export_random(folder, batched: bool = True, seed: int = 0):
    """yolox_l.onnx and dw-ll_ucoco_384.onnx with these architectures and random weights."""
    import warnings
    from pathlib import Path

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    out = []
    for net, name, dummy, ins, outs in (
            (YoloxL(), "yolox_l.onnx", torch.zeros(1, 3, 640, 640), ["images"], ["output"]),
            (DWPoseL(), "dw-ll_ucoco_384.onnx", torch.zeros(1, 3, 384, 288), ["input"], ["simcc_x", "simcc_y"])):
        axes = {n: {0: "batch"} for n in ins + outs} if batched else None
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(net.eval(), (dummy,), str(folder / name), dynamo=False, input_names=ins,
                              output_names=outs, dynamic_axes=axes, opset_version=17)
        out.append(folder / name)
    return tuple(out)


if __name__ == "__main__":
    for net in (YoloxL(), DWPoseL()):
        print(type(net).__name__, f"{sum(p.numel() for p in net.parameters()) / 1e6:.1f} M parameters")
