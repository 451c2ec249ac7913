"""Data sets on disk: the authors' layout (frames + kptsmpls JSON, test_list.csv).

Modules: ``kptsmpl`` (one frame's BODY_25 keypoints + SMPL JSON), ``pose_dir`` (one
video's ``frames/`` + ``kptsmpls/`` folder), ``layout`` (a data set: ``train/``, ``test/``,
``test_list.csv``), ``prepare`` (``bdmm data prepare``), ``synthetic`` (generated data sets
for tests and benchmarks).
"""
