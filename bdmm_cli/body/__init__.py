"""Body model (SMPL through smplx), mesh rasterizer, mesh flows and BODY_25 heatmaps.

    from bdmm_cli.body import load_body_model, mesh_flow, warp, keypoint_heatmaps
    body = load_body_model()                 # the model installed by `bdmm body install`
    verts = body(betas, pose)                # (B, V, 3)
    flow = mesh_flow(v_src, v_tgt, body.faces, cam_src, cam_tgt, 256)   # (B, 256, 256, 2)
    frame = warp(source, flow)               # (B, 3, 256, 256)

The rules follow the authors' data path (`docs/data_path.md`, sections 2-4).
"""

from bdmm_cli.body.body_model import (
    MISSING_MODEL_MESSAGE,
    BodyModel,
    install_body_model,
    installed_model_path,
    load_body_model,
    reference_forward,
)
from bdmm_cli.body.camera import EYE_DISTANCE, project, project_ndc
from bdmm_cli.body.heatmaps import KeypointHeatmaps, keypoint_heatmaps
from bdmm_cli.body.flow import UNCOVERED, MeshFlow, flow_from_fragments, mesh_flow, warp, window_flows
from bdmm_cli.body.rasterizer import Fragments, Rasterizer, rasterize
from bdmm_cli.body.smpl_file import read_smpl_file
from bdmm_cli.body.synthetic import synthetic_body_arrays, write_synthetic_body_model

__all__ = [
    "BodyModel",
    "load_body_model",
    "install_body_model",
    "installed_model_path",
    "reference_forward",
    "read_smpl_file",
    "write_synthetic_body_model",
    "synthetic_body_arrays",
    "MISSING_MODEL_MESSAGE",
    "project",
    "project_ndc",
    "EYE_DISTANCE",
    "rasterize",
    "Rasterizer",
    "Fragments",
    "mesh_flow",
    "window_flows",
    "flow_from_fragments",
    "warp",
    "MeshFlow",
    "UNCOVERED",
    "keypoint_heatmaps",
    "KeypointHeatmaps",
]
