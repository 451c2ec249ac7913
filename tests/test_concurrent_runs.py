"""Two real `bdmm animate` processes at once (issue 16 rows 9 and 10).

Run A goes through the Python API and pauses after its first window (its ``on_window``
hook waits for a file), so run B, the real CLI, is sure to start while A holds the run
store: same inputs and the same output file.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from animate_helpers import MODEL_SIZE, animate_args, make_env, make_pose_dir
from bdmm_cli.video import count_frames
from media import make_test_video

REPO = Path(__file__).resolve().parents[1]

_RUN_A = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from bdmm_cli.pipeline import AnimateConfig, animate
    photo, video, out, poses, source_pose, weights, smpl, go = sys.argv[1:9]
    cfg = AnimateConfig(weights=weights, smpl=Path(smpl), poses=Path(poses), source_pose=Path(source_pose),
                        model_size=int(sys.argv[9]), size=int(sys.argv[9]), device="cpu")

    def pause(window):
        if window.index == 0:
            print("first window stored", flush=True)
            while not Path(go).exists():
                time.sleep(0.05)

    result = animate(photo, video, out, cfg, on_window=pause)
    print("wrote", result.output, flush=True)
""")


def _wait(predicate, seconds=300.0):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


@pytest.mark.slow
def test_same_inputs_and_same_output_at_once(tmp_path):
    env = make_env(tmp_path, 18, 20.0)
    env["poses"] = make_pose_dir(tmp_path, 18, name="p18")
    env["video"] = make_test_video(tmp_path / "d18.mp4", frames=18, fps=20, size=(64, 48), audio=True)
    out = tmp_path / "o" / "same.mp4"
    out.parent.mkdir()
    go = tmp_path / "go"
    environ = dict(os.environ, BDMM_CACHE_DIR=str(tmp_path / "cache"), OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    a = subprocess.Popen([sys.executable, "-c", _RUN_A, str(env["photo"]), str(env["video"]), str(out),
                          str(env["poses"]), str(env["source_pose"]), str(env["weights"]), str(env["smpl"]),
                          str(go), str(MODEL_SIZE)], env=environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    try:
        assert a.stdout.readline().strip() == "first window stored"
        b_err = tmp_path / "b.err"
        with open(b_err, "w") as err:
            b = subprocess.Popen([sys.executable, "-m", "bdmm_cli", *animate_args(tmp_path, env, out)], env=environ,
                                 stderr=err, stdout=subprocess.DEVNULL)
        assert _wait(lambda: "another bdmm run on the same inputs" in b_err.read_text()), b_err.read_text()
        manifest = next((tmp_path / "cache").glob("runs/*/manifest.json"))
        assert json.loads(manifest.read_text())["windows_done"] == 1  # B waited: it touched nothing
        go.touch()
        a_out, a_errs = a.communicate(timeout=300)
        b.wait(timeout=300)
    finally:
        for p in (a,):
            if p.poll() is None:
                p.kill()
    assert a.returncode == 0, a_errs
    assert f"wrote {out}" in a_out
    b_text = b_err.read_text()
    assert b.returncode == 1, b_text
    assert "was created by another process" in b_text and "--force" in b_text and "wrote" not in b_text
    assert count_frames(out) == 18
    assert sorted(p.name for p in out.parent.iterdir()) == ["same.mp4"]  # no temporaries left
    # neither run deleted the other's data: a third run reuses every window
    again = subprocess.run([sys.executable, "-m", "bdmm_cli", *animate_args(tmp_path, env, tmp_path / "o" / "b.mp4")],
                           env=environ, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert "3 window(s) reused" in again.stderr
    assert not list((tmp_path / "cache").glob("runs/*.lock"))  # every run removed its lock as it ended
