"""The authors' test outputs: 256x1280 PNG strips read as two sets of videos.

Their test script writes, per driving frame, one strip of five 256x256 panels side by side
(`docs/official_data_path.md` section 7):

    panel 1 reference | 2 reference render | 3 ground truth | 4 target render | 5 generated

under `<results>/<video>.mp4/frames/<frame>.png`. Their evaluation takes the ground truth
from columns 512:768 and the generated image from 1024: , groups frames into videos by the
folder two levels above each file, and orders them by path.

    gen, gt = strip_videos("eval_bdmm_dancefashion_checkpoints/")
    paired = PairedVideos("strips", tuple(gen), tuple(gt))    # what `evaluate` scores

Each `Video` here reads the same strip files with a `panel` index (0-based: GT = 2,
generated = 4), so nothing is cropped to disk and the numbers equal those of the same
frames saved as separate files.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from bdmm_cli.errors import InputError
from bdmm_cli.metrics.inputs import Video

PANELS = 5
GT_PANEL = 2
GEN_PANEL = 4


def _size(path: Path) -> tuple[int, int]:
    """(H, W) from the image header (nothing decoded)."""
    from PIL import Image

    with Image.open(path) as im:
        return im.size[1], im.size[0]


def strip_problem(path: Path) -> str | None:
    """Why `path` is not one of the authors' strips (W = 5 H), or None."""
    try:
        h, w = _size(path)
    except (OSError, ValueError):
        return "not an image"
    if w != PANELS * h:
        return f"{w}x{h} is not a strip of {PANELS} square panels (e.g. 1280x256)"
    return None


def strip_files(root: Path | str) -> list[Path]:
    """Every PNG under `root` (any depth, hidden entries skipped), sorted by path as their script does."""
    root = Path(root).expanduser()
    return sorted(p for p in root.rglob("*.png")
                  if not any(part.startswith(".") for part in p.relative_to(root).parts))


def is_strip_folder(path: Path | str) -> bool:
    """True when `path` is a folder whose first PNG (any depth) is a 5-panel strip."""
    path = Path(path).expanduser()
    if not path.is_dir():
        return False
    first = next(iter(strip_files(path)), None)
    return first is not None and strip_problem(first) is None


def video_name(path: Path, root: Path) -> str:
    """The video a strip belongs to: the folder above `frames/` (`<video>.mp4/frames/x.png`),
    else the file's own folder (the root itself is called after the root)."""
    parent = path.parent
    if parent.name == "frames" and parent != root:
        parent = parent.parent
    return parent.name if parent != root else root.name


def strip_videos(root: Path | str) -> tuple[list[Video], list[Video]]:
    """(generated, ground truth) videos of a strips folder, sorted by name, frames by path.

    InputError when there is no PNG, or one is not a strip of the first strip's size.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise InputError(f"{root} is not a folder of result strips")
    files = strip_files(root)
    if not files:
        raise InputError(f"{root} holds no PNG strips")
    groups: dict[str, list[Path]] = defaultdict(list)
    for f in files:
        groups[video_name(f, root)].append(f)
    h, w = _size(files[0])
    if w != PANELS * h:
        raise InputError(f"{files[0]}: {strip_problem(files[0])}")
    gen, gt = [], []
    for name in sorted(groups):
        paths = tuple(groups[name])
        gen.append(Video(name, root, paths, len(paths), (h, h), panel=GEN_PANEL))
        gt.append(Video(name, root, paths, len(paths), (h, h), panel=GT_PANEL))
    return gen, gt


def write_strip(path: Path, panels) -> Path:
    """Save five (H, H, 3) uint8 panels side by side as one PNG strip (their layout)."""
    import numpy as np
    from PIL import Image

    if len(panels) != PANELS:
        raise ValueError(f"a strip has {PANELS} panels, got {len(panels)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.concatenate([np.asarray(p, dtype=np.uint8) for p in panels], axis=1)).save(path)
    return path


__all__ = ["GEN_PANEL", "GT_PANEL", "PANELS", "is_strip_folder", "strip_files", "strip_problem", "strip_videos",
           "video_name", "write_strip"]
