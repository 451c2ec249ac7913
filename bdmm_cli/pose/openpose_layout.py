"""The key layout of the authors' `openpose_body25.pth` (OpenPose BODY_25, 327 tensors).

Restated from the project's notes on the authors' extractor (official_openpose.md,
section 2): a VGG-style stem `model0` and six stage blocks, every convolution with a bias,
PReLU slopes one per channel, no BatchNorm. `bdmm setup` checks an installed file against
this table (shapes included) so a wrong or truncated file is refused before it is used.

Hook: once the OpenPose network module exists (`bdmm_cli/pose/openpose.py`, issue 17), its
loader should check against the network built on the meta device instead
(`state_dict.load_strict`), and this table becomes a test of that network's layout.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from bdmm_cli.state_dict import check_weights

_STEM = (  # name, in, out, PReLU after it
    ("conv1_1", 3, 64, False), ("conv1_2", 64, 64, False),
    ("conv2_1", 64, 128, False), ("conv2_2", 128, 128, False),
    ("conv3_1", 128, 256, False), ("conv3_2", 256, 256, False), ("conv3_3", 256, 256, False),
    ("conv3_4", 256, 256, False), ("conv4_1", 256, 512, False), ("conv4_2", 512, 512, True),
    ("conv4_3_CPM", 512, 256, True), ("conv4_4_CPM", 256, 128, True),
)
_BLOCKS = (  # block, stage S, L, input channels, width, mid, out (registration order)
    ("block02", 0, 2, 128, 96, 256, 52), ("block12", 1, 2, 180, 128, 512, 52),
    ("block22", 2, 2, 180, 128, 512, 52), ("block32", 3, 2, 180, 128, 512, 52),
    ("block01", 0, 1, 180, 96, 256, 26), ("block11", 1, 1, 206, 128, 512, 26),
)


def openpose_body25_shapes() -> dict[str, tuple[int, ...]]:
    """Every key of `openpose_body25.pth` and its shape, in the file's order."""
    out: dict[str, tuple[int, ...]] = {}
    for name, cin, cout, prelu in _STEM:
        out[f"model0.{name}.weight"] = (cout, cin, 3, 3)
        out[f"model0.{name}.bias"] = (cout,)
        if prelu:
            out[f"model0.prelu{name[4:]}.weight"] = (cout,)
    for block, s, l, cin, width, mid, cout in _BLOCKS:
        for i in range(1, 6):  # Mconv1..5: three chained 3x3 convs, each with its PReLU
            for c in range(3):
                unit = f"{block}.main.{i - 1}.split{c}"
                src = (cin if i == 1 else 3 * width) if c == 0 else width
                out[f"{unit}.Mconv{i}_stage{s}_L{l}_{c}.weight"] = (width, src, 3, 3)
                out[f"{unit}.Mconv{i}_stage{s}_L{l}_{c}.bias"] = (width,)
                out[f"{unit}.Mprelu{i}_stage{s}_L{l}_{c}.weight"] = (width,)
        out[f"{block}.main.5.split0.Mconv6_stage{s}_L{l}.weight"] = (mid, 3 * width, 1, 1)
        out[f"{block}.main.5.split0.Mconv6_stage{s}_L{l}.bias"] = (mid,)
        out[f"{block}.main.5.split0.Mprelu6_stage{s}_L{l}.weight"] = (mid,)
        out[f"{block}.main.6.split0.Mconv7_stage{s}_L{l}.weight"] = (cout, mid, 1, 1)
        out[f"{block}.main.6.split0.Mconv7_stage{s}_L{l}.bias"] = (cout,)
    return out


def check_openpose_state_dict(sd: Mapping[str, torch.Tensor], source: str = "checkpoint") -> None:
    """Strict key/shape/float check of an OpenPose BODY_25 state dict (CheckpointError)."""
    check_weights(sd, openpose_body25_shapes(), f"{source} does not fit OpenPose BODY_25")
