"""The writer family under hostile conditions: umask, races between processes, killed writers.

Issue 16 rows 6 (modes), 7 (stale temporaries), 10 (two runs, same output), issue 13 item 3
(one memoised content hash, one module hash).
"""

from __future__ import annotations

import hashlib
import os
import signal
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from bdmm_cli.errors import InputError
from bdmm_cli.fileio import (
    FileLock,
    LockBusy,
    atomic_output,
    atomic_output_dir,
    atomic_write_text,
    content_hash,
    is_stale_temporary,
    module_hash,
    sweep_stale,
)

REPO = Path(__file__).resolve().parents[1]


def _child(script: str, *args: object) -> subprocess.Popen:
    """`python -c script args...` with this checkout importable, its stdout a text pipe."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-c", script, *map(str, args)], env=env, stdout=subprocess.PIPE, text=True)


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


@pytest.fixture
def umask027():
    old = os.umask(0o027)
    yield 0o027
    os.umask(old)


@pytest.mark.parametrize("mask", [0o022, 0o027, 0o002])
def test_files_and_folders_get_the_umask_mode(tmp_path, mask):
    old = os.umask(mask)
    try:
        with atomic_output(tmp_path / "a.bin") as tmp:
            tmp.write_bytes(b"x")
        with atomic_output_dir(tmp_path / "d") as tmp:
            (tmp / "f.txt").write_text("y")
        # what any other program would create under this umask
        (tmp_path / "ref.bin").write_bytes(b"x")
        (tmp_path / "refdir").mkdir()
    finally:
        os.umask(old)
    assert _mode(tmp_path / "a.bin") == _mode(tmp_path / "ref.bin") == 0o666 & ~mask
    assert _mode(tmp_path / "d") == _mode(tmp_path / "refdir") == 0o777 & ~mask


def test_force_does_not_narrow_the_mode(tmp_path):
    target = tmp_path / "out.mp4"
    target.write_bytes(b"old")
    target.chmod(0o644)
    old = os.umask(0o022)
    try:
        with atomic_output(target, force=True) as tmp:
            tmp.write_bytes(b"new")
    finally:
        os.umask(old)
    assert target.read_bytes() == b"new" and _mode(target) == 0o644


_WRITER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from bdmm_cli.errors import InputError
    from bdmm_cli.fileio import atomic_output
    out, tag, go = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
    try:
        with atomic_output(out) as tmp:
            tmp.write_text(tag)
            while not go.exists():   # both processes are now past the start-up check
                time.sleep(0.01)
        print("wrote", tag)
    except InputError as exc:
        print("error:", exc)
        sys.exit(1)
""")


def test_two_processes_same_output_never_both_write(tmp_path):
    out, go = tmp_path / "out.mp4", tmp_path / "go"
    procs = [_child(_WRITER, out, tag, go) for tag in ("A", "B")]
    deadline = time.time() + 60
    while time.time() < deadline and len(list(tmp_path.glob(".out.bdmm-*"))) < 2:
        time.sleep(0.02)  # both have their temporary file: both passed the existence check
    go.touch()
    results = [(p.wait(60), p.stdout.read()) for p in procs]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 1], results
    winner = [text for code, text in results if code == 0][0].split()[-1]
    assert out.read_text() == winner
    loser = [text for code, text in results if code == 1][0]
    assert "created by another process" in loser and "--force" in loser
    assert sorted(p.name for p in tmp_path.iterdir()) == ["go", "out.mp4"]


_KILLED = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from bdmm_cli.fileio import atomic_output, atomic_output_dir
    out = Path(sys.argv[1])
    with atomic_output(out) as tmp, atomic_output_dir(out.with_name("poses")) as d:
        tmp.write_text("half")
        (d / "x").write_text("half")
        print("ready", flush=True)
        time.sleep(600)
""")


def test_stale_temporaries_of_a_killed_writer_are_swept(tmp_path):
    out = tmp_path / "out.mp4"
    proc = _child(_KILLED, out)
    assert proc.stdout.readline().strip() == "ready"
    live = sorted(p.name for p in tmp_path.iterdir())
    assert len(live) == 2 and all(n.startswith((".out.", ".poses.")) for n in live)
    # while the writer lives, its temporaries are not stale: a sweep keeps them
    assert sweep_stale(tmp_path) == [] and len(list(tmp_path.iterdir())) == 2
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    foreign = tmp_path / ".out.part.mp4"  # somebody else's hidden file: never ours to delete
    foreign.write_text("not ours")
    with atomic_output(out) as tmp:
        tmp.write_text("done")
    with atomic_output_dir(tmp_path / "poses") as d:
        (d / "y").write_text("done")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".out.part.mp4", "out.mp4", "poses"]
    assert out.read_text() == "done"


def test_stale_rule_needs_a_dead_process_of_this_machine(tmp_path):
    with atomic_output(tmp_path / "a.txt") as tmp:
        assert not is_stale_temporary(tmp.name)  # this process
        tmp.write_text("x")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)
    from bdmm_cli.fileio import _HOST

    assert is_stale_temporary(f".a.bdmm-{_HOST}-{pid}-abc123.part.txt")
    other_host = "000000" if _HOST != "000000" else "111111"
    assert not is_stale_temporary(f".a.bdmm-{other_host}-{pid}-abc123.part.txt")
    assert not is_stale_temporary(".a.part.txt")


_LOCKER = textwrap.dedent("""
    import sys, time
    from bdmm_cli.fileio import FileLock
    with FileLock(sys.argv[1]):
        print("locked", flush=True)
        time.sleep(600)
""")


def test_file_lock_between_processes(tmp_path):
    lock_path = tmp_path / "run.lock"
    proc = _child(_LOCKER, lock_path)
    try:
        assert proc.stdout.readline().strip() == "locked"
        with pytest.raises(LockBusy) as info:
            FileLock(lock_path).acquire(blocking=False)
        assert info.value.holder == proc.pid
    finally:
        proc.kill()
        proc.wait()
    lock = FileLock(lock_path).acquire(blocking=False)  # released by the holder's death
    assert lock.held
    lock.release()


def test_content_hash_is_memoised_on_path_size_mtime(tmp_path):
    p = tmp_path / "video.mp4"
    p.write_bytes(b"a" * 1000)
    assert content_hash(p) == hashlib.sha256(b"a" * 1000).hexdigest()
    st = p.stat()
    p.write_bytes(b"b" * 1000)  # same size; restore the mtime: the memo answers
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert content_hash(p) == hashlib.sha256(b"a" * 1000).hexdigest()
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))  # touched: hashed again
    assert content_hash(p) == hashlib.sha256(b"b" * 1000).hexdigest()


def test_one_module_hash_everywhere():
    import torch

    from bdmm_cli.metrics.feature_cache import module_fingerprint
    from bdmm_cli.pipeline.animate import module_identity

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))
    assert module_identity(net) == module_fingerprint(net) == module_hash(net)
    before = module_hash(net)
    with torch.no_grad():
        net[0].weight[0, 0] += 1e-6
    assert module_hash(net) != before


def test_atomic_write_text_replaces(tmp_path):
    p = tmp_path / "m.json"
    atomic_write_text(p, "1")
    atomic_write_text(p, "2")
    assert p.read_text() == "2" and os.listdir(tmp_path) == ["m.json"]
    with pytest.raises(InputError, match="already exists"):
        atomic_write_text(p, "3", force=False)
