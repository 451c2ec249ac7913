"""The generator's per-photo step (``BDMMGenerator.prepare``) keeps the animate output bit-identical.

``tests/data/animate_reference.json`` holds the sha256 of the frames (decoded with
``video.iter_frames``) of two tiny animate runs (13 frames, model size 128, window 6; test
mode with the carried state, and overlap 2 in batches of 2) and of the raw outputs of the
tiny generator on seeded inputs, recorded on the CPU (float32) with the code from before
``prepare`` existed, when the generator kept its per-photo constants in a memo
(``python tests/test_generator_prepare.py`` rewrites it). The refactored code must
reproduce every hash exactly. The float results depend on the thread count (the matrix
multiplies split their sums by thread), so the recording and the tests run on one thread.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from animate_helpers import MODEL_SIZE, TINY, make_env  # noqa: E402

REFERENCE = HERE / "data" / "animate_reference.json"
N, FPS = 13, 12.5


def _sha(a) -> str:
    if isinstance(a, torch.Tensor):
        a = a.detach().contiguous().numpy()
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


def _animate_hashes(root: Path) -> dict[str, str]:
    from bdmm_cli.pipeline import AnimateConfig, AnimatePipeline
    from bdmm_cli.video import iter_frames

    env = make_env(root, N, FPS)
    base = dict(weights=str(env["weights"]), smpl=env["smpl"], poses=env["poses"], source_pose=env["source_pose"],
                model_size=MODEL_SIZE, size=MODEL_SIZE, device="cpu", window=6, cache=False)
    out = {}
    for name, extra in (("windows", {}), ("overlap", dict(overlap=2, batch=2))):
        cfg = AnimateConfig(**base, **extra)
        pipe = AnimatePipeline.from_config(cfg)
        video = root / f"{name}.mp4"
        pipe(env["photo"], env["video"], video, cfg, progress=False)
        out[name] = _sha(np.stack(list(iter_frames(video))))
    return out


def _generator_case():
    """A tiny seeded generator and seeded inputs of two windows (batch 2, T 3, S 128)."""
    from bdmm_cli.model import BDMMGenerator, GeneratorConfig, WindowInputs

    torch.manual_seed(3)
    g = BDMMGenerator(GeneratorConfig(**TINY)).eval()
    b, t, s = 2, 3, 128
    gen = torch.Generator().manual_seed(4)

    def flow(*shape):
        return torch.rand(*shape, s, s, 2, generator=gen) * 2.2 - 1.1

    source = torch.rand(1, 3, s, s, generator=gen) * 2 - 1
    wins = [
        WindowInputs(source.expand(b, -1, -1, -1), torch.rand(b, t, 25, s, s, generator=gen),
                     flow(b, t), flow(b), flow(b))
        for _ in range(2)
    ]
    return g, source, wins


def _generator_hashes(run) -> dict[str, str]:
    g, source, wins = _generator_case()
    with torch.inference_mode():
        outs = run(g, source, wins)
    return {f"generator_{i}": _sha(o.frames) for i, o in enumerate(outs)}


def _run_memo(g, source, wins):  # the code before prepare (the recording)
    first = g(wins[0], None)
    return [first, g(wins[1], first.state)]


def _run_prepared(g, source, wins):
    prepared = g.prepare(source.expand(wins[0].batch_size, -1, -1, -1))
    first = g(wins[0], None, prepared)
    return [first, g(wins[1], first.state, prepared)]


def _run_unprepared(g, source, wins):
    first = g(wins[0], None)
    return [first, g(wins[1], first.state)]


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_animate_frames_are_bit_identical_to_the_recording(tmp_path):
    ref = json.loads(REFERENCE.read_text())
    got = _animate_hashes(tmp_path)
    assert got == {k: ref[k] for k in got}


def test_prepared_generator_outputs_are_bit_identical_to_the_recording():
    ref = json.loads(REFERENCE.read_text())
    assert _generator_hashes(_run_prepared) == {k: v for k, v in ref.items() if k.startswith("generator_")}
    assert _generator_hashes(_run_unprepared) == {k: v for k, v in ref.items() if k.startswith("generator_")}


if __name__ == "__main__":  # record the reference (run on the code to compare against)
    import tempfile

    torch.set_num_threads(1)

    with tempfile.TemporaryDirectory() as d:
        import os

        os.environ["BDMM_CACHE_DIR"] = str(Path(d) / "cache")
        os.environ["BDMM_HOME"] = str(Path(d) / "home")
        hashes = {**_animate_hashes(Path(d)), **_generator_hashes(_run_memo)}
    REFERENCE.write_text(json.dumps(hashes, indent=1, sort_keys=True) + "\n")
    print(hashes)
