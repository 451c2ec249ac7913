"""`bdmm eval --checkpoint C --data D`: generate the test split in the authors' test mode, then score it.

Steps:
  1. Resolve the data set (`fashionvideo` / `iper` under $BDMM_HOME/datasets, or a folder in
     the UBC_fashion_smpl layout) and read its `test_list.csv` (bdmm_cli.dataset.layout).
  2. Load the generator (bdmm_cli.model.load_generator: registry name, our folder, or the
     authors' .pth) and the body model (bdmm_cli.body.load_body_model).
  3. Per test sequence, as the authors' test mode does: run windows of
     `bdmm_cli.window.DEFAULT_WINDOW` (6) in order carrying the generator state, the last
     window padded by repeating the last frame, previous pose = start - 1 (or 0), future =
     start + 6 (or the last frame): the test mode of `bdmm_cli.window.WindowSchedule`, inputs
     built by `bdmm_cli.window.window_inputs` (the same size rule as training and animate),
     the driving poses never retargeted (the paper's protocol: source and driving frames are
     the same person). Frames are written as PNG with uint8 = trunc((x + 1) / 2 * 255), named
     after the ground-truth frame, so the padded duplicates overwrite each other (the last
     padded output is the one kept, as in the authors' loop).
  4. Score `generated/<sequence>/` against the matching ground-truth frames with
     `evaluate`; FID uses the data set's `fid_stat.npz` when present.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from pathlib import Path
from typing import Sequence

import torch

from bdmm_cli.errors import InputError
from bdmm_cli.device import resolve_device
from bdmm_cli.metrics.evaluate import EvalConfig, FeatureNetworks, _Progress, evaluate

def _sequence_poses(seq, image_size: int, device) -> dict[str, torch.Tensor]:
    """The test sequence's poses as a batch of one clip: smpl (1, L, 85), keypoints (1, L, 25, 3)
    in 256-crop pixels, and the S x S source image / pose (no ground-truth pixels are loaded)."""
    from bdmm_cli.train.data import load_frame, load_pose

    poses = [load_pose(p) for p in seq.gen_poses]
    _, src_smpl = load_pose(seq.ref_pose)
    return {
        "keypoints": torch.stack([k for k, _ in poses])[None].to(device),
        "smpl": torch.stack([s for _, s in poses])[None].to(device),
        "source": load_frame(seq.ref_frame, image_size)[None].to(device),
        "source_smpl": src_smpl[None].to(device),
    }


@torch.no_grad()
def generate_test_split(generator, body, sequences: Sequence, out_pred: Path, out_gt: Path, image_size: int,
                        device, progress: bool = False) -> int:
    """Write generated frames to out_pred/<seq>/ and link ground truth into out_gt/<seq>/; returns frames."""
    from PIL import Image

    from bdmm_cli.video.image import to_uint8
    from bdmm_cli.window import DEFAULT_WINDOW, WindowSchedule, gather_window, window_inputs


    schedule = WindowSchedule(DEFAULT_WINDOW)
    total_windows = sum(schedule.num_windows(len(s.gen_frames)) for s in sequences)
    written = 0
    with _Progress(progress) as bars, bars.task("generating the test split", total_windows) as advance:
        for i, seq in enumerate(sequences):
            name = f"{i:04d}_{seq.gen_frames[0].parent.parent.name}"
            (out_pred / name).mkdir(parents=True)
            (out_gt / name).mkdir(parents=True)
            for frame in dict.fromkeys(seq.gen_frames):
                link = out_gt / name / (frame.stem + frame.suffix)
                try:
                    os.symlink(frame.resolve(), link)
                except OSError:  # file systems without symlinks
                    link.write_bytes(frame.read_bytes())
            seq_poses = _sequence_poses(seq, image_size, device)
            state = None
            for w in schedule.windows(len(seq.gen_frames)):
                poses = gather_window(seq_poses["smpl"], seq_poses["keypoints"], w)
                out = generator(window_inputs(body, seq_poses["source"], seq_poses["source_smpl"], poses), state)
                state = out.state
                for t, img in enumerate(to_uint8(out.frames[0])):
                    target = seq.gen_frames[w.frames[t]]
                    Image.fromarray(img).save(out_pred / name / f"{target.stem}.png")
                advance(1)
            written += len(dict.fromkeys(seq.gen_frames))
    return written


def evaluate_checkpoint(
    checkpoint: str | Path,
    data: str | Path,
    config: EvalConfig = EvalConfig(),
    networks: FeatureNetworks | None = None,
    progress: bool = False,
    body_model: Path | None = None,
    keep: Path | None = None,
) -> dict:
    """Generate the test split of `data` with `checkpoint` and score it (see module docstring).

    keep: a new folder to keep the generated (`generated/`) and linked ground-truth
          (`ground_truth/`) frames in; default: a temporary folder, removed afterwards.
    """
    from bdmm_cli.body import load_body_model
    from bdmm_cli.dataset.layout import TEST_LIST, read_test_list
    from bdmm_cli.model.checkpoint import load_generator
    from bdmm_cli.video import read_image

    from bdmm_cli.dataset.layout import resolve_dataset

    root = resolve_dataset(data)
    sequences = read_test_list(root / TEST_LIST, root)
    if not sequences:
        raise InputError(f"{root / TEST_LIST} lists no test sequence")
    dev = resolve_device(config.device)
    image_size = read_image(sequences[0].ref_frame).shape[0]
    generator = load_generator(checkpoint, dev).eval()
    body = load_body_model(body_model, dev)
    if config.fid_stats is None and (root / "fid_stat.npz").is_file():
        config = dataclasses.replace(config, fid_stats=root / "fid_stat.npz")

    if keep is not None:
        keep = Path(keep).expanduser()
        if keep.exists():
            raise InputError(f"{keep} already exists; give a new folder to keep the generated frames in")
        keep.mkdir(parents=True)
        work, cleanup = keep, None
    else:
        cleanup = tempfile.TemporaryDirectory(prefix="bdmm-eval-")
        work = Path(cleanup.name)
    try:
        frames = generate_test_split(generator, body, sequences, work / "generated", work / "ground_truth",
                                     image_size, dev, progress)
        result = evaluate(work / "generated", work / "ground_truth", dataclasses.replace(config, device=str(dev)),
                          networks, progress)
    finally:
        if cleanup is not None:
            cleanup.cleanup()
    result["meta"].update({
        "checkpoint": str(checkpoint), "data": str(root), "test_sequences": len(sequences),
        "generated_frames": frames, "pred": str(work / "generated") if keep else "(temporary)",
        "gt": str(work / "ground_truth") if keep else "(temporary)",
    })
    return result
