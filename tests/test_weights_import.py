"""Importing the authors' checkpoints (built from the parity spec) and SPIN's, loading them back,
exporting a Hub-ready folder, and refusing wrong, truncated or unsafe files."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from typer.testing import CliRunner

from bdmm_cli.cli import app
from bdmm_cli.errors import CheckpointError, InputError
from bdmm_cli.fileio import sha256_file
from bdmm_cli.checkpoints import read_checkpoint
from bdmm_cli.model.checkpoint import load_discriminators, load_generator
from bdmm_cli.pose.hmr import check_spin_state_dict, load_pose_regressor, spin_expected_shapes
from weights_helpers import authors_state_dict, same_state, tiny_generator

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

runner = CliRunner()


@pytest.fixture(scope="module")
def authors_dir(fixture_dir, tmp_path_factory) -> Path:
    """latest_net_G.pth (DataParallel `module.` keys), latest_net_D.pth, latest_net_D_V.pth
    with the parity fixture's seed-1 weights, saved the way the authors' code saves them."""
    folder = tmp_path_factory.mktemp("authors")
    torch.save(authors_state_dict(fixture_dir, "G", prefix="module."), folder / "latest_net_G.pth")
    torch.save(authors_state_dict(fixture_dir, "D"), folder / "latest_net_D.pth")
    torch.save(authors_state_dict(fixture_dir, "D_V"), folder / "latest_net_D_V.pth")
    return folder


@pytest.fixture(scope="module")
def imported_g(authors_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("imported") / "fashionvideo-G"
    result = runner.invoke(app, ["weights", "import", str(authors_dir / "latest_net_G.pth"), "-o", str(out)])
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def loaded_g(imported_g):
    return load_generator(imported_g)


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


def test_import_then_load_is_bit_identical(imported_g, loaded_g, authors_dir, fixture_dir):
    assert sorted(p.name for p in imported_g.iterdir()) == ["config.json", "model.safetensors"]
    config = json.loads((imported_g / "config.json").read_text())
    assert config["kind"] == "generator"
    assert {k: config[k] for k in ("image_nc", "structure_nc", "ngf", "img_f", "layers", "style_dim")} == \
        {"image_nc": 3, "structure_nc": 25, "ngf": 64, "img_f": 512, "layers": 3, "style_dim": 512}
    assert config["provenance"]["source_file"] == "latest_net_G.pth"
    assert config["provenance"]["source_sha256"] == sha256_file(authors_dir / "latest_net_G.pth")
    with safe_open(str(imported_g / "model.safetensors"), "pt") as f:
        assert json.loads(f.metadata()["bdmm_config"]) == config
    want = authors_state_dict(fixture_dir, "G")
    assert len(want) == 241
    assert same_state(loaded_g.state_dict(), want)
    assert same_state(load_generator(authors_dir / "latest_net_G.pth").state_dict(), want)


def test_imported_generator_reproduces_the_parity_window(loaded_g, fixture_dir):
    from bdmm_cli.model import WindowInputs

    g = loaded_g
    with np.load(fixture_dir / "case_a.npz") as z:
        def arr(key):  # sample 0 of the batch (instance norm: samples are independent)
            return torch.from_numpy(z[key][:1].astype(np.float32))

        inputs = WindowInputs(source=arr("P_ref"), heatmaps=arr("w0_BP"), flows=arr("w0_flow_frames"),
                              flow_pre=arr("w0_flow_pre"), flow_post=arr("w0_flow_post"))
        want = arr("w0_out_images")
    with torch.no_grad():
        out = g(inputs, state=None)
    assert _rel(out.frames, want) < 1e-4


def test_discriminators_import_and_reproduce_the_fixture(authors_dir, fixture_dir, tmp_path):
    for kind, fname in (("discriminator", "latest_net_D.pth"), ("temporal_discriminator", "latest_net_D_V.pth")):
        result = runner.invoke(app, ["weights", "import", str(authors_dir / fname), "-o", str(tmp_path / kind)])
        assert result.exit_code == 0, result.output
        assert json.loads((tmp_path / kind / "config.json").read_text())["kind"] == kind
    d, d_v = load_discriminators(tmp_path)
    assert same_state(d.state_dict(), authors_state_dict(fixture_dir, "D"))
    assert same_state(d_v.state_dict(), authors_state_dict(fixture_dir, "D_V"))
    with np.load(fixture_dir / "case_a.npz") as z:
        frames = torch.from_numpy(z["w0_out_images"].astype(np.float32))
        d_out, dv_out = torch.from_numpy(z["D_out"]), torch.from_numpy(z["D_V_out"])
    with torch.no_grad():
        assert _rel(d(frames[:, 0]), d_out) < 1e-4
        assert _rel(d_v(frames), dv_out) < 1e-4
    # The authors' folder works directly too.
    d2, d_v2 = load_discriminators(authors_dir)
    assert same_state(d2.state_dict(), d.state_dict()) and same_state(d_v2.state_dict(), d_v.state_dict())


def test_wrong_network_is_named(authors_dir):
    with pytest.raises(CheckpointError, match=r"is not a BDMM generator checkpoint: it holds a BDMM spatial discr"):
        load_generator(authors_dir / "latest_net_D.pth")
    result = runner.invoke(app, ["weights", "import", str(authors_dir / "latest_net_D_V.pth"),
                                 "--kind", "generator", "-o", "unused"])
    assert result.exit_code == 1 and "holds a BDMM temporal discriminator" in result.output


def test_missing_unexpected_and_misshaped_keys_are_named(fixture_dir, tmp_path):
    sd = authors_state_dict(fixture_dir, "D")
    sd.pop("conv.weight_orig")
    sd["block0.extra.weight"] = torch.zeros(3)
    sd["block0.model.1.bias"] = torch.zeros(7)
    torch.save(sd, tmp_path / "bad_D.pth")
    with pytest.raises(CheckpointError) as err:
        read_checkpoint(tmp_path / "bad_D.pth")
    msg = str(err.value)
    assert "1 missing: conv.weight_orig" in msg and "1 unexpected: block0.extra.weight" in msg
    assert "misshaped: block0.model.1.bias" in msg and "\n" not in msg


def test_truncated_checkpoint_is_a_clear_error(authors_dir, tmp_path):
    data = (authors_dir / "latest_net_D.pth").read_bytes()
    (tmp_path / "cut.pth").write_bytes(data[: len(data) // 2])
    out = tmp_path / "out"
    result = runner.invoke(app, ["weights", "import", str(tmp_path / "cut.pth"), "-o", str(out)])
    assert result.exit_code == 1
    assert "truncated or corrupt" in result.output and not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["cut.pth"]  # no partial output left behind


def test_not_a_bdmm_checkpoint(tmp_path):
    torch.save({"encoder.weight": torch.zeros(2, 2)}, tmp_path / "other.pth")
    with pytest.raises(CheckpointError, match="not a BDMM generator, discriminator or SPIN"):
        load_generator(tmp_path / "other.pth")
    torch.save([1, 2, 3], tmp_path / "list.pth")
    with pytest.raises(CheckpointError, match="not a state dict"):
        read_checkpoint(tmp_path / "list.pth")
    with pytest.raises(InputError, match="not found"):
        load_generator(tmp_path / "missing.pth")
    with pytest.raises(InputError, match="neither an existing file or folder nor a registry name.*generator-fashionvideo"):
        load_generator("no-such-weights")


class _Payload:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_pickled_code_is_never_run(tmp_path):
    marker = tmp_path / "pwned"
    torch.save({"w": torch.zeros(1), "x": _Payload(str(marker))}, tmp_path / "evil.pth")
    with pytest.raises(CheckpointError, match="weights_only"):
        read_checkpoint(tmp_path / "evil.pth")
    assert not marker.exists()


def _spin_state_dict() -> dict[str, torch.Tensor]:
    """Every tensor of SPIN's documented layout, each filled with a distinct constant (stored
    as an expanded scalar, so the checkpoint files stay small)."""
    return {k: torch.tensor(7) if k.endswith("num_batches_tracked") else torch.tensor(0.001 * i).expand(shape)
            for i, (k, shape) in enumerate(spin_expected_shapes().items())}


def test_spin_layout_matches_torchvision_resnet50():
    import torchvision

    with torch.device("meta"):
        trunk = torchvision.models.resnet50(weights=None).state_dict()
    want = {k: tuple(v.shape) for k, v in trunk.items() if not k.startswith("fc.")}
    got = spin_expected_shapes()
    assert {k: got[k] for k in want} == want
    assert sorted(set(got) - set(want)) == sorted(
        [f"{n}.{p}" for n in ("fc1", "fc2", "decpose", "decshape", "deccam") for p in ("weight", "bias")]
        + ["init_cam", "init_pose", "init_shape"])
    assert got["fc1.weight"] == (1024, 2048 + 144 + 10 + 3)
    from bdmm_cli.pose import spin_state_dict_keys

    assert sorted(got) == sorted(spin_state_dict_keys())  # the pose package's HMR agrees


def test_spin_checkpoints_import(tmp_path):
    sd = _spin_state_dict()
    assert len(sd) == 318 + 3 + 10  # ResNet-50 (320 entries) without fc; init_* buffers; 5 linear layers
    # SPIN's model_checkpoint.pt: a training checkpoint with the model under "model", written
    # by PyTorch 1.1 (the legacy, non-zip serialization), with a numpy scalar in it.
    torch.save({"model": sd, "optimizer": {"state": {}, "param_groups": [{"lr": 5e-5}]}, "epoch": 3,
                "total_step_count": np.int64(1000)}, tmp_path / "model_checkpoint.pt",
               _use_new_zipfile_serialization=False)
    result = runner.invoke(app, ["weights", "import", str(tmp_path / "model_checkpoint.pt"), "-o", str(tmp_path / "spin")])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "spin" / "config.json").read_text())["kind"] == "spin"
    assert same_state(read_checkpoint(tmp_path / "spin").state_dict, sd)
    # BDMM's spin_ckpt.pth: the flat state dict, possibly without BatchNorm counters.
    flat = {k: v for k, v in sd.items() if not k.endswith("num_batches_tracked")}
    torch.save(flat, tmp_path / "spin_ckpt.pth")
    ckpt = read_checkpoint(tmp_path / "spin_ckpt.pth", kind="spin")
    assert all(torch.equal(ckpt.state_dict[k], v) for k, v in flat.items())
    # A SPIN state dict missing its regressor head, or with a wrong trunk, is named.
    partial = {k: v for k, v in flat.items() if not k.startswith("decpose")}
    with pytest.raises(CheckpointError, match="2 missing: decpose.weight, decpose.bias"):
        check_spin_state_dict(partial, "spin_ckpt.pth")
    wrong = dict(flat, **{"fc1.weight": torch.zeros(1024, 2048)})
    # The pose package's HMR module loads it (the same layout, checked by its own code).
    hmr = load_pose_regressor(tmp_path / "spin")
    assert same_state(hmr.state_dict(), sd)
    assert not hmr.training
    with pytest.raises(CheckpointError, match=r"misshaped: fc1.weight \(file \(1024, 2048\), expected \(1024, 2205\)\)"):
        check_spin_state_dict(wrong, "spin_ckpt.pth")


def test_import_never_overwrites_silently(authors_dir, tmp_path):
    out = tmp_path / "D"
    args = ["weights", "import", str(authors_dir / "latest_net_D.pth"), "-o", str(out)]
    assert runner.invoke(app, args).exit_code == 0
    before = sha256_file(out / "model.safetensors")
    (out / "model.safetensors").touch()
    result = runner.invoke(app, args)
    assert result.exit_code == 1 and "--force" in result.output
    assert sha256_file(out / "model.safetensors") == before
    assert runner.invoke(app, args + ["--force"]).exit_code == 0
    assert sha256_file(out / "model.safetensors") == before  # deterministic output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["D"]  # no temporary folders left


def test_export_writes_a_hub_ready_folder(authors_dir, tmp_path):
    # The authors' folder layout, with a tiny generator to keep the test small.
    src = tmp_path / "checkpoints"
    src.mkdir()
    g_sd = {k: v.clone() for k, v in tiny_generator(seed=5).state_dict().items()}
    torch.save(g_sd, src / "latest_net_G.pth")
    for name in ("latest_net_D.pth", "latest_net_D_V.pth"):
        (src / name).write_bytes((authors_dir / name).read_bytes())
    out = tmp_path / "release"
    result = runner.invoke(app, ["weights", "export", str(src), "-o", str(out), "--dataset", "fashionvideo"])
    assert result.exit_code == 0, result.output
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert files == ["README.md", "fashionvideo/discriminator/config.json", "fashionvideo/discriminator/model.safetensors",
                     "fashionvideo/generator/config.json", "fashionvideo/generator/model.safetensors",
                     "fashionvideo/temporal_discriminator/config.json",
                     "fashionvideo/temporal_discriminator/model.safetensors", "registry-snippet.toml"]
    card = (out / "README.md").read_text()
    assert card.startswith("---\nlicense: other")
    for number in ("0.918", "24.07", "0.0302", "14.08", "0.0478", "148.3"):
        assert number in card
    assert "no license" in card and "latest_net_G.pth" in card
    snippet = tomllib.loads((out / "registry-snippet.toml").read_text())["models"]
    for name, sub in (("generator-fashionvideo", "generator"), ("discriminator-fashionvideo", "discriminator"),
                      ("temporal-discriminator-fashionvideo", "temporal_discriminator")):
        weights = out / "fashionvideo" / sub / "model.safetensors"
        assert snippet[name]["sha256"] == sha256_file(weights) and snippet[name]["size"] == weights.stat().st_size
        assert snippet[name]["filename"] == f"fashionvideo/{sub}/model.safetensors"
    g = load_generator(out / "fashionvideo")
    assert g.config.ngf == 8 and same_state(g.state_dict(), g_sd)
    assert json.loads((out / "fashionvideo/generator/config.json").read_text())["provenance"]["source_sha256"] == \
        sha256_file(src / "latest_net_G.pth")
    # Refuses to replace an existing release without --force.
    again = runner.invoke(app, ["weights", "export", str(src), "-o", str(out)])
    assert again.exit_code == 1 and "--force" in again.output


def test_no_code_path_unpickles_unsafely():
    """Grep-level: every torch.load in bdmm_cli passes weights_only=True; no pickle.load,
    no np.load(allow_pickle=True)."""
    root = Path(__file__).resolve().parents[1] / "bdmm_cli"
    offenders = []
    for path in root.rglob("*.py"):
        text = path.read_text()
        for m in re.finditer(r"\btorch\.load\(", text):
            depth, i = 1, m.end()
            while depth and i < len(text):
                depth += {"(": 1, ")": -1}.get(text[i], 0)
                i += 1
            if "weights_only=True" not in text[m.end():i]:
                offenders.append(f"{path.relative_to(root)}: {text[m.start():i]}")
        for bad in (r"\bpickle\.loads?\(", r"allow_pickle\s*=\s*True", r"weights_only\s*=\s*False"):
            offenders += [f"{path.relative_to(root)}: {bad}" for _ in re.finditer(bad, text)]
    assert offenders == []


def test_names_a_path_decides_file_or_registry_for_loader_and_animate_checks(tmp_path, monkeypatch):
    """One rule, shared by `hub.load_generator` and `bdmm animate`'s input check: a weights
    argument that exists, holds a separator or ends like a checkpoint is a path (``~``
    expanded); anything else is a registry name."""
    from bdmm_cli.hub.resolve import names_a_path

    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "G.pth").write_bytes(b"x")
    (tmp_path / "folder").mkdir()
    assert names_a_path("~/G.pth") and names_a_path("models/G") and names_a_path("G.safetensors")
    monkeypatch.chdir(tmp_path)
    assert names_a_path("folder")  # an existing bare name is the folder, not a registry entry
    assert not names_a_path("fashionvideo") and not names_a_path("generator-iper")
