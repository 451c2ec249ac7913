"""The registry file itself: it parses, every entry is complete, checksums are consistent."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from bdmm_cli.errors import InputError, MissingResourceError
from bdmm_cli.hub.registry import DEFAULT_REGISTRY, KINDS, load_registry
from weights_helpers import write_registry

NEEDED_KINDS = {"generator", "discriminator", "temporal_discriminator", "spin", "vgg19", "alexnet",
                "lpips_linear", "inception_torchvision", "inception_fid", "i3d"}


def test_registry_covers_every_model_the_tool_uses():
    reg = load_registry(DEFAULT_REGISTRY)
    kinds = {e.kind for e in reg.entries.values()}
    assert NEEDED_KINDS <= kinds <= set(KINDS)
    for ds in ("fashionvideo", "iper"):
        for kind in ("generator", "discriminator", "temporal-discriminator"):
            entry = reg.get(f"{kind}-{ds}")
            assert entry.source == "project" and entry.dataset == ds
    assert reg.get("fashionvideo").name == "generator-fashionvideo"  # alias


def test_every_entry_states_license_provenance_and_an_honest_checksum():
    reg = load_registry(DEFAULT_REGISTRY)
    for entry in reg.entries.values():
        assert entry.license and entry.provenance, entry.name
        if entry.source == "project" and not entry.published:
            assert entry.sha256 == "" and entry.size == 0, entry.name  # nothing to measure yet
        if entry.sha256_prefix:
            # torch.hub convention: the prefix is part of the file name in the URL
            assert f"-{entry.sha256_prefix}." in entry.url, entry.name
        if entry.source == "url":
            assert entry.url.startswith("https://"), entry.name
    assert reg.hub.repo == "bdmm-project/bdmm"


def test_lpips_entry_matches_the_installed_package_file():
    import importlib.util

    spec = importlib.util.find_spec("lpips")  # located, not imported (importing it is slow)
    if spec is None:
        pytest.skip("lpips is not installed")
    entry = load_registry(DEFAULT_REGISTRY).get("lpips-alex")
    path = Path(spec.origin).parent / entry.package_path
    data = path.read_bytes()
    assert hashlib.sha256(data).hexdigest() == entry.sha256 and len(data) == entry.size


def test_torchvision_urls_match_torchvision():
    from torchvision.models import AlexNet_Weights, Inception_V3_Weights, VGG19_Weights

    reg = load_registry(DEFAULT_REGISTRY)
    assert reg.get("vgg19").url == VGG19_Weights.IMAGENET1K_V1.url
    assert reg.get("alexnet").url == AlexNet_Weights.IMAGENET1K_V1.url
    assert reg.get("inception-v3").url == Inception_V3_Weights.IMAGENET1K_V1.url
    assert reg.get("vgg19").size_mb == VGG19_Weights.IMAGENET1K_V1.meta["_file_size"]


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(MissingResourceError, match="known: .*vgg19"):
        load_registry(DEFAULT_REGISTRY).get("vgg20")


@pytest.mark.parametrize("entry, message", [
    ({"kind": "generator", "source": "ftp", "filename": "x"}, "source 'ftp'"),
    ({"kind": "gan", "source": "url", "url": "https://x", "filename": "x"}, "kind 'gan'"),
    ({"kind": "vgg19", "source": "url", "filename": "x"}, "lacks 'url'"),
    ({"kind": "vgg19", "source": "url", "url": "https://x", "filename": "x", "sha256": "abc"}, "64 lowercase hex"),
    ({"kind": "vgg19", "source": "url", "url": "https://x", "filename": "x", "checksum": "1"}, "unknown fields"),
])
def test_malformed_entries_are_input_errors(tmp_path, entry, message):
    path = write_registry(tmp_path / "r.toml", repo="a/b", revision="main", entries={"e": entry})
    with pytest.raises(InputError, match=re.escape(message)):
        load_registry(path)


def test_registry_file_errors(tmp_path, monkeypatch):
    (tmp_path / "bad.toml").write_text("schema = [")
    with pytest.raises(InputError, match="not valid TOML"):
        load_registry(tmp_path / "bad.toml")
    monkeypatch.setenv("BDMM_REGISTRY", str(tmp_path / "none.toml"))
    with pytest.raises(MissingResourceError, match="BDMM_REGISTRY"):
        load_registry()
