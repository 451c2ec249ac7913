"""The BDMM networks: generator (with its DMM blocks), spatial and temporal discriminators.

State-dict keys are identical to the authors' (rocketappslab/BDMM) so their checkpoints
load with :func:`load_official_state_dict` (strict); :func:`load_generator` /
:func:`load_discriminators` take a registry name, folder or file (``checkpoint.py``).
"""

from .checkpoint import (
    load_discriminators,
    load_generator,
    load_official_state_dict,
    normalize_state_dict,
    save_discriminators,
    save_generator,
    save_network,
)
from .deform import DEFORM_IMPLS, default_deform_impl
from .discriminators import DiscriminatorConfig, SpatialDiscriminator, SpectralNormConv2d, TemporalDiscriminator
from .dmm import DMMBlock, ModulatedDeformConv2d, modulated_deform_conv2d
from .generator import BDMMGenerator, GeneratorConfig, SourceConstants, WindowInputs, WindowOutput, WindowState, warp
from .layers import modulate_weight

__all__ = [
    "DEFORM_IMPLS",
    "BDMMGenerator",
    "SourceConstants",
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
    "load_discriminators",
    "load_generator",
    "default_deform_impl",
    "load_official_state_dict",
    "modulate_weight",
    "modulated_deform_conv2d",
    "normalize_state_dict",
    "save_discriminators",
    "save_generator",
    "save_network",
    "warp",
]
