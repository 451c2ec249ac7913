"""The repository's copy of the parity fixture is byte-identical to ../shared's, where that exists."""

from __future__ import annotations

import hashlib

import pytest

from conftest import FIXTURE_DIR, SHARED_FIXTURE_DIR


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("name", ["case_a.npz", "spec.json", "trace_128.npz", "weights.py", "README.md"])
def test_repository_fixture_equals_shared(name):
    if not SHARED_FIXTURE_DIR.is_dir():
        pytest.skip(f"no ../shared beside this clone ({SHARED_FIXTURE_DIR}); nothing to compare with")
    assert _digest(FIXTURE_DIR / name) == _digest(SHARED_FIXTURE_DIR / name)
