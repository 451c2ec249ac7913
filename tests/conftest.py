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
import shutil
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


def _passed_so_far(session, failed_before: int) -> bool:
    return session.testsfailed == failed_before


@pytest.fixture(autouse=True)
def _isolated_dirs(request, tmp_path_factory, monkeypatch):
    """Every test gets its own HF cache and bdmm data/cache directories, removed after the test
    when it passed (kept for a look when it failed)."""
    failed_before = request.session.testsfailed
    root = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HF_HOME", str(root / "hf"))
    monkeypatch.setenv("BDMM_HOME", str(root / "bdmm"))
    monkeypatch.setenv("BDMM_CACHE_DIR", str(root / "bdmm-cache"))
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    yield
    if _passed_so_far(request.session, failed_before):
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module", autouse=True)
def _module_dirs_removed(request, tmp_path_factory):
    """What a module's tests and fixtures wrote under pytest's temporary folder is removed when
    the module ends, unless one of its tests failed. Many tests write a full-size SPIN or
    generator checkpoint (~100 MB); kept for the whole run they took over 7 GB per run and filled
    CI's disk. (Passed tests' ``tmp_path`` goes at once: ``tmp_path_retention_policy``.)"""
    failed_before = request.session.testsfailed
    base = tmp_path_factory.getbasetemp()
    before = set(base.iterdir())
    yield
    if _passed_so_far(request.session, failed_before):
        for path in set(base.iterdir()) - before:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def fixture_dir() -> Path:
    # Part of the repository: a missing copy is a broken checkout, not a reason to skip.
    for name in ("case_a.npz", "spec.json", "trace_128.npz", "weights.py"):
        if not (FIXTURE_DIR / name).is_file():
            raise FileNotFoundError(f"parity fixture file missing: {FIXTURE_DIR / name}")
    return FIXTURE_DIR
