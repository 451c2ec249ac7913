"""The job list of ``bdmm batch``: read, resolve and check every row before any work starts.

A job list is a CSV file (a header row; ``photo,video`` required) or a JSONL file (one
object per line) with the same keys::

    photo,video,output,frames,retarget,side_by_side,overlap,window
    people/ann.jpg,dances/salsa.mp4,,0:120,,,,
    people/bob.jpg,dances/salsa.mp4,bob/salsa.mp4,,camera,true,2,

Empty cells take the batch's defaults (the command's options). Relative paths resolve
against the job list's folder; ``output`` is relative to OUT_DIR (default
``<photo stem>__<video stem>.mp4``) and may not leave it. Or, without a file, every pair of
``--photos`` x ``--videos`` (folders or glob patterns).

:func:`read_jobs` reports every problem at once (:class:`JobListError`, exit code 2), each
with its line number: a job list may come from someone else, and nothing it says may write
outside OUT_DIR.
"""

from __future__ import annotations

import csv
import dataclasses
import glob as globlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from bdmm_cli.errors import BdmmError, InputError
from bdmm_cli.pipeline.checks import OUTPUT_SUFFIXES
from bdmm_cli.pipeline.config import RunSettings
from bdmm_cli.pipeline.windows import parse_frame_range
from bdmm_cli.video.image import PHOTO_SUFFIXES

REQUIRED = ("photo", "video")
OPTIONAL = ("output", "frames", "retarget", "side_by_side", "overlap", "window")
VIDEO_SUFFIXES = (".mp4", ".mov", ".m4v", ".mkv", ".avi", ".webm", ".mpg", ".mpeg")
_TRUE, _FALSE = ("1", "true", "yes", "y", "on"), ("0", "false", "no", "n", "off")


class JobListError(BdmmError):
    """Problems in a job list (all of them in ``details``, one per line)."""

    exit_code = 2


@dataclass(frozen=True)
class Job:
    """One (photo, video) pair of a batch.

    Attributes:
        line: the job's line in the job list (1 = the CSV header), or its number in the
            ``--photos`` x ``--videos`` pairs (from 1).
        photo, video: resolved input files.
        output: the output file, inside OUT_DIR.
        run: the run's settings (the batch defaults with this row's values).
    """

    line: int
    photo: Path
    video: Path
    output: Path
    run: RunSettings

    def describe(self) -> str:
        return f"{self.photo.name} x {self.video.name}"


def read_jobs(jobs: str | Path | None, out_dir: str | Path, defaults: RunSettings = RunSettings(),
              photos: str | None = None, videos: str | None = None) -> list[Job]:
    """The jobs of a job list (``jobs``: CSV or JSONL), or every ``photos`` x ``videos`` pair.

    Raises JobListError listing every problem with its line number (exit code 2).
    """
    out_dir = Path(out_dir).expanduser()
    defaults = defaults.run_settings
    if (jobs is None) == (photos is None and videos is None):
        raise JobListError("give either a job list (JOBS) or --photos and --videos, not both or neither")
    if jobs is None:
        rows, base, problems = _pairs(photos, videos)
    else:
        jobs = Path(os.path.abspath(Path(jobs).expanduser()))
        if not jobs.is_file():
            raise JobListError(f"job list {jobs} not found")
        base = jobs.parent
        rows, problems = _read_rows(jobs)
    result: list[Job] = []
    seen: dict[Path, int] = {}
    for line, row in rows:
        try:
            job = _job(line, row, base, out_dir, defaults)
        except InputError as exc:
            problems.append(f"line {line}: {exc}")
            continue
        if job.output in seen:
            problems.append(f"line {line}: output {job.output} is also the output of line {seen[job.output]}")
            continue
        seen[job.output] = line
        result.append(job)
    if not rows and not problems:
        problems.append("the job list has no jobs")
    if problems:
        where = jobs if jobs is not None else "--photos x --videos"
        raise JobListError(f"{len(problems)} problem(s) in {where}; nothing was run", details=problems)
    return result


# ----------------------------------------------------------------------------------------
def _read_rows(path: Path) -> tuple[list[tuple[int, dict]], list[str]]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise JobListError(f"cannot read job list {path}: {getattr(exc, 'strerror', None) or exc}") from exc
    if path.suffix.lower() in (".jsonl", ".ndjson", ".json"):
        return _jsonl_rows(text)
    return _csv_rows(text)


def _csv_rows(text: str) -> tuple[list[tuple[int, dict]], list[str]]:
    reader = csv.reader(text.splitlines())
    header = next(reader, None)
    if header is None:
        return [], ["line 1: the job list is empty (it needs a header row: photo,video,...)"]
    names = [h.strip().lower() for h in header]
    problems = _header_problems(names, 1)
    if problems:
        return [], problems
    rows = []
    for fields in reader:
        line = reader.line_num
        if not any(f.strip() for f in fields):
            continue
        if len(fields) > len(names):
            problems.append(f"line {line}: {len(fields)} values for {len(names)} columns")
            continue
        rows.append((line, {n: v for n, v in zip(names, fields)}))
    return rows, problems


def _jsonl_rows(text: str) -> tuple[list[tuple[int, dict]], list[str]]:
    rows, problems = [], []
    for line, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
        except ValueError as exc:
            problems.append(f"line {line}: not a JSON object ({exc.msg})")
            continue
        if not isinstance(obj, dict):
            problems.append(f"line {line}: not a JSON object")
            continue
        obj = {str(k).strip().lower(): v for k, v in obj.items()}
        found = _header_problems(list(obj), line, row=True)
        if found:
            problems += found
            continue
        rows.append((line, obj))
    return rows, problems


def _header_problems(names: list[str], line: int, row: bool = False) -> list[str]:
    out = []
    unknown = [n for n in names if n not in REQUIRED + OPTIONAL]
    if unknown:
        out.append(f"line {line}: unknown column(s) {', '.join(map(repr, unknown))} "
                   f"(known: {', '.join(REQUIRED + OPTIONAL)})")
    missing = [n for n in REQUIRED if n not in names]
    if missing:
        out.append(f"line {line}: {'no' if row else 'the header has no'} {' or '.join(missing)} "
                   f"{'key' if row else 'column'}")
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        out.append(f"line {line}: column(s) {', '.join(dup)} given twice")
    return out


def _expand(spec: str, suffixes: tuple[str, ...]) -> list[Path]:
    path = Path(spec).expanduser()
    if path.is_dir():
        found = [p for p in path.iterdir() if p.is_file() and p.suffix.lower() in suffixes]
    else:
        found = [Path(p) for p in globlib.glob(str(path)) if Path(p).is_file()]
    return sorted(found)


def _pairs(photos: str | None, videos: str | None) -> tuple[list[tuple[int, dict]], Path, list[str]]:
    problems = []
    if photos is None or videos is None:
        raise JobListError("--photos and --videos go together")
    ps, vs = _expand(photos, PHOTO_SUFFIXES), _expand(videos, VIDEO_SUFFIXES)
    if not ps:
        problems.append(f"--photos {photos}: no photo found ({', '.join(PHOTO_SUFFIXES)})")
    if not vs:
        problems.append(f"--videos {videos}: no video found ({', '.join(VIDEO_SUFFIXES)})")
    rows = [(n, {"photo": os.path.abspath(p), "video": os.path.abspath(v)}) for n, (p, v) in
            enumerate(((p, v) for p in ps for v in vs), start=1)]
    return rows, Path("."), problems


def _text(value) -> str:
    return "" if value is None else str(value).strip()


def _bool(name: str, value) -> bool:
    if isinstance(value, bool):
        return value
    text = _text(value).lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise InputError(f"{name} must be true or false, got {value!r}")


def _int(name: str, value) -> int:
    if isinstance(value, bool):
        raise InputError(f"{name} must be a whole number, got {value!r}")
    if isinstance(value, int):
        return value
    try:
        return int(_text(value))
    except ValueError:
        raise InputError(f"{name} must be a whole number, got {value!r}") from None


def _job(line: int, row: dict, base: Path, out_dir: Path, defaults: RunSettings) -> Job:
    problems = []

    def check(fn):
        try:
            return fn()
        except InputError as exc:
            problems.append(str(exc))
            return None

    def input_file(name: str) -> Path | None:
        text = _text(row.get(name))
        if not text:
            problems.append(f"no {name}")
            return None
        path = Path(text).expanduser()
        path = path if path.is_absolute() else base / path
        if not path.is_file():
            problems.append(f"{name} {path} not found")
            return None
        return path

    photo, video = input_file("photo"), input_file("video")
    changes: dict = {}
    if _text(row.get("frames")):
        rng = check(lambda: parse_frame_range(_text(row["frames"])))
        if rng is not None:
            changes["start"], changes["stop"] = rng
    if _text(row.get("retarget")):
        changes["retarget"] = _text(row["retarget"])
    for name in ("side_by_side",):
        if _text(row.get(name)):
            value = check(lambda: _bool(name, row[name]))
            if value is not None:
                changes[name] = value
    for name in ("overlap", "window"):
        if _text(row.get(name)):
            value = check(lambda: _int(name, row[name]))
            if value is not None:
                changes[name] = value
    run = dataclasses.replace(defaults, **changes)
    check(run.validate_run)
    output = check(lambda: _output(row, photo, video, out_dir))
    if problems:
        raise InputError("; ".join(problems))
    return Job(line, photo, video, output, run)


def _output(row: dict, photo: Path | None, video: Path | None, out_dir: Path) -> Path | None:
    text = _text(row.get("output"))
    if not text:
        if photo is None or video is None:
            return None
        text = f"{photo.stem}__{video.stem}.mp4"
    rel = Path(text)
    if rel.is_absolute() or text.startswith("~"):
        raise InputError(f"output {text} must be a path inside OUT_DIR, not an absolute one")
    if ".." in rel.parts:
        raise InputError(f"output {text} leaves OUT_DIR ('..')")
    if rel.suffix.lower() not in OUTPUT_SUFFIXES:
        raise InputError(f"output {text} must be an .mp4 file (or {', '.join(OUTPUT_SUFFIXES[1:])})")
    root = Path(os.path.abspath(out_dir))
    path = root / rel
    real_root = root.resolve()
    try:  # a symbolic link inside OUT_DIR may not lead out of it either
        path.resolve().relative_to(real_root)
    except ValueError:
        raise InputError(f"output {text} leaves OUT_DIR (through a symbolic link)") from None
    if path.name == "batch_report.jsonl" or ".bdmm-batch" in rel.parts:
        raise InputError(f"output {text} is a name bdmm batch keeps for itself")
    return path


__all__ = ["Job", "JobListError", "OPTIONAL", "REQUIRED", "read_jobs"]
