"""The training loop end to end on a generated data set with a tiny model (S = 128).

Core claims: one iteration changes G, D and D_V; stop + resume ends bit-identical to an
uninterrupted run; 2-process gloo DDP (under torchrun, through the CLI) gives the same
update as one process with the same global batch; overfitting one clip lowers L1.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from bdmm_cli.errors import CheckpointError, InputError
from bdmm_cli.train.checkpoint import load_checkpoint
from bdmm_cli.train.loop import _StopFlag, build_networks, train
from train_helpers import make_body, make_dataset, state_tensors, tiny_config

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("train_data")
    body = make_body(root)
    return make_dataset(root / "ds", body, num_videos=2, num_frames=8), body


def _assert_same_state(a: dict, b: dict, keys=("G", "D", "D_V", "opt_G", "opt_D")):
    for key in keys:
        ta, tb = state_tensors(a[key]), state_tensors(b[key])
        assert ta.keys() == tb.keys(), key
        for name in ta:
            assert torch.equal(ta[name], tb[name]), f"{key}.{name} differs"


def test_resume_is_bit_identical_and_one_step_changes_every_network(data, tmp_path):
    root, body = data
    cfg = tiny_config(root, body, iterations=2, tensorboard=True, sample_every=1)

    # uninterrupted
    full = train(cfg, tmp_path / "full", progress=False)
    assert full.finished and full.step == 2

    # stopped after one iteration, then resumed in a fresh trainer
    part = train(cfg, tmp_path / "split", progress=False, stop_at=1)
    assert not part.finished and part.step == 1
    after_one = load_checkpoint(part.checkpoint)
    init = build_networks(cfg)
    for key, net in (("G", init.G), ("D", init.D), ("D_V", init.D_V)):
        changed = [k for k, v in net.state_dict().items() if not torch.equal(v, after_one[key][k])]
        assert changed, f"{key} did not change in one iteration"
    with pytest.raises(InputError, match="--resume"):
        train(cfg, tmp_path / "split", progress=False)          # never silently restarts a run
    resumed = train(cfg, tmp_path / "split", resume=True, progress=False)
    assert resumed.finished and resumed.step == 2

    _assert_same_state(load_checkpoint(full.checkpoint), load_checkpoint(resumed.checkpoint))

    # the run directory
    run = tmp_path / "full"
    assert "lr_g = 0.0001" in (run / "config.toml").read_text()
    stats = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]
    assert [s["step"] for s in stats] == [1, 2]
    for key in ("G/l1", "G/perceptual", "G/style", "G/contextual", "G/adv", "G/adv_video", "D/loss",
                "D_V/loss", "D/real", "D/fake", "lr_g", "lr_d", "it_s"):
        assert all(isinstance(s[key], float) for s in stats), key
    assert list((run / "tensorboard").glob("events.out.tfevents.*"))
    assert (run / "samples" / "step_0000002.png").is_file()
    split_stats = [json.loads(line)["step"] for line in (tmp_path / "split" / "stats.jsonl").read_text().splitlines()]
    assert split_stats == [1, 2]

    # release export loads through the weights package
    from bdmm_cli.hub import load_generator

    g = load_generator(run / "release")
    final = load_checkpoint(full.checkpoint)["G"]
    assert all(torch.equal(v, final[k]) for k, v in g.state_dict().items())


def test_corrupt_checkpoint_gives_a_clear_error(data, tmp_path):
    root, body = data
    cfg = tiny_config(root, body, iterations=1)
    ck = tmp_path / "run" / "checkpoints" / "latest.pt"
    ck.parent.mkdir(parents=True)
    ck.write_bytes(b"PK\x03\x04 this is not a finished zip archive")
    with pytest.raises(CheckpointError, match="corrupt"):
        train(cfg, tmp_path / "run", resume=True, progress=False)
    with pytest.raises(InputError, match="nothing to resume"):
        train(cfg, tmp_path / "other", resume=True, progress=False)


def test_stop_flag_turns_the_first_ctrl_c_into_a_flag_and_the_second_into_an_interrupt():
    with _StopFlag() as flag:
        os.kill(os.getpid(), signal.SIGINT)
        assert flag.set
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_process_gloo_ddp_equals_one_process_with_the_same_global_batch(data, tmp_path):
    root, body = data
    single = train(tiny_config(root, body, iterations=1, batch_size=2), tmp_path / "single", progress=False)

    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc_per_node", "2",
           "--master_addr", "127.0.0.1", "--master_port", str(_free_port()),
           "-m", "bdmm_cli", "train", "--data", str(root), "--out", str(tmp_path / "ddp"), "--no-progress",
           "--body-model", str(body), "--iterations", "1", "--batch-size", "1", "--device", "cpu"]
    for k, v in tiny_config(root, body).to_dict().items():
        if k in ("data", "body_model", "iterations", "batch_size", "device"):
            continue
        cmd += ["--set", f"{k}={v}"]
    proc = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]

    a, b = load_checkpoint(single.checkpoint), load_checkpoint(tmp_path / "ddp" / "checkpoints" / "latest.pt")
    assert b["world_size"] == 2 and a["world_size"] == 1
    init = build_networks(tiny_config(root, body))
    for key, net in (("G", init.G), ("D", init.D), ("D_V", init.D_V)):
        start = net.state_dict()
        for name, v in a[key].items():
            if not v.is_floating_point():
                continue
            # the same update up to float32 reduction order (Adam's first step ~ lr * sign(grad))
            du_a, du_b = v - start[name], b[key][name] - start[name]
            torch.testing.assert_close(du_b, du_a, atol=2e-6, rtol=1e-3, msg=f"{key}.{name}")
