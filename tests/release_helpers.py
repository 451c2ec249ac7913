"""Stand-ins for the authors' data releases, in their layouts, built small.

- `standin_dataset(folder, body)`: `UBC_fashion_smpl/` with train/ and test/ (synthetic
  videos of `bdmm_cli.dataset.synthetic`, 128x128), `test_list.csv` in the authors' format,
  `train_frames/` and `test_frames/` (copies of each video's frames), and `fid_stat.npz`
  (`mu` 2048, `sigma` 2048x2048, as their FID script stores it).
- `standin_results(data_root, out)`: the authors' test outputs for that data set: per test
  sequence, one 5-panel strip per driving frame (ref | ref render | GT | target render |
  generated) under `<out>/<video>/frames/<frame>.png`, the generated panel a noisy copy of the
  ground truth. The same generated and GT frames are also written as separate files
  (`<out>.pred/<video>/`, `<out>.gt/<video>/`), for the strips == files checks.
- `zip_folder(folder)`: a zip of a folder with the folder's name as its top level.
"""

from __future__ import annotations

import io
import shutil
import tarfile
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image


def standin_dataset(folder: Path, body: Path, num_train: int = 2, num_test: int = 2, train_frames: int = 8,
                    test_frames: int = 16) -> Path:
    """The authors' UBC_fashion_smpl layout under `folder`; returns the data root."""
    from bdmm_cli.dataset.synthetic import write_synthetic_dataset

    root = Path(folder) / "UBC_fashion_smpl"
    write_synthetic_dataset(root, body, num_videos=num_train, num_frames=train_frames, image_size=128, split="train",
                            seed=0, test_list=False)
    write_synthetic_dataset(root, body, num_videos=num_test, num_frames=test_frames, image_size=128, split="test",
                            seed=1, test_list=True)
    for split in ("train", "test"):
        for video in sorted((root / split).iterdir()):
            shutil.copytree(video / "frames", root / f"{split}_frames" / video.name)
    rng = np.random.default_rng(0)
    np.savez_compressed(root / "fid_stat.npz", mu=rng.normal(0, 0.1, 2048), sigma=np.eye(2048) * 0.05)
    return root


def _read(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def standin_results(data_root: Path, out: Path, seed: int = 0) -> Path:
    """The authors' result strips for `data_root`'s test_list.csv (see the module docstring)."""
    from bdmm_cli.dataset.layout import read_test_list

    rng = np.random.default_rng(seed)
    out = Path(out)
    for seq in read_test_list(data_root / "test_list.csv", data_root):
        ref = _read(seq.ref_frame)
        video = seq.ref_frame.parent.parent.name
        for frame in seq.gen_frames:
            gt = _read(frame)
            gen = np.clip(gt.astype(np.int64) + rng.integers(-25, 26, size=gt.shape), 0, 255).astype(np.uint8)
            strip = np.concatenate([ref, ref // 2, gt, gt // 3, gen], axis=1)
            for path, image in ((out / video / "frames" / frame.name, strip),
                                (out.with_name(out.name + ".pred") / video / frame.name, gen),
                                (out.with_name(out.name + ".gt") / video / frame.name, gt)):
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(image).save(path)
    return out


def zip_folder(folder: Path, top: str | None = None, extra: dict[str, bytes] | None = None) -> bytes:
    """A zip of `folder` under `top/` (default: the folder's name), plus `extra` members."""
    folder = Path(folder)
    top = folder.name if top is None else top
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for p in sorted(folder.rglob("*")):
            if p.is_file():
                zf.write(p, f"{top}/{p.relative_to(folder).as_posix()}" if top else p.relative_to(folder).as_posix())
        for name, data in (extra or {}).items():
            zf.writestr(zipfile.ZipInfo(name), data)
    return buf.getvalue()


def tar_folder(folder: Path, links: dict[str, str] | None = None) -> bytes:
    """A .tar.gz of `folder` under its name, plus symbolic links `name -> target`."""
    folder = Path(folder)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        tf.add(folder, arcname=folder.name)
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            tf.addfile(info)
    return buf.getvalue()
