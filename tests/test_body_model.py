"""SMPL forward, the synthetic model, the chumpy-free loader and `bdmm body install`."""

from __future__ import annotations

import os
import pickle
import sys
import types

import numpy as np
import pytest
import scipy.sparse
import torch
from typer.testing import CliRunner

from bdmm_cli.body import (
    MISSING_MODEL_MESSAGE,
    BodyModel,
    installed_model_path,
    load_body_model,
    read_smpl_file,
    reference_forward,
    synthetic_body_arrays,
    write_synthetic_body_model,
)
from bdmm_cli.body.synthetic import REST_JOINTS, SMPL_PARENTS
from bdmm_cli.cli import app
from bdmm_cli.errors import InputError, MissingResourceError

runner = CliRunner()


@pytest.fixture(scope="module")
def arrays() -> dict:
    return synthetic_body_arrays(seed=0)


# ------------------------------------------------------------------ forward pass ---


def test_smplx_forward_matches_the_official_forward_to_1e5(arrays):
    body = BodyModel(arrays)
    g = torch.Generator().manual_seed(0)
    betas = torch.randn(4, 10, generator=g)
    pose = torch.randn(4, 72, generator=g) * 0.8
    pose[0] = 0.0  # zero pose: the +1e-8 in the angle must not produce NaN
    pose[1, 3:6] = 1e-9  # tiny angle
    verts = body(betas, pose)
    assert verts.dtype == torch.float32 and verts.shape == (4, body.num_vertices, 3)
    want = reference_forward(arrays, betas, pose)
    assert torch.isfinite(verts).all()
    assert (verts.double() - want).abs().max().item() < 1e-5


def test_zero_pose_zero_shape_gives_the_template(arrays):
    body = BodyModel(arrays)
    verts = body(torch.zeros(1, 10), torch.zeros(1, 72))
    np.testing.assert_allclose(verts[0].numpy(), arrays["v_template"], atol=1e-6)


def test_rotating_a_joint_moves_only_its_subtree(arrays):
    body = BodyModel(arrays)
    rest = body(torch.zeros(1, 10), torch.zeros(1, 72))[0]
    pose = torch.zeros(1, 72)
    pose[0, 18 * 3 + 2] = 1.0  # left elbow
    moved = (body(torch.zeros(1, 10), pose)[0] - rest).norm(dim=1)
    w = torch.as_tensor(arrays["weights"])
    subtree = {18, 20, 22}
    influenced = w[:, sorted(subtree)].sum(1) > 0
    far = moved[~influenced]
    assert far.max() < 0.01  # only the small pose blend shapes elsewhere
    assert moved[influenced].max() > 0.1


# --------------------------------------------------------------- synthetic model ---


def test_synthetic_model_is_a_valid_smpl_layout(arrays, tmp_path):
    v, f = arrays["v_template"], arrays["f"]
    assert 300 <= len(v) <= 2000 and f.shape[1] == 3
    assert arrays["shapedirs"].shape == (len(v), 3, 10) and arrays["posedirs"].shape == (len(v), 3, 207)
    np.testing.assert_allclose(arrays["weights"].sum(1), 1.0, atol=1e-12)
    np.testing.assert_allclose(arrays["J_regressor"].sum(1), 1.0, atol=1e-12)
    np.testing.assert_allclose(arrays["J_regressor"] @ v, REST_JOINTS, atol=1e-12)
    assert tuple(arrays["kintree_table"][0]) == SMPL_PARENTS
    # Closed, outward-wound surface: every edge used twice in opposite directions, and
    # the signed volume (divergence theorem) is positive.
    edges = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
    assert len({tuple(e) for e in edges.tolist()}) == len(edges)
    assert {tuple(e) for e in edges.tolist()} == {tuple(e) for e in edges[:, ::-1].tolist()}
    tri = v[f]
    volume = np.einsum("ij,ij->i", tri[:, 0], np.cross(tri[:, 1], tri[:, 2])).sum() / 6
    assert volume > 0.01
    path = write_synthetic_body_model(tmp_path / "synthetic.npz")
    body = load_body_model(path)
    assert body.kind == "synthetic" and body.num_vertices == len(v)
    torch.testing.assert_close(body.faces, torch.as_tensor(f))
    assert synthetic_body_arrays(seed=1)["shapedirs"][:, :, 5].tolist() != arrays["shapedirs"][:, :, 5].tolist()


# ------------------------------------------------------------------------ loader ---


class _FakeCh:
    """Pickles like chumpy.ch.Ch: state is a dict holding the array under 'x'."""

    def __init__(self, x):
        self.x = x
        self._dirty_vars = set()
        self._itr = None


class _Py2Array:
    """Pickles a numpy array the way Python 2 did: raw data as a (latin-1) str."""

    def __init__(self, a):
        self.a = np.ascontiguousarray(a)

    def __reduce__(self):
        try:
            from numpy._core import multiarray  # numpy >= 2
        except ImportError:  # numpy 1.x
            from numpy.core import multiarray

        a = self.a
        return (multiarray._reconstruct, (np.ndarray, (0,), b"b"), (1, a.shape, a.dtype, False, a.tobytes().decode("latin1")))


def pickle_with_fake_chumpy(obj, path, monkeypatch, protocol=2):
    mod, sub = types.ModuleType("chumpy"), types.ModuleType("chumpy.ch")
    _FakeCh.__module__, _FakeCh.__qualname__, _FakeCh.__name__ = "chumpy.ch", "Ch", "Ch"
    sub.Ch = _FakeCh
    mod.ch = sub
    with monkeypatch.context() as m:
        m.setitem(sys.modules, "chumpy", mod)
        m.setitem(sys.modules, "chumpy.ch", sub)
        path.write_bytes(pickle.dumps(obj, protocol=protocol))
    # Loading must work without chumpy: make any import of it fail.
    monkeypatch.setitem(sys.modules, "chumpy", None)


def hmr_layout(a: dict) -> dict:
    """The dict layout of HMR's neutral `smpl_model.pkl`."""
    nv = len(a["v_template"])
    kt = a["kintree_table"].astype(np.uint32)  # root parent is uint32(-1) = 4294967295
    coco = np.zeros((19, nv))
    coco[np.arange(19), np.arange(19) * 7] = 1.0
    return {
        "f": a["f"].astype(np.uint32),
        "v_template": _FakeCh(a["v_template"]),
        "shapedirs": _FakeCh(a["shapedirs"]),
        "J_regressor": scipy.sparse.csc_matrix(a["J_regressor"]),
        "posedirs": _Py2Array(a["posedirs"]),
        "kintree_table": kt,
        "weights": _Py2Array(a["weights"]),
        "cocoplus_regressor": scipy.sparse.csc_matrix(coco),
        "J": a["J_regressor"] @ a["v_template"],
        "bs_style": "lbs",
        "bs_type": "lrotmin",
        "weights_prior": a["weights"],
        "vert_sym_idxs": np.arange(nv),
        "pose_training_info": {"ch": 1},
    }


def assert_same_model(model: dict, a: dict) -> None:
    for key in ("v_template", "shapedirs", "posedirs", "J_regressor", "weights", "f"):
        np.testing.assert_array_equal(model[key], a[key], err_msg=key)
    assert model["kintree_table"][0, 0] == -1


@pytest.mark.parametrize("protocol", [2, 0, 5])
def test_hmr_pickle_loads_without_chumpy(arrays, tmp_path, monkeypatch, protocol):
    path = tmp_path / "smpl_model.pkl"
    pickle_with_fake_chumpy(hmr_layout(arrays), path, monkeypatch, protocol=protocol)
    model = read_smpl_file(path)
    assert_same_model(model, arrays)
    assert model["cocoplus_regressor"].shape == (19, len(arrays["v_template"]))
    assert sys.modules.get("chumpy") is None
    body = load_body_model(path)
    ref = BodyModel(arrays)
    pose = torch.full((1, 72), 0.1)
    torch.testing.assert_close(body(torch.ones(1, 10), pose), ref(torch.ones(1, 10), pose))


def test_standard_smpl_pickle_with_300_betas(arrays, tmp_path, monkeypatch):
    a = dict(arrays)
    extra = np.random.default_rng(0).normal(size=(len(a["v_template"]), 3, 290))
    d = {
        "v_template": _FakeCh(a["v_template"]),
        "shapedirs": _FakeCh(np.concatenate([a["shapedirs"], extra], axis=2)),
        "posedirs": _FakeCh(a["posedirs"]),
        "J_regressor": scipy.sparse.csc_matrix(a["J_regressor"]),
        "weights": _FakeCh(a["weights"]),
        "kintree_table": a["kintree_table"],
        "f": a["f"],
    }
    path = tmp_path / "SMPL_NEUTRAL.pkl"
    pickle_with_fake_chumpy(d, path, monkeypatch)
    assert_same_model(read_smpl_file(path), arrays)


def test_malicious_pickle_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, ("touch " + str(tmp_path / "pwned"),))

    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"v_template": Evil()}, protocol=2))
    with pytest.raises(InputError, match="refusing"):
        read_smpl_file(path)
    assert not (tmp_path / "pwned").exists()


def test_bad_files_give_input_errors(arrays, tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        read_smpl_file(tmp_path / "nope.pkl")
    junk = tmp_path / "junk.pkl"
    junk.write_bytes(b"\x80\x02not really a pickle")
    with pytest.raises(InputError):
        read_smpl_file(junk)
    partial = tmp_path / "partial.npz"
    np.savez(partial, v_template=arrays["v_template"])
    with pytest.raises(InputError, match="missing"):
        read_smpl_file(partial)
    wrong = tmp_path / "wrong.npz"
    np.savez(wrong, **{**{k: v for k, v in arrays.items() if k != "kind"}, "weights": arrays["weights"][:, :20]})
    with pytest.raises(InputError, match="weights"):
        read_smpl_file(wrong)


def test_missing_model_is_a_one_line_error():
    with pytest.raises(MissingResourceError) as exc:
        load_body_model()
    assert str(exc.value) == MISSING_MODEL_MESSAGE and "\n" not in str(exc.value)
    result = runner.invoke(app, ["body", "info"])
    assert result.exit_code != 0
    assert "bdmm body install" in result.output


# --------------------------------------------------------------------------- CLI ---


def test_cli_install_hmr_pickle_then_load(arrays, tmp_path, monkeypatch):
    path = tmp_path / "smpl_model.pkl"
    pickle_with_fake_chumpy(hmr_layout(arrays), path, monkeypatch)
    result = runner.invoke(app, ["body", "install", str(path)])
    assert result.exit_code == 0, result.output
    dest = installed_model_path()
    assert dest.is_file() and not [p for p in dest.parent.iterdir() if p.name != dest.name]
    body = load_body_model()  # the installed one
    assert body.num_vertices == len(arrays["v_template"])
    with np.load(dest, allow_pickle=False) as z:  # no pickle inside
        assert "cocoplus_regressor" in z.files
    # Same file again: a no-op; a different file: refused without --force.
    result = runner.invoke(app, ["body", "install", str(path)])
    assert result.exit_code == 0 and "already installed" in result.output
    other = write_synthetic_body_model(tmp_path / "other.npz", seed=3)
    before = dest.read_bytes()
    result = runner.invoke(app, ["body", "install", str(other)])
    assert result.exit_code != 0 and "--force" in result.output
    assert dest.read_bytes() == before
    result = runner.invoke(app, ["body", "install", str(other), "--force"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["body", "info"])
    assert result.exit_code == 0 and "synthetic" in result.output and "other.npz" in result.output


def test_cli_install_bad_file_leaves_nothing(tmp_path):
    bad = tmp_path / "bad.pkl"
    bad.write_bytes(b"garbage")
    result = runner.invoke(app, ["body", "install", str(bad)])
    assert result.exit_code != 0 and "error" in result.output
    assert not installed_model_path().exists()
    assert runner.invoke(app, ["body", "install", str(tmp_path / "missing.pkl")]).exit_code != 0
    assert "install" in runner.invoke(app, ["body", "--help"]).output
