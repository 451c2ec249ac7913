"""`bdmm eval --paper fashionvideo`: the paper's Table 1 next to the authors' released images.

    report = paper_comparison("fashionvideo", accept_licenses=True)
    report["rows"]   # [{"metric": "ssim", "paper": 0.918, "released": 0.91.., "difference": ...}, ...]

Steps:
  1. the data set (for `fid_stat.npz` and `test_frames/`) and the authors' generated
     test-set strips, each downloaded by name when missing (`dataset.download`);
  2. every metric with protocol bdmm on the strips (`evaluate`, layout "strips"): the ground
     truth is panel 3, FID's real statistics the data set's `fid_stat.npz`, FVD's real
     videos `test_frames/`, as the authors' evaluation script;
  3. one row per metric of Table 1: the paper's value, the value measured on the released
     images, and the difference (measured - paper).

Table 1's FVD is on the test set with 128-frame clips (the project README's reading of the
paper), so the row compares it with `fvd_128f` (StyleGAN-V's `fvd2048_128f`, 50 runs, real
clips from `test_frames/`); the JSON carries every variant the script computes.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from bdmm_cli.errors import InputError


@dataclass(frozen=True)
class PaperTable:
    """The numbers a paper reports for one data set, and where the released outputs live.

    Fields:
        name: the --paper value; data: the data set's download name; results: the download
            name of the authors' generated test images.
        source: where the numbers are printed.
        values: metric -> reported value (keys of `evaluate`'s result, "fvd" = `fvd_key`).
        fvd_key: the FVD variant the "fvd" row is compared with.
    """

    name: str
    data: str
    results: str
    source: str
    values: dict = field(default_factory=dict)
    fvd_key: str = "fvd_128f"


#: BDMM, ICCV 2023 (arXiv 2307.07754), Table 1, FashionVideo row of BDMM.
PAPERS = {
    "fashionvideo": PaperTable(
        name="fashionvideo", data="fashionvideo", results="fashionvideo-results",
        source="BDMM (ICCV 2023, arXiv 2307.07754), Table 1, FashionVideo",
        values={"ssim": 0.918, "psnr": 24.07, "l1": 0.0302, "fid": 14.08, "lpips": 0.0478, "fvd": 148.3},
    ),
}
#: Row order of the comparison (the paper's column order).
ROWS = ("ssim", "psnr", "l1", "fid", "lpips", "fvd")


def get_paper(name: str) -> PaperTable:
    try:
        return PAPERS[name]
    except KeyError:
        raise InputError(f"no paper table for {name!r}; known: {', '.join(PAPERS)}") from None


def comparison_rows(table: PaperTable, result: dict) -> list[dict]:
    """One row per metric: paper value, measured value (None when not computed), difference."""
    rows = []
    for metric in ROWS:
        key = table.fvd_key if metric == "fvd" else metric
        value = result.get(key)
        if isinstance(value, dict):
            value = value.get("mean")
        paper = table.values.get(metric)
        rows.append({"metric": metric, "key": key, "paper": paper, "released": value,
                     "difference": None if value is None or paper is None else value - paper})
    return rows


def paper_comparison(
    name: str = "fashionvideo",
    config=None,
    networks=None,
    *,
    accept_licenses: bool = False,
    data_root: str | Path | None = None,
    progress: bool = False,
    announce: Callable[[str], None] = lambda _msg: None,
) -> dict:
    """Steps 1-3 of the module docstring.

    Args:
        name: a key of `PAPERS`.
        config: an EvalConfig (its metrics, layout, protocol, FID and FVD sources are set here;
            device, batch size, seed, FVD runs and the cache are kept).
        networks: FeatureNetworks (default: the registry's, as `bdmm setup --eval` installs them).
        accept_licenses: allow the downloads of step 1 (their licenses are announced first).
    Returns:
        {"paper": name, "source": ..., "rows": [...], "data": path, "results": path, "eval": evaluate's result}
    """
    from bdmm_cli.dataset.download import download_dataset
    from bdmm_cli.metrics.evaluate import EvalConfig, evaluate

    table = get_paper(name)
    # 1. what is missing is downloaded (a published copy is used as it is)
    data = download_dataset(table.data, accept_licenses=accept_licenses, data_root=data_root, progress=progress,
                            announce=announce).path
    results = download_dataset(table.results, accept_licenses=accept_licenses, data_root=data_root,
                               progress=progress, announce=announce).path
    missing = [p.name for p in (data / "fid_stat.npz", data / "test_frames") if not p.exists()]
    if missing:
        raise InputError(f"{data} lacks {' and '.join(missing)} (prepared from the videos?): the comparison needs the "
                         f"authors' data set: bdmm data download {table.data} --force --accept-licenses")
    # 2. every metric, the authors' protocol, on the strips
    config = dataclasses.replace(config or EvalConfig(), metrics="all", protocol="bdmm", layout="strips",
                                 fid_stats=data / "fid_stat.npz", fvd_real=data / "test_frames")
    result = evaluate(results, None, config, networks, progress=progress)
    # 3. the comparison
    return {"paper": name, "source": table.source, "rows": comparison_rows(table, result),
            "data": str(data), "results": str(results), "eval": result}


__all__ = ["PAPERS", "PaperTable", "comparison_rows", "get_paper", "paper_comparison"]
