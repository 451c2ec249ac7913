"""Pose front-end: person keypoints (BODY_25), crop, SPIN/HMR regressor, smoothing, cache."""
