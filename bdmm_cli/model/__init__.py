"""The BDMM networks: generator (with its DMM blocks), spatial and temporal discriminators.

State-dict keys are identical to the authors' (rocketappslab/BDMM) so their checkpoints
load with :func:`load_official_state_dict` (strict).
"""

from .checkpoint import load_official_state_dict, normalize_state_dict
from .deform import DEFORM_IMPLS, default_deform_impl
from .discriminators import DiscriminatorConfig, SpatialDiscriminator, SpectralNormConv2d, TemporalDiscriminator
from .dmm import DMMBlock, ModulatedDeformConv2d, modulated_deform_conv2d
from .generator import BDMMGenerator, GeneratorConfig, WindowInputs, WindowOutput, WindowState, warp
from .layers import modulate_weight

__all__ = [
    "DEFORM_IMPLS",
    "BDMMGenerator",
    "DMMBlock",
    "DiscriminatorConfig",
    "GeneratorConfig",
    "ModulatedDeformConv2d",
    "SpatialDiscriminator",
    "SpectralNormConv2d",
    "TemporalDiscriminator",
    "WindowInputs",
    "WindowOutput",
    "WindowState",
    "default_deform_impl",
    "load_official_state_dict",
    "modulate_weight",
    "modulated_deform_conv2d",
    "normalize_state_dict",
    "warp",
]
