"""Cache hygiene (issue 22 point 7): run locks go when their run ends (also with runs that
wait on each other), `bdmm cache info` / `bdmm cache clean [--older-than DAYS]`, and the
`BDMM_CACHE_MAX_GB` cap enforced least recently used first after each animate run, never on
what a running bdmm holds. Real cache folders (BDMM_CACHE_DIR under tmp_path), real
processes holding real locks."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from animate_helpers import animate_args, make_env
from bdmm_cli.cli import app
from bdmm_cli.errors import BdmmWarning
from bdmm_cli.paths import cache_dir
from bdmm_cli.pipeline.cache import (
    cache_info,
    clean_cache,
    enforce_cache_cap,
    max_cache_bytes,
)

REPO = Path(__file__).resolve().parents[1]
runner = CliRunner()
DAY = 86400.0


def _entry(kind_folder: str, name: str, nbytes: int, age_days: float = 0.0, files: int = 1) -> Path:
    """A cache entry folder of `files` files holding `nbytes` bytes in all, last used `age_days` ago."""
    folder = cache_dir() / kind_folder / name
    folder.mkdir(parents=True)
    for i in range(files):
        share = nbytes // files + (nbytes % files if i == 0 else 0)
        (folder / f"part{i}.bin").write_bytes(os.urandom(share))
    when = time.time() - age_days * DAY
    os.utime(folder, (when, when))
    return folder


_HOLD = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from bdmm_cli.fileio import FileLock
    lock = FileLock(Path(sys.argv[1]), remove_on_exit=True).acquire(blocking=True)
    print("held", flush=True)
    sys.stdin.readline()   # hold until told
""")


def _hold(lock_path: Path) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", _HOLD, str(lock_path)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert proc.stdout.readline().strip() == "held"
    return proc


# --- locks -------------------------------------------------------------------------------------

_CONTEND = textwrap.dedent("""
    import os, sys, time
    from pathlib import Path
    from bdmm_cli.fileio import FileLock
    lock_path, log = Path(sys.argv[1]), Path(sys.argv[2])
    for _ in range(4):
        with FileLock(lock_path, remove_on_exit=True):
            with open(log, "a") as f:
                f.write(f"in {os.getpid()}\\n")
            time.sleep(0.02)
            with open(log, "a") as f:
                f.write(f"out {os.getpid()}\\n")
""")


def test_lock_removed_on_exit_stays_exclusive_between_processes(tmp_path):
    """Three processes take and remove the same lock 4 times each: never two inside at once,
    and no lock file is left."""
    lock, log = tmp_path / "run.lock", tmp_path / "log"
    procs = [subprocess.Popen([sys.executable, "-c", _CONTEND, str(lock), str(log)],
                              env=dict(os.environ, PYTHONPATH=str(REPO))) for _ in range(3)]
    for p in procs:
        assert p.wait(timeout=120) == 0
    lines = log.read_text().split()
    events = list(zip(lines[::2], lines[1::2]))
    assert len(events) == 24
    for (kind_in, pid_in), (kind_out, pid_out) in zip(events[::2], events[1::2]):
        assert (kind_in, kind_out) == ("in", "out") and pid_in == pid_out  # strictly one holder at a time
    assert not lock.exists()


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    return make_env(tmp_path_factory.mktemp("cache_env"), 7, 10.0)


def test_animate_leaves_no_lock_file_after_success_or_interruption(env, tmp_path):
    from bdmm_cli.pipeline import AnimateConfig, animate

    result = runner.invoke(app, animate_args(tmp_path, env, tmp_path / "a.mp4"))
    assert result.exit_code == 0, result.output
    runs = cache_dir() / "runs"
    assert [p.suffix for p in runs.iterdir()] == [""]  # the run folder, no .lock beside it

    class Stop(Exception):
        pass

    def stop(window):
        raise Stop

    cfg = AnimateConfig(weights=str(env["weights"]), smpl=env["smpl"], poses=env["poses"],
                        source_pose=env["source_pose"], model_size=128, size=64, device="cpu", window=4)
    with pytest.raises(Stop):
        animate(env["photo"], env["video"], tmp_path / "b.mp4", cfg, on_window=stop)
    assert sorted(p.suffix for p in runs.iterdir()) == ["", ""]  # its resume data stays, its lock does not


# --- info and clean ------------------------------------------------------------------------------

def test_cache_info_sizes_per_kind(monkeypatch):
    _entry("runs", "r1", 30_000, files=3)
    _entry("runs", "r2", 12_345)
    _entry("pose", "p1", 7_000, files=2)
    (cache_dir() / "metrics").mkdir()
    (cache_dir() / "metrics" / "stats.npz").write_bytes(b"x" * 999)
    _entry("downloads", "d1", 50_000)
    monkeypatch.setenv("BDMM_CACHE_MAX_GB", "2.5")
    info = cache_info()
    by_kind = {k.kind: (k.entries, k.size) for k in info.kinds}
    assert by_kind["runs"] == (2, 42_345) and by_kind["poses"] == (1, 7_000)
    assert by_kind["metrics"] == (1, 999) and by_kind["downloads"] == (1, 50_000)
    assert by_kind["weights"] == (0, 0) and by_kind["other"] == (0, 0)
    du = sum(f.stat().st_size for f in cache_dir().rglob("*") if f.is_file())  # independent walk
    assert info.size == du and info.max_bytes == 2_500_000_000

    monkeypatch.setenv("COLUMNS", "200")
    res = runner.invoke(app, ["cache", "info"])
    assert res.exit_code == 0, res.output
    rows = {ln.split("│")[1].strip(): ln for ln in res.stdout.splitlines() if ln.count("│") > 3}
    assert "42.3 kB" in rows["runs"] and " 2 " in rows["runs"] and "50.0 kB" in rows["downloads"]
    assert "2.5 GB" in res.stdout and str(cache_dir()) in res.stdout


def test_clean_older_than_keeps_recent_and_held_entries():
    old_run = _entry("runs", "old", 1000, age_days=40)
    held_run = _entry("runs", "held", 1000, age_days=50)
    new_run = _entry("runs", "new", 1000, age_days=2)
    old_pose = _entry("pose", "p-old", 500, age_days=31)
    new_pose = _entry("pose", "p-new", 500, age_days=29)
    old_download = _entry("downloads", "d-old", 500, age_days=100)
    stale_lock = cache_dir() / "runs" / "gone.lock"  # left by an older bdmm: nobody holds it
    stale_lock.write_text("12345")
    holder = _hold(cache_dir() / "runs" / "held.lock")
    try:
        res = runner.invoke(app, ["cache", "clean", "--older-than", "30"])
        assert res.exit_code == 0, res.output
        assert res.stderr.strip() == "removed 2 cache entries (1.5 kB); kept 1 in use by a running bdmm"
        assert not old_run.exists() and not old_pose.exists() and not stale_lock.exists()
        assert held_run.is_dir() and new_run.is_dir() and new_pose.is_dir()
        assert old_download.is_dir()  # downloads only when named
    finally:
        holder.communicate("\n", timeout=60)
    assert not (cache_dir() / "runs" / "held.lock").exists()  # its holder removed it on exit
    res = runner.invoke(app, ["cache", "clean", "--kind", "downloads"])
    assert res.exit_code == 0 and not old_download.exists() and new_run.is_dir()
    result = clean_cache()  # everything refillable, nothing held any more
    assert {e.path.name for e in result.removed} == {"held", "new", "p-new"} and not result.in_use
    assert sorted(p.name for p in cache_dir().rglob("*") if p.is_file()) == []


@pytest.mark.parametrize("args,message", [
    (["--older-than", "-1"], "error: --older-than must be a number of days >= 0, got -1.0"),
    (["--kind", "everything"], "error: unknown cache kind 'everything'; choose from runs, poses, metrics, weights, downloads"),
])
def test_clean_refuses_bad_arguments(args, message):
    kept = _entry("runs", "r", 100, age_days=90)
    res = runner.invoke(app, ["cache", "clean", *args])
    assert res.exit_code == 1 and res.stderr.strip() == message and kept.is_dir()


# --- the size cap ------------------------------------------------------------------------------

def test_cap_removes_least_recently_used_first_but_never_held_or_kept(monkeypatch):
    sizes = 10_000
    paths = {name: _entry(folder, name, sizes, age_days=age) for name, folder, age in [
        ("r-oldest", "runs", 9), ("p-old", "pose", 8), ("r-held", "runs", 7), ("r-mid", "runs", 5),
        ("m-new", "metrics", 3), ("r-newest", "runs", 1)]}
    download = _entry("downloads", "big", 100_000, age_days=20)  # not counted, never evicted
    monkeypatch.setenv("BDMM_CACHE_MAX_GB", str(25_000 / 1e9))
    assert max_cache_bytes() == 25_000
    holder = _hold(cache_dir() / "runs" / "r-held.lock")
    try:
        result = enforce_cache_cap(keep=paths["r-oldest"])
    finally:
        holder.communicate("\n", timeout=60)
    # 60 kB, cap 25 kB: r-oldest is kept (the run that just finished), p-old goes, r-held is
    # in use, r-mid goes, m-new goes -> 30 kB left > 25 kB, r-newest goes: 20 kB
    assert [e.path.name for e in result.removed] == ["p-old", "r-mid", "m-new", "r-newest"]
    assert [e.path.name for e in result.in_use] == ["r-held"]
    assert sorted(p.name for p in paths.values() if p.exists()) == ["r-held", "r-oldest"]
    assert download.is_dir() and result.freed == 40_000


def test_cap_bad_value_warns_and_uses_the_default(monkeypatch):
    monkeypatch.setenv("BDMM_CACHE_MAX_GB", "ten")
    with pytest.warns(BdmmWarning, match="BDMM_CACHE_MAX_GB=ten is not a size in GB"):
        assert max_cache_bytes() == 10_000_000_000


def test_animate_enforces_the_cap_after_the_run(env, tmp_path, monkeypatch):
    old = [_entry("runs", f"old{i}", 200_000, age_days=10 - i) for i in range(3)]  # old0 least recent
    old_pose = _entry("pose", "p", 200_000, age_days=20)
    cap = 1_000_000
    monkeypatch.setenv("BDMM_CACHE_MAX_GB", str(cap / 1e9))
    result = runner.invoke(app, animate_args(tmp_path, env, tmp_path / "a.mp4"))
    assert result.exit_code == 0, result.output
    runs = [p for p in (cache_dir() / "runs").iterdir() if p.name not in {o.name for o in old}]
    assert len(runs) == 1 and (runs[0] / "manifest.json").is_file()  # this run's resume data stays
    this_run = sum(f.stat().st_size for f in runs[0].rglob("*") if f.is_file())
    assert 0 < this_run < cap
    # least recently used first: the pose entry, then old0, old1, ...; the newest that fit stay
    keep = min(3, (cap - this_run) // 200_000)
    assert not old_pose.exists()
    assert [o.exists() for o in old] == [False] * (3 - keep) + [True] * keep
    info = {k.kind: k.size for k in cache_info().kinds}
    assert info["runs"] + info["poses"] + info["metrics"] <= cap
    again = runner.invoke(app, animate_args(tmp_path, env, tmp_path / "b.mp4"))  # the kept run is reused
    assert again.exit_code == 0 and "window(s) reused" in again.stderr, again.output
