"""Evaluation protocols: every choice that changes a number, in one frozen dataclass.

`bdmm` reproduces the authors' evaluation script (SSIM data range from the generated
image, FID from torchvision's Inception with their input normalisation, three FVD variants
with repeated random real clips); `standard` uses the settings most other papers report
(pytorch-fid's FID Inception, fixed SSIM range, one 16-frame FVD). `metrics/README.md`
lists every difference.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from bdmm_cli.errors import InputError


@dataclass(frozen=True)
class FVDVariant:
    """One FVD setting: clips of `num_frames` frames taken every `stride` frames.

    name:       JSON key (`fvd_16f`, `fvd_128f`, `fvd_128f_subsample8f`)
    num_frames: T, frames per clip fed to the detector
    stride:     frame step inside a clip (8 for `subsample8f`)
    runs:       repetitions (new random real clips each run); mean and std are reported
    """

    name: str
    num_frames: int
    stride: int
    runs: int

    @property
    def span(self) -> int:
        """Shortest usable video (T * stride frames); shorter videos are dropped."""
        return self.num_frames * self.stride


@dataclass(frozen=True)
class Protocol:
    """Everything that distinguishes one way of computing the metrics from another.

    ssim_range:        "pred" = data_range is max - min of the generated image (authors);
                       "full" = 255 for uint8 images
    fid_network:       registry name of the Inception weights
                       ("inception-v3" or "inception-fid")
    fid_input:         "torchvision" = x*(std/0.5) + (mean-0.5)/0.5 (authors);
                       "fid" = 2x - 1 (pytorch-fid / TF FID)
    fvd_variants:      the FVD settings reported, each under its own JSON key
    fvd_real_start:    "random" = real clip start uniform (StyleGAN-V); "zero" = first frame
    fvd_max_videos:    one clip per video, the first this many usable videos
    fvd_cov_ddof:      covariance normalisation of FVD statistics (0 = population, StyleGAN-V)
    fid_cov_ddof:      covariance normalisation of FID statistics (1 = np.cov, pytorch-fid)
    """

    name: str
    ssim_range: Literal["pred", "full"]
    fid_network: str
    fid_input: Literal["torchvision", "fid"]
    fvd_variants: tuple[FVDVariant, ...]
    fvd_real_start: Literal["random", "zero"]
    fvd_max_videos: int = 2048
    fvd_cov_ddof: int = 0
    fid_cov_ddof: int = 1


BDMM = Protocol(
    name="bdmm",
    ssim_range="pred",
    fid_network="inception-v3",
    fid_input="torchvision",
    fvd_variants=(
        FVDVariant("fvd_16f", num_frames=16, stride=1, runs=100),
        FVDVariant("fvd_128f", num_frames=128, stride=1, runs=50),
        FVDVariant("fvd_128f_subsample8f", num_frames=16, stride=8, runs=50),
    ),
    fvd_real_start="random",
)

STANDARD = Protocol(
    name="standard",
    ssim_range="full",
    fid_network="inception-fid",
    fid_input="fid",
    fvd_variants=(FVDVariant("fvd_16f", num_frames=16, stride=1, runs=1),),
    fvd_real_start="zero",
)

PROTOCOLS: dict[str, Protocol] = {p.name: p for p in (BDMM, STANDARD)}


def get_protocol(protocol: str | Protocol) -> Protocol:
    """A Protocol from its name (`bdmm`, `standard`) or itself."""
    if isinstance(protocol, Protocol):
        return protocol
    try:
        return PROTOCOLS[protocol]
    except KeyError:
        raise InputError(
            f"unknown protocol {protocol!r}; choose one of: {', '.join(PROTOCOLS)}"
        ) from None
