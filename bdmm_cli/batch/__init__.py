"""`bdmm batch`: many (photo, video) pairs with one loaded pipeline per process, on torchrun.

    from bdmm_cli.batch import read_jobs, run_batch
    from bdmm_cli.pipeline import AnimateConfig

    config = AnimateConfig(weights="fashionvideo", size=512)
    jobs = read_jobs("jobs.csv", "out/", config)         # every row checked, JobListError lists all problems
    summary = run_batch(jobs, "out/", config, progress=True)
    print(summary.ok, summary.failed, summary.report)    # out/batch_report.jsonl

Modules: ``jobs`` (the job list: CSV / JSONL / photos x videos, checks), ``poses`` (each
photo's and video's poses estimated once per batch, shared by the ranks), ``run`` (the
schedule through torch.distributed's store, skip / resume, the report, progress).
"""

from bdmm_cli.batch.jobs import Job, JobListError, read_jobs
from bdmm_cli.batch.poses import BatchPoses
from bdmm_cli.batch.run import REPORT, BatchSummary, JobResult, World, read_report, run_batch

__all__ = ["BatchPoses", "BatchSummary", "Job", "JobListError", "JobResult", "REPORT", "World", "read_jobs",
           "read_report", "run_batch"]
