"""Shared test configuration.

Paths to the ground truth, and a small environment hygiene: tests never touch the user's
caches (HF_HOME, the bdmm data directory) and never reach a network.

The parity fixture (recorded forward passes of the authors' networks) is kept in the
repository, ``tests/data/official_bdmm``, a copy of ``../shared/fixtures/official_bdmm``, so a
plain clone runs the parity tests. ``BDMM_FIXTURE_DIR`` points the tests at another copy;
``tests/test_fixture_copy.py`` checks the repository copy against ``../shared`` where it is.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("BDMM_SHARED", REPO.parent / "shared"))
SHARED_FIXTURE_DIR = SHARED / "fixtures" / "official_bdmm"
FIXTURE_DIR = Path(os.environ.get("BDMM_FIXTURE_DIR", REPO / "tests" / "data" / "official_bdmm"))


def pytest_collection_modifyitems(config, items):
    """`@pytest.mark.mediapipe`: the test poses with MediaPipe, an optional extra (bdmm[mediapipe],
    Python 3.10-3.12); it skips where MediaPipe is not installed (Python 3.13+)."""
    import importlib.util

    if importlib.util.find_spec("mediapipe") is not None:
        return
    skip = pytest.mark.skip(reason="needs MediaPipe (the optional bdmm[mediapipe] extra, Python 3.10-3.12)")
    for item in items:
        if "mediapipe" in item.keywords:
            item.add_marker(skip)


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
    # Part of the repository: a missing copy is a broken checkout, not a reason to skip.
    for name in ("case_a.npz", "spec.json", "trace_128.npz", "weights.py"):
        if not (FIXTURE_DIR / name).is_file():
            raise FileNotFoundError(f"parity fixture file missing: {FIXTURE_DIR / name}")
    return FIXTURE_DIR
