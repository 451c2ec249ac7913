"""Training data: one item = one video clip, as in the authors' `DanceDataset`.

An item is a `clip_len`-frame clip (30 in the paper) of one video, its start uniform in
[0, N - clip_len], with a source frame uniform among the first `source_first_n` (20)
frames of the same video. Frames are read from the official layout
(`bdmm_cli.dataset.layout`), normalised to [-1, 1]; per frame the BODY_25 keypoints and
the 85-vector [cam | pose_theta | shape_beta] come from the kptsmpls JSON.

The loop cuts a clip into windows of T = 6 (`clip_windows`, the test mode of
`bdmm_cli.window.WindowSchedule`: window w's "previous" frame is clip frame w*T - 1, frame 0
for the first window, and its "future" frame is w*T + T, the clip's last frame for the last
window) and builds each window's generator inputs with `bdmm_cli.window.window_inputs`
(`window_inputs` here: SMPL vertices through the body model, the T + 2 mesh flows, heatmaps
from the keypoints).

Determinism: which items a process sees is a pure function of (seed, step, rank,
world_size) (`ClipSampler`): the global stream of items is a concatenation of seeded
permutations of the videos, cut into global batches of batch_size x world_size items,
rank r taking its contiguous share. Each item's random choices come from a generator
seeded by its position in that stream. Resuming at step k therefore reproduces exactly
the data an uninterrupted run would have seen, for any number of DataLoader workers.
"""

from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from bdmm_cli.dataset.kptsmpl import read_kptsmpl
from bdmm_cli.dataset.layout import VideoRecord
from bdmm_cli.errors import InputError

_MIX = 0x9E3779B97F4A7C15  # golden-ratio constant for seed mixing
_MASK = (1 << 63) - 1


def mix_seed(*values: int) -> int:
    """A deterministic 63-bit seed from a tuple of integers (splitmix-style)."""
    h = 0x243F6A8885A308D3
    for v in values:
        h = (h ^ (int(v) & 0xFFFFFFFFFFFFFFFF)) * _MIX & 0xFFFFFFFFFFFFFFFF
        h ^= h >> 31
    return h & _MASK


def generator(*values: int) -> torch.Generator:
    return torch.Generator().manual_seed(mix_seed(*values))


# ---------------------------------------------------------------------------- items


def load_frame(path, image_size: int) -> Tensor:
    """PNG -> (3, S, S) float32 in [-1, 1] (resized bilinearly when not already S x S)."""
    from bdmm_cli.video import read_image

    img = torch.from_numpy(np.array(read_image(path))).permute(2, 0, 1).float().div(255.0)
    if img.shape[1:] != (image_size, image_size):
        img = F.interpolate(img[None], size=(image_size, image_size), mode="bilinear",
                            align_corners=False, antialias=True)[0]
    return img * 2.0 - 1.0


def load_pose(path) -> tuple[Tensor, Tensor]:
    """kptsmpls JSON -> keypoints (25, 3) in pixels of the 256 crop (as stored), smpl (85,).

    The keypoints stay in 256-crop pixels whatever the image size: ``window.window_inputs``
    scales them (and the heatmap sigma) to the model size, the same way for every caller.
    """
    pose = read_kptsmpl(path)
    kp = torch.from_numpy(np.array(pose.keypoints, dtype=np.float32))
    return kp, torch.from_numpy(np.array(pose.smpl, dtype=np.float32))


class ClipDataset(Dataset):
    """Map-style data set over videos; keys are `(video_index, item_seed)` from `ClipSampler`.

    `dataset[(v, seed)]` returns a dict:
        frames (L, 3, S, S) [-1, 1]; keypoints (L, 25, 3) in 256-crop pixels; smpl (L, 85);
        source (3, S, S); source_keypoints (25, 3) in 256-crop pixels; source_smpl (85,);
        video, start, source_index: int64 scalars.
    """

    def __init__(self, videos: Sequence[VideoRecord], image_size: int = 256, clip_len: int = 30,
                 source_first_n: int = 20) -> None:
        usable = [v for v in videos if len(v) >= clip_len]
        if not usable:
            longest = max((len(v) for v in videos), default=0)
            raise InputError(f"no video has the {clip_len} frames a training clip needs (longest: {longest})")
        self.videos = list(usable)
        self.skipped = len(videos) - len(usable)
        self.image_size, self.clip_len, self.source_first_n = image_size, clip_len, source_first_n

    def __len__(self) -> int:
        return len(self.videos)

    def choose(self, video: int, seed: int) -> tuple[int, int]:
        """(clip start, source index) of an item: uniform, from the item's own generator."""
        n = len(self.videos[video])
        g = torch.Generator().manual_seed(seed)
        start = int(torch.randint(0, n - self.clip_len + 1, (1,), generator=g))
        source = int(torch.randint(0, min(self.source_first_n, n), (1,), generator=g))
        return start, source

    def __getitem__(self, key: tuple[int, int]) -> dict[str, Tensor]:
        video, seed = key
        rec = self.videos[video]
        start, src = self.choose(video, seed)
        s = self.image_size
        frames = torch.stack([load_frame(p, s) for p in rec.frame_paths[start:start + self.clip_len]])
        poses = [load_pose(p) for p in rec.pose_paths[start:start + self.clip_len]]
        src_kp, src_smpl = load_pose(rec.pose_paths[src])
        return {
            "frames": frames,
            "keypoints": torch.stack([k for k, _ in poses]),
            "smpl": torch.stack([p for _, p in poses]),
            "source": load_frame(rec.frame_paths[src], s),
            "source_keypoints": src_kp,
            "source_smpl": src_smpl,
            "video": torch.tensor(video),
            "start": torch.tensor(start),
            "source_index": torch.tensor(src),
        }


# ---------------------------------------------------------------------------- sampling


class ClipSampler:
    """Which (video, item seed) keys rank `rank` trains on at each step.

    Global item g (g = 0, 1, 2, ...) is video perm_e[g mod n] of epoch e = g // n, where
    perm_e is a permutation of the n videos seeded by (seed, e); its item seed is
    mix(seed, g). Step k uses global items k*B*W ... (k+1)*B*W - 1; rank r the B items
    starting at k*B*W + r*B. Videos are thus sharded between ranks within each step.
    """

    def __init__(self, num_videos: int, batch_size: int, seed: int, rank: int = 0, world_size: int = 1) -> None:
        if num_videos < 1:
            raise InputError("the training set has no usable video")
        self.n, self.batch_size, self.seed = num_videos, batch_size, seed
        self.rank, self.world_size = rank, world_size
        self._perm: dict[int, list[int]] = {}

    def permutation(self, epoch: int) -> list[int]:
        if epoch not in self._perm:
            self._perm = {epoch: torch.randperm(self.n, generator=generator(self.seed, 1, epoch)).tolist()}
        return self._perm[epoch]

    def global_item(self, g: int) -> tuple[int, int]:
        epoch, pos = divmod(g, self.n)
        return self.permutation(epoch)[pos], mix_seed(self.seed, 2, g)

    def keys(self, step: int) -> list[tuple[int, int]]:
        first = step * self.batch_size * self.world_size + self.rank * self.batch_size
        return [self.global_item(first + i) for i in range(self.batch_size)]

    def epoch_of(self, step: int) -> int:
        return (step * self.batch_size * self.world_size) // self.n


class _StepBatches:
    """Batch sampler yielding `sampler.keys(step)` for step in [start, stop)."""

    def __init__(self, sampler: ClipSampler, start: int, stop: int) -> None:
        self.sampler, self.start, self.stop = sampler, start, stop

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        for step in range(self.start, self.stop):
            yield self.sampler.keys(step)

    def __len__(self) -> int:
        return max(0, self.stop - self.start)


def make_loader(dataset: ClipDataset, sampler: ClipSampler, start_step: int, stop_step: int,
                num_workers: int = 0, pin_memory: bool = False) -> DataLoader:
    """A DataLoader yielding the collated batches of steps start_step ... stop_step - 1, in order."""
    return DataLoader(
        dataset, batch_sampler=_StepBatches(sampler, start_step, stop_step), num_workers=num_workers,
        pin_memory=pin_memory, persistent_workers=False,
        prefetch_factor=2 if num_workers > 0 else None,
    )


# ---------------------------------------------------------------------------- windows


def clip_windows(batch: dict[str, Tensor], window: int = 6) -> list:
    """The full windows of a batch of clips (the window schedule's test mode; a tail shorter
    than ``window`` is not trained on)."""
    from bdmm_cli.window import WindowSchedule

    length = batch["smpl"].shape[1]
    return WindowSchedule(window).windows(length)[: length // window]


@torch.no_grad()
def window_inputs(batch: dict[str, Tensor], body, window) -> tuple:
    """The generator inputs and the real frames of one window of a batch of clips.

    Args:
        batch: a collated ``ClipDataset`` batch; body: the BodyModel;
        window: a ``window.Window`` of :func:`clip_windows`.
    Returns:
        (WindowInputs, real (B, T, 3, S, S)); tensors on the device of ``batch``.
    """
    from bdmm_cli.window import gather_window
    from bdmm_cli.window import window_inputs as build

    poses = gather_window(batch["smpl"], batch["keypoints"], window)
    inputs = build(body, batch["source"], batch["source_smpl"], poses)
    frames = batch["frames"]
    return inputs, frames[:, window.start:window.start + len(window.frames)]
