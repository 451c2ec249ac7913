"""`bdmm setup --eval`: the feature networks of `bdmm eval`, from a local HTTP server standing in
for their download sites, verified (sha256, torch.hub prefix, or explicitly trusted) with their
licenses printed first; then `bdmm eval` uses them with no weight options."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from bdmm_cli.cli import app
from bdmm_cli.metrics.networks import EVAL_NETWORKS
from hub_server import local_hub  # noqa: F401 - fixture
from metrics_helpers import save_tiny_i3d, smooth_video, write_frames

runner = CliRunner()
KINDS = {"inception-v3": "inception_torchvision", "inception-fid": "inception_fid", "alexnet": "alexnet",
         "lpips-alex": "lpips_linear", "i3d": "i3d"}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """The five files. Setup only fetches and verifies them (loading each network is tested in
    test_metrics_*), so the big ones are stand-in bytes; the I3D detector is a real (tiny)
    TorchScript file, used by `bdmm eval` afterwards."""
    root = tmp_path_factory.mktemp("nets")
    rng = np.random.default_rng(0)
    out = {}
    for name, fname in (("inception-v3", "inception_v3_google.pth"), ("inception-fid", "pt_inception.pth"),
                        ("alexnet", "alexnet-owt.pth"), ("lpips-alex", "alex.pth")):
        out[name] = root / fname
        out[name].write_bytes(rng.bytes(50_000))
    torch.manual_seed(0)
    out["i3d"] = save_tiny_i3d(root / "i3d_torchscript.pt")
    return out


def _registry(tmp_path, hub, files, *, bad_sha: bool = False):
    """A registry whose five feature networks are served by `hub`: AlexNet and LPIPS pinned by
    sha256, the Inceptions by a torch.hub name prefix, I3D by nothing (as the real one)."""
    text = 'schema = 1\n[hub]\nrepo = "x/y"\nrevision = "v1"\n'
    for name, path in files.items():
        data = path.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        url = hub.add_static(f"dl/{path.name}", data)
        check = ""
        if name in ("alexnet", "lpips-alex"):
            check = f'sha256 = "{"0" * 64 if bad_sha and name == "alexnet" else digest}"\n'
        elif name.startswith("inception"):
            check = f'sha256_prefix = "{digest[:8]}"\n'
        text += (f'\n[models.{name}]\nkind = "{KINDS[name]}"\nsource = "url"\nurl = "{url}"\n'
                 f'filename = "{path.name}"\n{check}license = "license of {name}"\n')
    reg = tmp_path / "registry.toml"
    reg.write_text(text)
    return reg


def test_setup_eval_fetches_and_verifies_every_feature_network(files, local_hub, tmp_path, monkeypatch):
    monkeypatch.setenv("BDMM_REGISTRY", str(_registry(tmp_path, local_hub, files)))
    res = runner.invoke(app, ["setup", "--eval"])
    assert res.exit_code == 1 and "--accept-licenses" in res.output and local_hub.count() == 0
    for name in EVAL_NETWORKS:
        assert f"license of {name}" in res.output
    # the I3D detector has no checksum: refused unless trusted explicitly
    res = runner.invoke(app, ["setup", "--eval", "--accept-licenses"])
    assert res.exit_code != 0 and "i3d" in res.output and "error:" in res.output
    res = runner.invoke(app, ["setup", "--eval", "--accept-licenses", "--trust-unverified"])
    assert res.exit_code == 0, res.output
    for name in EVAL_NETWORKS:
        assert name in res.output
        assert hashlib.sha256(files[name].read_bytes()).hexdigest()[:16] in res.output
    n = local_hub.count()
    again = runner.invoke(app, ["setup", "--eval"])  # all cached: no licenses to accept, nothing fetched
    assert again.exit_code == 0 and local_hub.count() == n, again.output

    # bdmm eval now needs no weight options: FVD loads the installed (pinned) detector
    rng = np.random.default_rng(0)
    write_frames(tmp_path / "p", smooth_video(rng, 16, size=32))
    write_frames(tmp_path / "g", smooth_video(rng, 16, size=32))
    out = tmp_path / "s.json"
    res = runner.invoke(app, ["eval", "-m", "fvd", "--protocol", "standard", "--pred", str(tmp_path / "p"),
                              "--gt", str(tmp_path / "g"), "--json", str(out)])
    assert res.exit_code == 0, res.output
    nets = json.loads(out.read_text())["meta"]["networks"]
    assert nets["i3d"]["source"] == "i3d" and local_hub.count() == n


def test_setup_eval_refuses_a_file_whose_sha256_differs(files, local_hub, tmp_path, monkeypatch):
    monkeypatch.setenv("BDMM_REGISTRY", str(_registry(tmp_path, local_hub, files, bad_sha=True)))
    res = runner.invoke(app, ["setup", "--eval", "--accept-licenses", "--trust-unverified"])
    assert res.exit_code != 0 and "sha256" in res.output and "alexnet" in res.output
    assert "Traceback" not in res.output
