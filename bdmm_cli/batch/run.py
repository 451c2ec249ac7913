"""Run a batch of jobs: one loaded pipeline per process, jobs handed out through torch.distributed.

    from bdmm_cli.batch import read_jobs, run_batch
    from bdmm_cli.pipeline import AnimateConfig

    config = AnimateConfig(weights="fashionvideo")
    summary = run_batch(read_jobs("jobs.csv", "out/", config), "out/", config)

Without torchrun this is one process. Under ``torchrun --nproc-per-node N`` each process
(rank) loads the pipeline once on its ``LOCAL_RANK``'s GPU (the CPU: gloo), and takes the
next job from an atomic counter in torch.distributed's key-value store (``store.add``):
the jobs are ordered longest driving video first, so a rank that finishes early takes
more. Steps of one job:

1. **skip** it when its output exists and ``OUT_DIR/.bdmm-batch/jobs/<id>.json`` records
   the same key (content hashes of the photo and video, every setting, the weights'
   identity: ``job_key``);
2. **record** the key (before the output can appear, so a rerun knows the file is ours);
3. **animate** with the process's ``AnimatePipeline`` and its :class:`BatchPoses` pose
   source (each photo and driving video estimated once per batch, by whichever rank gets
   there first); the pipeline writes to a temporary file and renames it (atomic publish),
   and keeps each finished window in its run store, so a killed job resumes;
4. **report**: one JSON object appended to ``OUT_DIR/batch_report.jsonl`` under an
   exclusive lock, and the shared counters (done / skipped / failed / frames) updated.

An error of one job (``BdmmError``: corrupt video, nobody in the photo, unreadable file)
fails that job alone with the one-line message the CLI prints.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import json
import os
import shutil
import socket
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from bdmm_cli.batch.jobs import Job
from bdmm_cli.batch.poses import BatchPoses
from bdmm_cli.errors import BdmmError, InputError
from bdmm_cli.fileio import atomic_write_text, file_mode, sweep_stale

REPORT = "batch_report.jsonl"
STATE_DIR = ".bdmm-batch"
#: Counters kept in the store (summed over ranks).
COUNTERS = ("ok", "skipped", "failed", "frames", "photos_posed", "videos_posed")


@dataclass(frozen=True)
class JobResult:
    """One line of ``batch_report.jsonl``."""

    photo: str
    video: str
    output: str
    status: str  # ok | skipped | failed
    error: str | None
    frames: int
    seconds: float
    rank: int
    host: str
    line: int = 0
    run: str = ""

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))


@dataclass(frozen=True)
class BatchSummary:
    """What a batch did (counts summed over all ranks; ``failures`` read from the report).

    ``photos_posed`` / ``videos_posed``: pose estimations run (each photo and each video's
    frame range once per batch; 0 for inputs whose jobs were all skipped or failed before).
    """

    total: int
    ok: int
    skipped: int
    failed: int
    frames: int
    seconds: float
    photos_posed: int
    videos_posed: int
    world_size: int
    rank: int
    report: Path
    failures: list[dict] = field(default_factory=list)

    @property
    def jobs_per_hour(self) -> float:
        done = self.ok + self.skipped + self.failed
        return 3600.0 * done / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict:
        out = dataclasses.asdict(self)
        out["report"] = str(self.report)
        out["jobs_per_hour"] = round(self.jobs_per_hour, 2)
        return out


# ----------------------------------------------------------------------------------------
# processes
# ----------------------------------------------------------------------------------------
@dataclass
class World:
    """This process in the batch: rank, world size, its device and the shared store."""

    rank: int
    size: int
    local_rank: int
    device: str
    store: object  # a torch.distributed Store (HashStore in a single process)
    distributed: bool = False

    @classmethod
    def from_env(cls, device: str = "auto") -> "World":
        """torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR/PORT), or one process."""
        import torch
        import torch.distributed as dist

        from bdmm_cli.device import resolve_device
        from bdmm_cli.train.distributed import env_world

        rank, size, local = env_world()
        dev = resolve_device(device, local if size > 1 else None)
        if size <= 1:
            return cls(0, 1, 0, str(dev), dist.HashStore())
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        store, rank, size = next(dist.rendezvous("env://", rank, size))
        if not dist.is_initialized():
            dist.init_process_group("nccl" if dev.type == "cuda" else "gloo", store=dist.PrefixStore("pg", store),
                                    rank=rank, world_size=size)
        return cls(rank, size, local, str(dev), dist.PrefixStore("bdmm-batch", store), distributed=True)

    def close(self) -> None:
        import torch.distributed as dist

        if self.distributed and dist.is_initialized():
            dist.destroy_process_group()

    def count(self, name: str, amount: int = 1) -> int:
        return int(self.store.add(name, amount))

    def counters(self) -> dict[str, int]:
        return {name: self.count(name, 0) for name in COUNTERS}

    def shared_id(self) -> str:
        """An id of this run, the same on every rank (rank 0 draws it)."""
        if self.rank == 0:
            self.store.set("run_id", uuid.uuid4().hex[:12])
        return self.store.get("run_id").decode()


# ----------------------------------------------------------------------------------------
# the schedule, keys, records and the report
# ----------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=4096)
def _video_frames(video: Path) -> int:
    from bdmm_cli.video import probe_video

    try:
        return probe_video(video).num_frames or 0
    except (BdmmError, OSError):
        return 0


def job_frames(job: Job) -> int:
    """The frames a job animates, from the video's header (0 when it cannot be read; each
    video probed once per process)."""
    total = _video_frames(job.video)
    stop = total if job.run.stop is None else min(total, job.run.stop)
    return max(stop - job.run.start, 0)


def schedule(jobs: list[Job]) -> list[Job]:
    """Longest driving video first; a video's jobs together (its poses stay in memory); then
    the job list's order. The same on every rank."""
    frames = {v: 0 for v in {j.video for j in jobs}}
    lengths = {j: job_frames(j) for j in jobs}
    for j, n in lengths.items():
        frames[j.video] = max(frames[j.video], n)
    return sorted(jobs, key=lambda j: (-frames[j.video], str(j.video), j.line))


def job_key(pipe, job: Job) -> str:
    """sha256 of what determines a job's output file: the run store's key document (inputs'
    content hashes, the weights' identity, every setting of the generated frames) + the
    encoding settings."""
    from bdmm_cli.pipeline.cache import run_key

    run = job.run
    doc = pipe._key_doc(job.photo, job.video, run)
    doc.update(batch=1, size=run.size, side_by_side=run.side_by_side, preview=run.preview, batch_windows=run.batch)
    return run_key(doc)


def _record_path(out_dir: Path, job: Job) -> Path:
    name = hashlib.sha256(str(job.output.relative_to(out_dir)).encode()).hexdigest()[:24]
    return out_dir / STATE_DIR / "jobs" / f"{name}.json"


def _recorded_key(path: Path) -> str | None:
    try:
        return json.loads(path.read_text()).get("key")
    except (OSError, ValueError, AttributeError):
        return None


def append_report(path: Path, result: JobResult) -> None:
    """Append one line to the report, atomically with respect to the other ranks (flock)."""
    import fcntl

    data = (result.to_json() + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, file_mode())
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, data)
    finally:
        os.close(fd)  # releases the lock


def read_report(path: Path, run: str | None = None) -> list[dict]:
    """The report's objects (of one run id when given); unreadable lines are skipped."""
    out = []
    with contextlib.suppress(FileNotFoundError):
        for line in Path(path).read_text().splitlines():
            with contextlib.suppress(ValueError):
                obj = json.loads(line)
                if isinstance(obj, dict) and (run is None or obj.get("run") == run):
                    out.append(obj)
    return out


def _message(exc: BaseException) -> str:
    """The one line the CLI prints for an error (``commands._common.handle_errors``)."""
    if isinstance(exc, BdmmError):
        return str(exc)
    if isinstance(exc, OSError):
        import errno

        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return "no space left on the device" + (f" while writing {exc.filename}" if exc.filename else "")
        return f"{exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else "")
    return f"unexpected {type(exc).__name__}: {' '.join(str(exc).split())}"


# ----------------------------------------------------------------------------------------
# the batch
# ----------------------------------------------------------------------------------------
def run_one(pipe, job: Job, out_dir: Path, force: bool = False,
            on_window: Callable | None = None) -> tuple[str, str | None, int]:
    """Steps 1-3 for one job -> (status, error, frames)."""
    record = _record_path(out_dir, job)
    try:
        key = job_key(pipe, job)
        recorded = _recorded_key(record)
        if job.output.exists() and recorded == key:
            return "skipped", None, 0
        ours = recorded is not None  # an output of an earlier run of this batch with other inputs/settings
        if job.output.exists() and not (ours or force):
            raise InputError(f"output {job.output} already exists and is not from this batch; "
                             "use --force to overwrite it")
        job.output.parent.mkdir(parents=True, exist_ok=True)
        record.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(record, json.dumps({"output": str(job.output.relative_to(out_dir)), "key": key}))
        run = dataclasses.replace(job.run, force=job.output.exists())
        result = pipe(job.photo, job.video, job.output, run, on_window=on_window)
        return "ok", None, result.num_frames
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # one bad job fails alone
        return "failed", _message(exc), 0


def run_batch(jobs: list[Job], out_dir: str | Path, config=None, pipeline=None, progress: bool = False,
              world: World | None = None, log: Callable[[str], None] | None = None) -> BatchSummary:
    """Run ``jobs`` (from :func:`read_jobs`) into ``out_dir``; returns the summary (rank 0:
    of the whole batch, after every rank's jobs ended; other ranks: when their part is done).

    Args:
        config: LoadSettings / AnimateConfig for the pipeline (weights, body model, device,
            ...) and ``force``; ignored for loading when ``pipeline`` is given.
        pipeline: an ``AnimatePipeline`` already loaded (the Python API's load once).
        progress: rank 0 draws a batch bar and a bar for its current job.
        world: the processes (default: ``World.from_env``, torchrun's environment).
        log: where ranks other than 0 write one line per finished job (default: stderr).
    """
    from bdmm_cli.pipeline import AnimateConfig

    config = config if config is not None else AnimateConfig()
    out_dir = Path(os.path.abspath(Path(out_dir).expanduser()))
    out_dir.mkdir(parents=True, exist_ok=True)
    own_world = world is None
    world = world or World.from_env(getattr(config, "device", "auto"))
    try:
        return _run(jobs, out_dir, config, pipeline, progress, world, log)
    finally:
        if own_world:
            world.close()


def _run(jobs, out_dir, config, pipeline, progress, world, log) -> BatchSummary:
    from bdmm_cli.pipeline import AnimatePipeline
    from bdmm_cli.pipeline.config import LoadSettings

    start = time.perf_counter()
    run_id = world.shared_id()
    host = socket.gethostname()
    for folder in {out_dir} | {j.output.parent for j in jobs}:
        sweep_stale(folder)  # temporaries of killed processes of this machine
    order = schedule(jobs)
    if pipeline is None:
        load = dataclasses.replace(config.load_settings if hasattr(config, "load_settings") else LoadSettings(),
                                   device=world.device)
        pipeline = AnimatePipeline.from_config(load, with_generator=not getattr(config, "preview", False))
    poses = BatchPoses(out_dir / STATE_DIR / "poses", pipeline)
    previous_source, pipeline.pose_source = pipeline.pose_source, poses
    force = bool(getattr(config, "force", False))
    report = out_dir / REPORT
    display = _Display(len(order), progress and world.rank == 0, world)
    say = log or _stderr
    try:
        with display:
            while True:
                index = world.count("next") - 1
                if index >= len(order):
                    break
                job = order[index]
                display.start_job(job)
                t0 = time.perf_counter()
                status, error, frames = run_one(pipeline, job, out_dir, force, on_window=display.window)
                result = JobResult(str(job.photo), str(job.video), str(job.output), status, error, frames,
                                   round(time.perf_counter() - t0, 3), world.rank, host, job.line, run_id)
                append_report(report, result)
                world.count(status)
                world.count("frames", frames)
                display.end_job(result)
                if world.rank != 0:
                    say(_job_line(result))
            world.count("photos_posed", poses.photos_estimated)
            world.count("videos_posed", poses.videos_estimated)
            world.count("ranks_done")
            if world.rank == 0:  # the summary covers every rank: wait for the others to finish
                while world.count("ranks_done", 0) < world.size:
                    display.refresh()
                    time.sleep(0.2)
                display.refresh()
    finally:
        pipeline.pose_source = previous_source
    counts = world.counters()
    if world.rank == 0:
        shutil.rmtree(out_dir / STATE_DIR / "poses", ignore_errors=True)
    failures = [r for r in read_report(report, run_id) if r.get("status") == "failed"] if world.rank == 0 else []
    failures.sort(key=lambda r: r.get("line", 0))
    return BatchSummary(total=len(order), ok=counts["ok"], skipped=counts["skipped"], failed=counts["failed"],
                        frames=counts["frames"], seconds=round(time.perf_counter() - start, 3),
                        photos_posed=counts["photos_posed"], videos_posed=counts["videos_posed"],
                        world_size=world.size, rank=world.rank, report=report, failures=failures)


def _stderr(line: str) -> None:
    import sys

    print(line, file=sys.stderr, flush=True)


def _job_line(r: JobResult) -> str:
    what = f"{Path(r.photo).name} x {Path(r.video).name} -> {r.output}"
    if r.status == "failed":
        return f"[rank {r.rank}] failed {what}: {r.error}"
    extra = f" ({r.frames} frames, {r.seconds:.1f} s)" if r.status == "ok" else ""
    return f"[rank {r.rank}] {r.status} {what}{extra}"


class _Display:
    """Rank 0's two bars: the batch (jobs ended / total, from the store's shared counters,
    failed count, frames/s) and its current job (frames)."""

    def __init__(self, total: int, enabled: bool, world: World) -> None:
        from bdmm_cli.progress import progress_bar

        self.enabled, self.world, self.total = enabled, world, total
        self.bar = progress_bar(enabled=enabled, field="info")
        self.batch = self.bar.add_task("batch", total=total, info="", visible=enabled)
        self.job = None
        self.t0 = time.perf_counter()
        self._last = 0.0

    def __enter__(self):
        self.bar.__enter__()
        return self

    def __exit__(self, *exc):
        self.bar.__exit__(*exc)

    def start_job(self, job: Job) -> None:
        if not self.enabled:
            return
        if self.job is not None:
            self.bar.remove_task(self.job)
        frames = job_frames(job)
        self.job = self.bar.add_task(job.describe()[:48], total=frames or None, info="")
        self.refresh(force=True)

    def window(self, window) -> None:
        if self.enabled and self.job is not None:
            self.bar.update(self.job, advance=window.valid - window.hold)
            self.refresh()

    def end_job(self, result: JobResult) -> None:
        if self.enabled:
            self.refresh(force=True)

    def refresh(self, force: bool = False) -> None:
        if not self.enabled or (not force and time.perf_counter() - self._last < 0.5):
            return
        self._last = time.perf_counter()
        c = self.world.counters()
        ended = c["ok"] + c["skipped"] + c["failed"]
        rate = c["frames"] / max(time.perf_counter() - self.t0, 1e-9)
        info = f"{c['failed']} failed" + (f", {c['skipped']} skipped" if c["skipped"] else "")
        info += f", {rate:.2f} frames/s" + (f", {self.world.size} ranks" if self.world.size > 1 else "")
        self.bar.update(self.batch, completed=ended, info=info)


__all__ = ["BatchSummary", "JobResult", "World", "append_report", "job_key", "read_report", "run_batch",
           "run_one", "schedule"]
