"""Downloads through the real huggingface_hub / pooch code, against a local Hub stand-in.

The server (tests/hub_server.py) speaks the Hub's file protocol on 127.0.0.1; HF_ENDPOINT
points at it. Nothing is mocked: hf_hub_download, the HF cache, pooch and the checksums run.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from bdmm_cli.cli import app
from bdmm_cli.errors import CheckpointError, MissingResourceError
from bdmm_cli.hub import fetch
from bdmm_cli.model.checkpoint import load_generator, save_generator
from bdmm_cli.hub.hfenv import hf_cache_dir
from bdmm_cli.hub.registry import load_registry
from bdmm_cli.hub.verify import ChecksumError, UnverifiedError
from bdmm_cli.paths import cache_dir
from hub_server import LocalHub, local_hub  # noqa: F401  (fixture)
from weights_helpers import same_state, sha256, tiny_generator, write_registry

REPO = "test-org/bdmm"
FILE = "tiny/generator/model.safetensors"
runner = CliRunner()


@dataclass
class HubSetup:
    hub: LocalHub
    content: bytes
    commit: str
    registry: Path
    state: dict


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory) -> tuple[bytes, dict]:
    """model.safetensors bytes of a tiny generator, and its state dict."""
    g = tiny_generator(seed=3)
    folder = save_generator(g, tmp_path_factory.mktemp("tiny") / "generator")
    return (folder / "model.safetensors").read_bytes(), {k: v.clone() for k, v in g.state_dict().items()}


@pytest.fixture
def hub(local_hub, tiny_weights, tmp_path, monkeypatch) -> HubSetup:  # noqa: F811
    content, state = tiny_weights
    commit = local_hub.add_repo(REPO, {FILE: content, "README.md": b"# tiny\n"})
    registry = write_registry(tmp_path / "registry.toml", repo=REPO, revision=commit, entries={
        "generator-tiny": {"kind": "generator", "source": "project", "filename": FILE,
                           "sha256": sha256(content), "size": len(content)},
    })
    monkeypatch.setenv("BDMM_REGISTRY", str(registry))
    for var in ("HF_HUB_OFFLINE", "BDMM_OFFLINE", "BDMM_HUB_REPO", "BDMM_HUB_REVISION", "BDMM_TRUST_UNVERIFIED", "HF_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    return HubSetup(local_hub, content, commit, registry, state)


def _gets(hub: LocalHub) -> int:
    return hub.count("GET", "/resolve/") + hub.count("GET", "/lfs/")


def _resolve_requests(hub: LocalHub) -> int:
    return hub.count(None, "/resolve/") + hub.count(None, "/lfs/")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- Hub entries ----------------------------------------------------------------------------------


def test_first_download_lands_in_the_hf_cache_and_loads(hub):
    path = fetch("generator-tiny")
    assert path.read_bytes() == hub.content
    assert hf_cache_dir() in path.parents  # the standard HF cache under HF_HOME
    assert f"models--{REPO.replace('/', '--')}" in str(path) and hub.commit in str(path)
    assert _gets(hub.hub) == 1
    g = load_generator("generator-tiny")
    assert same_state(g.state_dict(), hub.state)


def test_download_shows_a_rich_progress_bar(hub, monkeypatch, capsys):
    monkeypatch.setenv("BDMM_PROGRESS", "1")  # stderr is not a terminal under pytest
    fetch("generator-tiny")
    err = capsys.readouterr().err
    mb = f"{len(hub.content) / 1e6:.1f}"
    assert err.startswith("generator-tiny ") and f"{mb}/{mb} MB" in err


def test_cache_hit_sends_no_request(hub):
    first = fetch("generator-tiny")
    before = _resolve_requests(hub.hub)
    assert fetch("generator-tiny") == first
    load_generator("generator-tiny")
    assert _resolve_requests(hub.hub) == before


def test_lfs_redirect_is_followed(tiny_weights, tmp_path, monkeypatch):
    content, state = tiny_weights
    with LocalHub(redirect=True) as server:
        monkeypatch.setenv("HF_ENDPOINT", server.endpoint)
        commit = server.add_repo(REPO, {FILE: content})
        reg = write_registry(tmp_path / "r.toml", repo=REPO, revision=commit, entries={
            "generator-tiny": {"kind": "generator", "source": "project", "filename": FILE, "sha256": sha256(content)}})
        path = fetch("generator-tiny", registry=load_registry(reg))
        assert path.read_bytes() == content
        assert server.count("GET", "/lfs/") == 1 and server.count("GET", "/resolve/") == 0


def test_offline_with_warm_cache_works_without_server(hub, monkeypatch):
    path = fetch("generator-tiny")
    hub.hub.stop()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert fetch("generator-tiny") == path
    assert same_state(load_generator("generator-tiny").state_dict(), hub.state)


def test_tag_revision_resolves_online_and_works_offline(hub, tmp_path, monkeypatch):
    hub.hub.add_repo("test-org/tagged", {FILE: hub.content}, tag="v1")
    reg = load_registry(write_registry(tmp_path / "r.toml", repo="test-org/tagged", revision="v1", entries={
        "generator-tiny": {"kind": "generator", "source": "project", "filename": FILE, "sha256": sha256(hub.content)}}))
    path = fetch("generator-tiny", registry=reg)
    assert hub.hub.count("GET", "/test-org/tagged/resolve/") == 1
    hub.hub.stop()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert fetch("generator-tiny", registry=reg) == path


def test_offline_with_cold_cache_names_the_file_and_the_fix(hub, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(MissingResourceError) as err:
        fetch("generator-tiny")
    msg = str(err.value)
    assert FILE in msg and "bdmm weights download generator-tiny" in msg and "offline" in msg
    assert "\n" not in msg
    assert _resolve_requests(hub.hub) == 0


def test_tampered_download_is_rejected_deleted_and_never_used(hub):
    tampered = bytearray(hub.content)
    tampered[-100] ^= 0xFF  # same size, one byte changed in the tensor data
    hub.hub.replace_file(REPO, FILE, bytes(tampered))
    with pytest.raises(ChecksumError, match="sha256 mismatch"):
        fetch("generator-tiny")
    with pytest.raises(CheckpointError):
        load_generator("generator-tiny")
    leftovers = [p for p in hf_cache_dir().rglob("*") if p.is_file() and p.read_bytes() == bytes(tampered)]
    assert leftovers == []
    # Once the server serves the right file again, it is downloaded again and used.
    hub.hub.replace_file(REPO, FILE, hub.content)
    assert fetch("generator-tiny").read_bytes() == hub.content


def test_cached_file_modified_after_verification_is_caught(hub):
    path = fetch("generator-tiny")
    blob = path.resolve()
    data = bytearray(blob.read_bytes())
    data[-50] ^= 0x01
    blob.chmod(0o644)
    blob.write_bytes(bytes(data))
    with pytest.raises(ChecksumError):
        fetch("generator-tiny")
    assert not blob.exists() and not path.exists()


def test_server_down_is_a_clear_one_line_error(hub, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{_free_port()}")
    with pytest.raises(MissingResourceError) as err:
        fetch("generator-tiny")
    msg = str(err.value)
    assert "cannot reach the server" in msg and "generator-tiny" in msg and "\n" not in msg
    result = runner.invoke(app, ["weights", "download", "generator-tiny"])
    assert result.exit_code == 1
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and "cannot reach" in lines[0]


def test_missing_file_and_missing_repo_are_named(hub, tmp_path):
    reg = write_registry(tmp_path / "r.toml", repo=REPO, revision=hub.commit, entries={
        "nope": {"kind": "generator", "source": "project", "filename": "no/such.safetensors", "sha256": "0" * 64}})
    with pytest.raises(MissingResourceError, match="file not found"):
        fetch("nope", registry=load_registry(reg))
    with pytest.raises(MissingResourceError, match="repository not found"):
        fetch("generator-tiny", repo="nobody/nothing")


def test_private_repo_uses_the_token(hub, monkeypatch):
    hub.hub.add_repo("test-org/private", {FILE: hub.content}, token="hf_secret")
    with pytest.raises(MissingResourceError, match="HF_TOKEN"):
        fetch("generator-tiny", repo="test-org/private")
    monkeypatch.setenv("HF_TOKEN", "hf_secret")
    assert fetch("generator-tiny", repo="test-org/private").read_bytes() == hub.content
    auth = [r.headers.get("authorization") for r in hub.hub.requests if "/private/resolve/" in r.path]
    assert "Bearer hf_secret" in auth


def test_repo_override_by_environment_reads_a_mirror_at_main(hub, monkeypatch):
    hub.hub.add_repo("mirror/bdmm", {FILE: hub.content})
    monkeypatch.setenv("BDMM_HUB_REPO", "mirror/bdmm")
    assert fetch("generator-tiny").read_bytes() == hub.content
    assert hub.hub.count("GET", "/mirror/bdmm/resolve/main/") == 1
    assert hub.hub.count(None, f"/{REPO}/") == 0


def test_unpublished_entry_says_so_without_network(hub, tmp_path):
    reg = write_registry(tmp_path / "r.toml", repo=REPO, revision="v1", entries={
        "generator-x": {"kind": "generator", "source": "project", "filename": FILE, "published": False}})
    with pytest.raises(MissingResourceError, match="not published"):
        fetch("generator-x", registry=load_registry(reg))
    assert _resolve_requests(hub.hub) == 0


def test_entry_without_checksum_needs_explicit_trust_and_is_then_pinned(hub, tmp_path):
    reg = load_registry(write_registry(tmp_path / "r.toml", repo=REPO, revision=hub.commit, entries={
        "generator-tiny": {"kind": "generator", "source": "project", "filename": FILE}}))
    with pytest.raises(UnverifiedError, match="--trust-unverified") as err:
        fetch("generator-tiny", registry=reg)
    assert sha256(hub.content) in str(err.value)
    path = fetch("generator-tiny", registry=reg, trust_unverified=True)
    assert path.read_bytes() == hub.content
    # Pinned: later changes are caught even though the registry has no digest.
    blob = path.resolve()
    blob.chmod(0o644)
    blob.write_bytes(hub.content[:-1] + bytes([hub.content[-1] ^ 1]))
    with pytest.raises(ChecksumError, match="changed since it was first verified"):
        fetch("generator-tiny", registry=reg, trust_unverified=True)


def test_cli_download_list_verify(hub):
    result = runner.invoke(app, ["weights", "download", "generator-tiny"])
    assert result.exit_code == 0, result.output
    assert "generator-tiny:" in result.output
    result = runner.invoke(app, ["weights", "list"])
    assert result.exit_code == 0 and "generator-tiny" in result.output and "yes" in result.output
    result = runner.invoke(app, ["weights", "verify", "generator-tiny"])
    assert result.exit_code == 0 and sha256(hub.content) in result.output.replace("\n", "")


# --- URL entries (pooch), served by the same local server -----------------------------------------


def _url_registry(tmp_path: Path, url: str, **fields) -> object:
    return load_registry(write_registry(tmp_path / "r.toml", repo=REPO, revision="main", entries={
        "feat": {"kind": "vgg19", "source": "url", "url": url, "filename": "feat-weights.pth", **fields}}))


def test_url_entry_downloads_verifies_and_caches(hub, tmp_path):
    data = b"feature network weights" * 1000
    url = hub.hub.add_static("feat.pth", data)
    reg = _url_registry(tmp_path, url, sha256=sha256(data), size=len(data))
    path = fetch("feat", registry=reg)
    assert path.read_bytes() == data
    assert hub.hub.count("GET", "/files/") == 1
    assert fetch("feat", registry=reg) == path
    assert hub.hub.count(None, "/files/") == 1


def test_url_entry_offline_with_warm_cache(hub, tmp_path, monkeypatch):
    data = b"weights" * 100
    reg = _url_registry(tmp_path, hub.hub.add_static("feat.pth", data), sha256=sha256(data))
    path = fetch("feat", registry=reg)
    hub.hub.stop()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert fetch("feat", registry=reg) == path and path.read_bytes() == data


def test_cli_verify_reports_and_deletes_a_corrupted_cache(hub):
    path = fetch("generator-tiny")
    blob = path.resolve()
    blob.chmod(0o644)
    blob.write_bytes(b"\0" * len(hub.content))
    result = runner.invoke(app, ["weights", "verify", "generator-tiny"])
    assert result.exit_code == 1 and "FAIL" in result.output and "sha256 mismatch" in result.output
    assert not blob.exists()


def test_url_entry_tampered_is_rejected_and_not_kept(hub, tmp_path):
    data = b"genuine" * 500
    url = hub.hub.add_static("feat.pth", b"tampered" * 500)
    reg = _url_registry(tmp_path, url, sha256=sha256(data))
    with pytest.raises(ChecksumError, match="sha256 mismatch"):
        fetch("feat", registry=reg)
    assert not [p for p in cache_dir().rglob("*") if p.is_file() and p.name != "verified.json"]


def test_url_entry_with_name_prefix(hub, tmp_path):
    data = b"torchvision-style weights"
    url = hub.hub.add_static("feat.pth", data)
    assert fetch("feat", registry=_url_registry(tmp_path, url, sha256_prefix=sha256(data)[:8])).read_bytes() == data
    bad = "0" * 8 if not sha256(data).startswith("0" * 8) else "1" * 8
    (tmp_path / "r2").mkdir()
    hub.hub.add_static("feat2.pth", data)
    reg = load_registry(write_registry(tmp_path / "r2" / "r.toml", repo=REPO, revision="main", entries={
        "feat2": {"kind": "vgg19", "source": "url", "url": f"{hub.hub.endpoint}/files/feat2.pth",
                  "filename": "feat2.pth", "sha256_prefix": bad}}))
    with pytest.raises(ChecksumError, match="does not start with"):
        fetch("feat2", registry=reg)
    assert not list(cache_dir().rglob("feat2.pth"))


def test_url_entry_offline_cold_names_the_url(hub, tmp_path, monkeypatch):
    url = hub.hub.add_static("feat.pth", b"x" * 10)
    reg = _url_registry(tmp_path, url, sha256=sha256(b"x" * 10))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(MissingResourceError, match="offline") as err:
        fetch("feat", registry=reg)
    assert url in str(err.value) and hub.hub.count(None, "/files/") == 0


def test_package_entry_is_the_installed_lpips_file():
    import importlib.util

    if importlib.util.find_spec("lpips") is None:
        pytest.skip("lpips is not installed")
    path = fetch("lpips-alex")
    assert path.name == "alex.pth" and "lpips" in path.parts
    sd = torch.load(path, map_location="cpu", weights_only=True)
    assert sorted(sd) == [f"lin{i}.model.1.weight" for i in range(5)]


def test_offline_flag_frozen_at_import_does_not_stick(hub, monkeypatch):
    """huggingface_hub freezes HF_HUB_OFFLINE at import; bdmm follows the environment now."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)  # as if imported while offline
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    path = fetch("generator-tiny")
    assert path.is_file()
