"""bdmm: animate a photo of a person with the motion of a driving video.

Implements BDMM, "Bidirectionally Deformable Motion Modulation for Video-based Human
Pose Transfer" (ICCV 2023, arXiv 2307.07754), compatible with the authors' checkpoints.
"""

__version__ = "0.1.0"
