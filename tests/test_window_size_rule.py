"""One size rule for the generator inputs (issue 23, point 5).

The same poses (one synthetic test video: its kptsmpls JSONs, in 256-crop pixels) go through
the three callers of ``window.window_inputs``: training (``train.data.window_inputs`` on a
``ClipDataset`` batch), the eval test split (``metrics.testsplit.generate_test_split``, with a
generator stand-in that records what it is fed) and ``bdmm animate``
(``AnimatePipeline.window_inputs`` on ``FramePose`` records). At a model size of 128 and of 256
all three must feed the generator bit-identical ``WindowInputs``; the heatmaps must be the
ones the rule gives (keypoints times S / 256, sigma 6 * S / 256: at 256 the authors' 6).
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch.utils.data import default_collate

from bdmm_cli.body import keypoint_heatmaps, load_body_model
from bdmm_cli.dataset.kptsmpl import read_kptsmpl
from bdmm_cli.dataset.layout import OfficialDataset, TestSequence
from bdmm_cli.dataset.synthetic import write_synthetic_dataset
from bdmm_cli.metrics.testsplit import generate_test_split
from bdmm_cli.pipeline.animate import AnimatePipeline, Source
from bdmm_cli.train.data import ClipDataset, clip_windows, load_frame
from bdmm_cli.train.data import window_inputs as train_window_inputs
from bdmm_cli.window import DEFAULT_WINDOW, WindowFrames, WindowSchedule
from train_helpers import make_body

NUM_FRAMES = 8  # two windows of 6: the second padded with the last frame, as the authors pad


class RecordingGenerator:
    """Stands in for the generator in the test split: records each window's inputs."""

    def __init__(self) -> None:
        self.calls = []

    def __call__(self, inputs, state):
        self.calls.append(inputs)
        n, t, _, s, _ = inputs.heatmaps.shape
        return SimpleNamespace(frames=torch.zeros(n, t, 3, s, s), state=state)


@pytest.fixture(scope="module")
def body_path(tmp_path_factory):
    return make_body(tmp_path_factory.mktemp("size_rule_body"))


def _fields(inputs) -> dict[str, torch.Tensor]:
    return {k: getattr(inputs, k) for k in ("source", "heatmaps", "flows", "flow_pre", "flow_post")}


def _assert_identical(a, b, what: str) -> None:
    for k, v in _fields(a).items():
        w = getattr(b, k)
        assert v.shape == w.shape and v.dtype == w.dtype, f"{what}: {k} {v.shape} vs {w.shape}"
        assert torch.equal(v, w), f"{what}: {k} differs"


@pytest.mark.parametrize("size", [128, 256])
def test_training_test_split_and_animate_feed_the_generator_identically(tmp_path, body_path, size):
    root = write_synthetic_dataset(tmp_path / "ds", body_path, num_videos=1, num_frames=NUM_FRAMES,
                                   image_size=size, split="test", seed=3, test_list=False)
    (video,) = OfficialDataset(root, "test").videos
    body = load_body_model(body_path)

    # training: one clip of the whole video, source frame 0
    ds = ClipDataset([video], image_size=size, clip_len=NUM_FRAMES, source_first_n=1)
    assert ds.choose(0, 0) == (0, 0)
    batch = default_collate([ds[(0, 0)]])
    (train_w,) = clip_windows(batch, DEFAULT_WINDOW)  # training drops the short tail
    train_in, _ = train_window_inputs(batch, body, train_w)

    # the eval test split: source frame 0, driving frames 0..7 in the schedule's test mode
    seq = TestSequence(video.frame_paths[0], video.pose_paths[0], video.frame_paths, video.pose_paths)
    recorder = RecordingGenerator()
    written = generate_test_split(recorder, body, [seq], tmp_path / "pred", tmp_path / "gt", size, "cpu")
    assert written == NUM_FRAMES and len(recorder.calls) == 2

    # animate: the same JSONs as FramePose records, the schedule's windows
    pipe = AnimatePipeline(None, body)
    poses = [read_kptsmpl(p) for p in video.pose_paths]
    frames = [SimpleNamespace(pose=p) for p in poses]
    src_t = load_frame(video.frame_paths[0], size)[None]
    source = Source(np.zeros((size, size, 3), np.uint8), poses[0])
    schedule = WindowSchedule(DEFAULT_WINDOW)
    animate_in = []
    for w in schedule.windows(NUM_FRAMES):
        item = WindowFrames(w, tuple(frames[i] for i in w.frames), frames[w.pre], frames[w.post])
        animate_in.append(pipe.window_inputs(source, src_t, [item])[0])

    _assert_identical(train_in, recorder.calls[0], f"S={size}, training vs test split")
    _assert_identical(train_in, animate_in[0], f"S={size}, training vs animate")
    _assert_identical(recorder.calls[1], animate_in[1], f"S={size}, padded last window, test split vs animate")

    # the rule itself, against keypoint_heatmaps called with the scaled values by hand
    kp = torch.tensor(np.stack([poses[i].keypoints for i in range(DEFAULT_WINDOW)]), dtype=torch.float32)
    kp[..., :2] *= size / 256
    expected = keypoint_heatmaps(kp, image_size=size, sigma=6.0 * size / 256)
    assert torch.equal(train_in.heatmaps[0], expected)
    assert train_in.heatmaps.shape == (1, DEFAULT_WINDOW, 25, size, size)
    if size == 128:  # the 128 model sees the 256 heatmaps downscaled, not a sigma-6 blob at half the scale
        assert not torch.equal(expected, keypoint_heatmaps(kp, image_size=size, sigma=6.0))


def test_the_schedules_padding_is_the_authors_padding_to_a_multiple_of_the_window():
    """The test split no longer pads the frame list (the old ``TestSequence.padded``): the
    schedule over the L real frames picks the same frames, pre and post as test mode over the
    list padded by repeating the last frame to a multiple of T."""
    T = DEFAULT_WINDOW
    for length in range(1, 20):
        padded = list(range(length)) + [length - 1] * ((-length) % T)
        ours = WindowSchedule(T).windows(length)
        assert len(ours) == len(padded) // T
        for k, w in enumerate(ours):
            start = k * T
            assert list(w.frames) == padded[start:start + T]
            assert w.pre == padded[max(start - 1, 0)]
            assert w.post == padded[min(start + T, len(padded) - 1)]
