"""The authors' data-set layout on disk, and their `test_list.csv`.

    <root>/
      train/<video>.mp4/frames/frame_00000.png     256x256 RGB crops, sorted by name
      train/<video>.mp4/kptsmpls/frame_00000.json  BODY_25 keypoints + SMPL (same stem)
      test/<video>.mp4/...                         same
      test_list.csv                                evaluation sequences (pandas CSV)

(`docs/data_path.md` section 1.) Frames without a person are skipped by
the preprocessing, so numbering may have gaps; the order is the sorted file name. Every
video has as many PNGs as JSONs with the same stems.

`test_list.csv` is a pandas CSV with an unnamed index column and the columns `A_paths`
and `B_paths_clean`; each cell is a Python-literal dict `{'ref': [path], 'gen': [paths]}`
with paths relative to the authors' repository, e.g.
`./dataset/UBC_fashion_smpl/test/<vid>.mp4/frames/frame_00012.png`. It is read and
written here with the standard `csv` module and `ast.literal_eval` (no pandas).
"""

from __future__ import annotations

import ast
import csv
import io
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Sequence

from bdmm_cli.errors import InputError

SPLITS = ("train", "test")
FRAMES_DIR = "frames"
POSES_DIR = "kptsmpls"
TEST_LIST = "test_list.csv"
#: Prefix the authors' test list uses for FashionVideo paths.
OFFICIAL_PREFIX = "./dataset/UBC_fashion_smpl"


@dataclass(frozen=True)
class VideoRecord:
    """One video of a split.

    Fields:
        name: the folder name, e.g. "91+20mY7UJS.mp4" (keeps the ".mp4").
        frame_paths: the PNG frames, sorted by file name (N paths).
        pose_paths: the matching kptsmpls JSON files, same stems, same order (N paths).
    """

    name: str
    frame_paths: tuple[Path, ...]
    pose_paths: tuple[Path, ...]

    def __len__(self) -> int:
        return len(self.frame_paths)


@dataclass(frozen=True)
class TestSequence:
    """One row of `test_list.csv`, paths resolved against the data root.

    Fields:
        ref_frame / ref_pose: the source image and its JSON.
        gen_frames / gen_poses: the driving frames and their JSONs (as listed; not padded: the
            authors' padding of the last window is ``window.WindowSchedule``'s).
    """

    __test__ = False  # not a pytest class

    ref_frame: Path
    ref_pose: Path
    gen_frames: tuple[Path, ...]
    gen_poses: tuple[Path, ...]


def _video_record(video_dir: Path) -> VideoRecord:
    frames = sorted((video_dir / FRAMES_DIR).glob("*.png"))
    poses = sorted((video_dir / POSES_DIR).glob("*.json"))
    if [p.stem for p in frames] != [p.stem for p in poses]:
        fs, ps = {p.stem for p in frames}, {p.stem for p in poses}
        missing = sorted(fs ^ ps)[:3]
        raise InputError(
            f"video {video_dir} has {len(frames)} frames and {len(poses)} pose files that do not "
            f"match one to one (e.g. {', '.join(missing)})"
        )
    return VideoRecord(video_dir.name, tuple(frames), tuple(poses))


class OfficialDataset:
    """The videos of one split of a data set in the authors' layout.

    `OfficialDataset(root, "train").videos` lists every `<root>/train/<video>/` holding a
    `frames/` folder, sorted by name. Raises InputError when the split folder is missing,
    holds no video, or a video's frames and pose files do not match.
    """

    def __init__(self, root: Path | str, split: str = "train") -> None:
        if split not in SPLITS:
            raise InputError(f"split must be one of {SPLITS}, got {split!r}")
        self.root = Path(root).expanduser()
        self.split = split
        split_dir = self.root / split
        if not split_dir.is_dir():
            raise InputError(
                f"{split_dir} does not exist; expected the official layout "
                f"<root>/{split}/<video>.mp4/frames + kptsmpls (see `bdmm data prepare --help`)"
            )
        dirs = sorted(d for d in split_dir.iterdir() if (d / FRAMES_DIR).is_dir())
        if not dirs:
            raise InputError(f"{split_dir} holds no video folders with a {FRAMES_DIR}/ subfolder")
        self.videos: list[VideoRecord] = [_video_record(d) for d in dirs]

    def __len__(self) -> int:
        return len(self.videos)

    def __repr__(self) -> str:
        return f"OfficialDataset({str(self.root)!r}, {self.split!r}, videos={len(self.videos)})"


# ---------------------------------------------------------------------------- test list


def resolve_official_path(path: str, root: Path) -> Path:
    """Map a test-list path (`./dataset/<name>/test/<vid>.mp4/frames/x.png`) into `root`.

    The last four components (split, video, frames|kptsmpls, file) are kept.
    """
    parts = PurePosixPath(path.replace("\\", "/")).parts
    if len(parts) < 4 or parts[-2] not in (FRAMES_DIR, POSES_DIR) or parts[-4] not in SPLITS:
        raise InputError(f"test list path {path!r} does not end in <split>/<video>/{FRAMES_DIR}|{POSES_DIR}/<file>")
    return Path(root).joinpath(*parts[-4:])


def _parse_cell(text: str, where: str) -> dict:
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        raise InputError(f"{where}: not a Python-literal dict: {text[:60]!r}") from None
    if (not isinstance(value, dict) or not isinstance(value.get("ref"), list) or len(value["ref"]) != 1
            or not isinstance(value.get("gen"), list) or not value["gen"]):
        raise InputError(f"{where}: expected {{'ref': [path], 'gen': [paths...]}}")
    return value


def read_test_list(csv_path: Path | str, root: Path | str | None = None) -> list[TestSequence]:
    """Read `test_list.csv`; paths are resolved into `root` (default: the CSV's folder)."""
    csv_path = Path(csv_path)
    root = Path(root) if root is not None else csv_path.parent
    try:
        text = csv_path.read_text()
    except FileNotFoundError:
        raise InputError(f"test list {csv_path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read test list {csv_path}: {exc}") from None
    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        raise InputError(f"test list {csv_path} is empty")
    header = rows[0]
    try:
        ia, ib = header.index("A_paths"), header.index("B_paths_clean")
    except ValueError:
        raise InputError(f"test list {csv_path} lacks the columns A_paths and B_paths_clean") from None
    out = []
    for n, row in enumerate(rows[1:], start=2):
        if not row:
            continue
        where = f"{csv_path}:{n}"
        if len(row) <= max(ia, ib):
            raise InputError(f"{where}: expected {len(header)} columns, got {len(row)}")
        a, b = _parse_cell(row[ia], where), _parse_cell(row[ib], where)
        if len(a["gen"]) != len(b["gen"]):
            raise InputError(f"{where}: {len(a['gen'])} frames but {len(b['gen'])} pose files")
        out.append(TestSequence(
            resolve_official_path(a["ref"][0], root), resolve_official_path(b["ref"][0], root),
            tuple(resolve_official_path(p, root) for p in a["gen"]),
            tuple(resolve_official_path(p, root) for p in b["gen"]),
        ))
    return out


def official_path(path: Path, root: Path, prefix: str = OFFICIAL_PREFIX) -> str:
    """`<root>/test/v.mp4/frames/x.png` -> `<prefix>/test/v.mp4/frames/x.png` (the authors' form)."""
    rel = Path(path).resolve().relative_to(Path(root).resolve())
    return prefix.rstrip("/") + "/" + rel.as_posix()


def format_test_list(sequences: Sequence[TestSequence], root: Path | str,
                     prefix: str = OFFICIAL_PREFIX) -> str:
    """The CSV text of `sequences` in the authors' format (pandas `to_csv(index=True)`)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["", "A_paths", "B_paths_clean"])
    for i, seq in enumerate(sequences):
        a = {"ref": [official_path(seq.ref_frame, root, prefix)],
             "gen": [official_path(p, root, prefix) for p in seq.gen_frames]}
        b = {"ref": [official_path(seq.ref_pose, root, prefix)],
             "gen": [official_path(p, root, prefix) for p in seq.gen_poses]}
        writer.writerow([i, repr(a), repr(b)])
    return buf.getvalue()


def write_test_list(csv_path: Path | str, sequences: Sequence[TestSequence], root: Path | str,
                    prefix: str = OFFICIAL_PREFIX, force: bool = False) -> Path:
    """Write `test_list.csv` atomically (refuses to overwrite unless `force`)."""
    from bdmm_cli.fileio import atomic_output

    with atomic_output(Path(csv_path), force=force) as tmp:
        tmp.write_text(format_test_list(sequences, root, prefix))
    return Path(csv_path)


def default_test_list(dataset: OfficialDataset) -> list[TestSequence]:
    """One sequence per test video: the first frame as the source, every frame driven."""
    return [TestSequence(v.frame_paths[0], v.pose_paths[0], v.frame_paths, v.pose_paths)
            for v in dataset.videos if len(v)]


#: Data sets named on the command line (``--data fashionvideo``), as folders under the data root.
DATASET_NAMES = ("fashionvideo", "iper")


def resolve_dataset(data: str | Path, data_root: str | Path | None = None) -> Path:
    """``--data fashionvideo | iper`` (a folder of that name under `data_root`, default
    ``$BDMM_HOME/datasets``) or a folder; InputError naming the fix when it is absent.
    Used by ``bdmm train`` and ``bdmm eval --checkpoint --data``."""
    name = str(data).strip()
    if name.lower() in DATASET_NAMES:
        from bdmm_cli.paths import data_dir

        root = Path(data_root).expanduser() if data_root else data_dir() / "datasets"
        path = root / name.lower()
        if not path.is_dir():
            raise InputError(
                f"data set {name} not found at {path}: "
                + (f"run `bdmm data download {name.lower()} --accept-licenses` (or --from the archive you have)"
                   if name.lower() == "fashionvideo" else
                   f"run `bdmm data download {name.lower()} --from ARCHIVE_OR_FOLDER` with the videos you were given")
                + (", set data_root," if data_root is not None else "") + " or pass --data PATH"
            )
        return path
    path = Path(name).expanduser()
    if not path.is_dir():
        raise InputError(f"data folder {path} does not exist (expected --data fashionvideo, iper or a folder)")
    return path
