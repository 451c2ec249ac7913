"""Load-time vs run-time settings of the animate pipeline, and step 1 run once per call."""

from __future__ import annotations

import dataclasses

from dataclasses import fields

import pytest

from animate_helpers import MODEL_SIZE, make_env
from bdmm_cli.errors import InputError
from bdmm_cli.pipeline import AnimateConfig, AnimatePipeline, LoadSettings, RunSettings, animate

N = 7


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    return make_env(tmp_path_factory.mktemp("settings_env"), N, 10.0)


def test_animate_config_is_exactly_load_plus_run_settings():
    load = {f.name for f in fields(LoadSettings)}
    run = {f.name for f in fields(RunSettings)}
    assert not load & run
    assert {f.name for f in fields(AnimateConfig)} == {"load", "run"}  # composed, not inherited
    cfg = AnimateConfig(weights="w", device="cpu", window=4, overlap=1, retarget="camera")
    assert cfg.load_settings == LoadSettings(weights="w", device="cpu")
    assert cfg.run_settings == RunSettings(window=4, overlap=1, retarget="camera")
    assert not isinstance(cfg, (LoadSettings, RunSettings))
    # every setting of both parts reads by its name; the parts build it too; unknown names fail
    for name in load | run:
        assert getattr(cfg, name) == getattr(cfg.load if name in load else cfg.run, name)
    assert AnimateConfig(cfg.load, cfg.run) == cfg
    assert dataclasses.replace(cfg, window=5).run_settings == RunSettings(window=5, overlap=1, retarget="camera")
    with pytest.raises(TypeError, match="no setting"):
        AnimateConfig(widow=4)
    with pytest.raises(AttributeError):
        cfg.widow


def test_check_inputs_runs_once_per_animate_call(env, tmp_path, monkeypatch):
    import importlib

    animate_module = importlib.import_module("bdmm_cli.pipeline.animate")  # the package's `animate` is the function

    calls = []
    real = animate_module.check_inputs

    def counting(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(animate_module, "check_inputs", counting)
    cfg = AnimateConfig(smpl=env["smpl"], poses=env["poses"], source_pose=env["source_pose"], preview=True,
                        model_size=MODEL_SIZE, size=MODEL_SIZE, device="cpu", weights="not-loaded")
    animate(env["photo"], env["video"], tmp_path / "a.mp4", cfg)
    assert len(calls) == 1
    # a pipeline called directly checks its inputs itself (step 1 of __call__)
    pipe = AnimatePipeline.from_config(cfg.load_settings, with_generator=False)
    pipe(env["photo"], env["video"], tmp_path / "b.mp4", cfg.run_settings)
    assert len(calls) == 2
    with pytest.raises(InputError, match="already exists"):
        pipe(env["photo"], env["video"], tmp_path / "b.mp4", cfg.run_settings)


def test_one_loaded_pipeline_runs_with_different_run_settings(env, tmp_path):
    pipe = AnimatePipeline.from_config(LoadSettings(smpl=env["smpl"], device="cpu"), with_generator=False)
    base = RunSettings(poses=env["poses"], source_pose=env["source_pose"], preview=True, model_size=MODEL_SIZE,
                       size=MODEL_SIZE)
    a = pipe(env["photo"], env["video"], tmp_path / "a.mp4", base)
    b = pipe(env["photo"], env["video"], tmp_path / "b.mp4", RunSettings(**{**base.__dict__, "stop": 3, "retarget": "none"}))
    assert (a.num_frames, a.retarget) == (N, "shape+camera") and (b.num_frames, b.retarget) == (3, "none")
    with pytest.raises(InputError, match="built for --preview"):
        pipe(env["photo"], env["video"], tmp_path / "c.mp4", RunSettings(**{**base.__dict__, "preview": False}))
