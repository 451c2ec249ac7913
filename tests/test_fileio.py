"""atomic_output: nothing partial is left, nothing existing is overwritten silently."""

from __future__ import annotations

import hashlib
import os

import pytest

from bdmm_cli.errors import InputError
from bdmm_cli.fileio import atomic_output, check_output_path, sha256_file


def test_success_renames(tmp_path):
    target = tmp_path / "a.bin"
    with atomic_output(target) as tmp:
        assert tmp.parent == tmp_path and tmp.suffix == ".bin" and tmp != target
        tmp.write_bytes(b"data")
    assert target.read_bytes() == b"data"
    assert os.listdir(tmp_path) == ["a.bin"]


def test_failure_leaves_nothing(tmp_path):
    target = tmp_path / "a.bin"
    with pytest.raises(RuntimeError):
        with atomic_output(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("boom")
    assert os.listdir(tmp_path) == []


def test_refuses_overwrite_unless_forced(tmp_path):
    target = tmp_path / "a.bin"
    target.write_bytes(b"old")
    with pytest.raises(InputError, match="already exists"):
        with atomic_output(target):
            pass
    with atomic_output(target, force=True) as tmp:
        tmp.write_bytes(b"new")
    assert target.read_bytes() == b"new"


def test_bad_destinations(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        check_output_path(tmp_path / "nope" / "a.mp4", force=False)
    with pytest.raises(InputError, match="is a directory"):
        check_output_path(tmp_path, force=True)
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        if os.access(ro, os.W_OK):
            pytest.skip("running as a user that can write anywhere (root)")
        with pytest.raises(InputError, match="not writable"):
            check_output_path(ro / "a.mp4", force=False)
    finally:
        ro.chmod(0o700)


def test_empty_result_is_an_error(tmp_path):
    with pytest.raises(InputError, match="nothing was written"):
        with atomic_output(tmp_path / "a.bin"):
            pass
    assert os.listdir(tmp_path) == []


def test_sha256(tmp_path):
    p = tmp_path / "x"
    p.write_bytes(b"abc" * 1000)
    assert sha256_file(p, chunk=7) == hashlib.sha256(b"abc" * 1000).hexdigest()


def test_atomic_output_dir(tmp_path):
    from bdmm_cli.fileio import atomic_output_dir

    out = tmp_path / "out"
    with atomic_output_dir(out) as tmp:
        (tmp / "a.txt").write_text("new")
    assert (out / "a.txt").read_text() == "new"
    with pytest.raises(InputError, match="not empty"):
        with atomic_output_dir(out):
            pass
    with pytest.raises(RuntimeError):
        with atomic_output_dir(out, force=True) as tmp:
            (tmp / "b.txt").write_text("half")
            raise RuntimeError("boom")
    assert sorted(p.name for p in out.iterdir()) == ["a.txt"]  # untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no temporary left
    with atomic_output_dir(out, force=True) as tmp:
        (tmp / "b.txt").write_text("replaced")
    assert sorted(p.name for p in out.iterdir()) == ["b.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    with pytest.raises(InputError, match="does not exist"):
        with atomic_output_dir(tmp_path / "no" / "out"):
            pass
