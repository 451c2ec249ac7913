"""Body model (SMPL through smplx), mesh rasterizer, mesh flows and BODY_25 heatmaps."""
