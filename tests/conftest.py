"""Shared test configuration.

Paths to the ground truth in ../shared, and a small environment hygiene: tests never
touch the user's caches (HF_HOME, the bdmm data directory) and never reach a network.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("BDMM_SHARED", REPO.parent / "shared"))
FIXTURE_DIR = SHARED / "fixtures" / "official_bdmm"


@pytest.fixture(autouse=True)
def _isolated_dirs(tmp_path_factory, monkeypatch):
    """Every test gets its own HF cache and bdmm data/cache directories."""
    root = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HF_HOME", str(root / "hf"))
    monkeypatch.setenv("BDMM_HOME", str(root / "bdmm"))
    monkeypatch.setenv("BDMM_CACHE_DIR", str(root / "bdmm-cache"))
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    yield


@pytest.fixture(scope="session")
def fixture_dir() -> Path:
    if not FIXTURE_DIR.is_dir():
        pytest.skip(f"official fixture not found at {FIXTURE_DIR}")
    return FIXTURE_DIR
