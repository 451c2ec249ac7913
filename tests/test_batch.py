"""`bdmm batch` for real: the real pose path (MediaPipe + an HMR with random weights), tiny
generator weights, the synthetic body, real processes (the CLI; torchrun with 2 processes on
gloo), real signals.

The independent expectation for every output is `bdmm animate` of the same pair with the
same options (its own pipeline, its own pose estimation): the decoded frames must be equal.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from batch_helpers import (bdmm, child_env, config, decode, make_blank_photo, make_corrupt_video, make_models,
                           make_photo, make_video, options, torchrun, write_csv)
from bdmm_cli.batch import read_jobs, read_report, run_batch
from bdmm_cli.errors import InputError
from bdmm_cli.pipeline import AnimatePipeline, animate

pytest.importorskip("mediapipe")
pytest.importorskip("skimage")


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    root = tmp_path_factory.mktemp("batch")
    e = {"root": root, **make_models(root)}
    e["photos"] = [make_photo(root / "ann.png"), make_photo(root / "bob.png", flip=True)]
    e["videos"] = [make_video(root / "salsa.mp4", 6), make_video(root / "tango.mp4", 8, step=3),
                   make_video(root / "polka.mp4", 4, step=5)]
    e["bad"] = make_corrupt_video(root / "broken.mp4")
    e["blank"] = make_blank_photo(root / "empty.png")
    return e


_REFERENCE = """
import sys
sys.path.insert(0, sys.argv[1])
from pathlib import Path
import batch_helpers as B
from bdmm_cli.pipeline import AnimatePipeline
models = {"weights": sys.argv[2], "smpl": sys.argv[3], "spin": sys.argv[4]}
out, photos, videos = Path(sys.argv[5]), sys.argv[6].split(","), sys.argv[7].split(",")
cfg = B.config(models)
pipe = AnimatePipeline.from_config(cfg)
for p in map(Path, photos):
    for v in map(Path, videos):
        pipe(p, v, out / f"{p.stem}__{v.stem}.mp4", cfg)
"""


@pytest.fixture(scope="module")
def reference(env, tmp_path_factory):
    """Frames `bdmm animate` writes for every (photo, video) pair: the pipeline `bdmm animate`
    runs, called once per pair (each estimating its own poses), in a process set up like the
    `bdmm` processes the tests start (one thread: CPU results depend on the thread count)."""
    out = tmp_path_factory.mktemp("reference")
    subprocess.run([sys.executable, "-c", _REFERENCE, str(Path(__file__).parent), str(env["weights"]),
                    str(env["smpl"]), str(env["spin"]), str(out), ",".join(map(str, env["photos"])),
                    ",".join(map(str, env["videos"]))], env=child_env(out / "cache"), check=True, timeout=600)
    return {path.name: decode(path) for path in sorted(out.glob("*.mp4"))}


@pytest.fixture
def one_thread():
    """This process computes with one thread too, like the reference (see there)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _jobs(path: Path, photos, videos) -> Path:
    return write_csv(path, [{"photo": str(p), "video": str(v)} for p in photos for v in videos])


def _no_temporaries(out: Path) -> None:
    names = [str(p.relative_to(out)) for p in out.rglob("*")]
    assert not [n for n in names if ".part" in n or n.endswith(".lock") or "poses" in n], names


def _assert_outputs(out: Path, reference: dict, names) -> None:
    for name in names:
        assert np.array_equal(decode(out / name), reference[name]), name


def test_api_estimates_each_pose_once_and_equals_animate(env, reference, tmp_path, one_thread):
    photos = [shutil.copy(p, tmp_path / p.name) for p in env["photos"]]
    photos = [Path(p) for p in photos]
    cfg = config(env)
    jobs = read_jobs(_jobs(tmp_path / "jobs.csv", photos, env["videos"]), tmp_path / "out", cfg)
    pipe = AnimatePipeline.from_config(cfg)
    estimator = pipe.pose_estimator
    calls = []
    process = estimator.process

    def counted(frames, video=True, start_index=0):
        calls.append("video" if video else "photo")
        return process(frames, video, start_index)

    estimator.process = counted
    summary = run_batch(jobs, tmp_path / "out", cfg, pipeline=pipe)
    assert (summary.ok, summary.failed, summary.skipped, summary.total) == (6, 0, 0, 6)
    assert sorted(calls) == ["photo"] * 2 + ["video"] * 3  # P + V, not 2 P V
    assert (summary.photos_posed, summary.videos_posed) == (2, 3)
    assert summary.frames == 2 * (6 + 8 + 4)
    _assert_outputs(tmp_path / "out", reference, reference)
    _no_temporaries(tmp_path / "out")

    # the finished batch again: everything skipped, nothing estimated
    again = run_batch(jobs, tmp_path / "out", cfg, pipeline=pipe)
    assert (again.ok, again.skipped, again.failed, again.frames) == (0, 6, 0, 0)
    assert len(calls) == 5
    # a photo that changed: its jobs (and only they) run again: a new batch, 1 photo + 3 videos posed
    make_photo(photos[1], shift=9, flip=True)
    third = run_batch(jobs, tmp_path / "out", cfg, pipeline=pipe)
    assert (third.ok, third.skipped, third.failed) == (3, 3, 0)
    assert sorted(calls[5:]) == ["photo"] + ["video"] * 3


def test_cli_one_corrupt_video_fails_alone(env, reference, tmp_path):
    videos = [env["videos"][0], env["videos"][1], env["bad"]]
    jobs = _jobs(tmp_path / "jobs.csv", env["photos"], videos)
    out = tmp_path / "out"
    environ = child_env(tmp_path / "cache")
    proc = subprocess.run(bdmm("batch", str(jobs), "-o", str(out), *options(env), "--json", "--no-progress"),
                          env=environ, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    summary = json.loads(proc.stdout)
    assert (summary["ok"], summary["failed"], summary["skipped"], summary["total"]) == (4, 2, 0, 6)
    assert (summary["videos_posed"], summary["photos_posed"]) == (2, 2)  # the corrupt video never got that far
    # the reason is the line `bdmm animate` prints for that pair
    animate = subprocess.run(bdmm("animate", str(env["photos"][0]), str(env["bad"]), "-o", str(tmp_path / "x.mp4"),
                                  *options(env), "--quiet"), env=environ, capture_output=True, text=True, timeout=300)
    assert animate.returncode == 1
    reason = animate.stderr.strip().removeprefix("error: ")
    report = read_report(out / "batch_report.jsonl")
    assert len(report) == 6
    for r in report:
        assert set(r) >= {"photo", "video", "output", "status", "error", "frames", "seconds", "rank", "host"}
        assert r["rank"] == 0 and r["host"]
        if Path(r["video"]) == env["bad"]:
            assert (r["status"], r["error"], r["frames"]) == ("failed", reason, 0)
        else:
            assert r["status"] == "ok" and r["error"] is None
            assert r["frames"] == len(reference[Path(r["output"]).name])
    assert sorted(f["line"] for f in summary["failures"]) == [4, 7]
    good = [f"{p.stem}__{v.stem}.mp4" for p in env["photos"] for v in videos[:2]]
    assert sorted(p.name for p in out.glob("*.mp4")) == sorted(good)
    _assert_outputs(out, reference, good)
    _no_temporaries(out)


def test_a_photo_with_nobody_fails_alone(env, reference, tmp_path, one_thread):
    cfg = config(env)
    jobs = read_jobs(_jobs(tmp_path / "jobs.csv", [env["blank"], env["photos"][0]], env["videos"][2:]),
                     tmp_path / "out", cfg)
    summary = run_batch(jobs, tmp_path / "out", cfg)
    assert (summary.ok, summary.failed) == (1, 1)
    (failure,) = summary.failures
    with pytest.raises(InputError) as animate_error:  # what `bdmm animate` says for that pair
        animate(env["blank"], env["videos"][2], tmp_path / "x.mp4", cfg)
    assert failure["error"] == str(animate_error.value)
    assert failure["error"].startswith(f"no person found in the photo {env['blank']}")
    _assert_outputs(tmp_path / "out", reference, ["ann__polka.mp4"])


def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    out.append(int(entry.name))
            except (OSError, IndexError, ValueError):
                pass
    return out


def _rank_of(pid: int) -> int | None:
    try:
        env = (Path("/proc") / str(pid) / "environ").read_bytes().split(b"\0")
    except OSError:
        return None
    for item in env:
        if item.startswith(b"RANK="):
            return int(item[5:])
    return None


def test_torchrun_kill_9_of_a_worker_then_rerun(env, reference, tmp_path):
    jobs = _jobs(tmp_path / "jobs.csv", env["photos"], env["videos"])
    out = tmp_path / "out"
    environ = child_env(tmp_path / "cache")
    args = ("batch", str(jobs), "-o", str(out), *options(env), "--no-progress")
    first = subprocess.Popen(torchrun(2, *args), env=environ, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True)
    try:
        deadline = time.time() + 300
        while time.time() < deadline and first.poll() is None and not read_report(out / "batch_report.jsonl"):
            time.sleep(0.1)
        workers = {_rank_of(p): p for p in _children(first.pid)}
        assert 1 in workers, (workers, first.poll())
        os.kill(workers[1], signal.SIGKILL)
        log, _ = first.communicate(timeout=300)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode != 0, log[-3000:]
    done_first = [r for r in read_report(out / "batch_report.jsonl") if r["status"] == "ok"]
    assert 1 <= len(done_first) < 6

    second = subprocess.run(torchrun(2, *args), env=environ, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stderr[-3000:]
    report = read_report(out / "batch_report.jsonl")
    runs = sorted({r["run"] for r in report}, key=[r["run"] for r in report].index)
    assert len(runs) == 2
    last = [r for r in report if r["run"] == runs[1]]
    assert len(last) == 6 and {r["status"] for r in last} <= {"ok", "skipped"}
    names = sorted(reference)
    assert sorted(Path(r["output"]).name for r in last) == names
    ok = [Path(r["output"]).name for r in report if r["status"] == "ok"]
    assert len(ok) == len(set(ok))  # every job done once: what the first run finished was skipped
    assert {Path(r["output"]).name for r in last if r["status"] == "skipped"} >= {Path(r["output"]).name
                                                                                  for r in done_first}
    assert {r["rank"] for r in last} <= {0, 1}
    _assert_outputs(out, reference, names)
    _no_temporaries(out)


@pytest.mark.slow
def test_torchrun_one_long_job_the_other_worker_takes_the_rest(env, tmp_path):
    long_video = make_video(tmp_path / "long.mp4", 90)
    short = [make_video(tmp_path / f"short{i}.mp4", 3, step=4 + i) for i in range(3)]
    rows = [{"photo": str(env["photos"][0]), "video": str(long_video)}]
    rows += [{"photo": str(env["photos"][1]), "video": str(v)} for v in short]
    jobs = write_csv(tmp_path / "jobs.csv", rows[::-1])  # longest first is the schedule's doing, not the list's
    out = tmp_path / "out"
    environ = child_env(tmp_path / "cache")
    args = ("batch", str(jobs), "-o", str(out), *options(env), "--no-progress", "--json")
    proc = subprocess.run(torchrun(2, *args), env=environ, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = read_report(out / "batch_report.jsonl")
    assert [r["status"] for r in report] == ["ok"] * 4
    long_rank = next(r["rank"] for r in report if Path(r["video"]) == long_video)
    assert {r["rank"] for r in report if Path(r["video"]) != long_video} == {1 - long_rank}
    # a second run of the finished batch skips everything
    again = subprocess.run(torchrun(2, *args), env=environ, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    summary = json.loads(again.stdout)
    assert (summary["skipped"], summary["ok"], summary["videos_posed"], summary["photos_posed"]) == (4, 0, 0, 0)


@pytest.mark.slow
def test_ctrl_c_then_rerun_finishes_the_rest(env, reference, tmp_path):
    jobs = _jobs(tmp_path / "jobs.csv", env["photos"], env["videos"])
    out = tmp_path / "out"
    environ = child_env(tmp_path / "cache")
    args = bdmm("batch", str(jobs), "-o", str(out), *options(env), "--no-progress", "--json")
    proc = subprocess.Popen(args, env=environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None and not read_report(out / "batch_report.jsonl"):
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err[-2000:]
    assert "run the same command again" in err and "Traceback" not in err
    first = [r for r in read_report(out / "batch_report.jsonl") if r["status"] == "ok"]
    again = subprocess.run(args, env=environ, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    summary = json.loads(again.stdout)
    assert (summary["ok"] + summary["skipped"], summary["skipped"], summary["failed"]) == (6, len(first), 0)
    _assert_outputs(out, reference, sorted(reference))
    _no_temporaries(out)
