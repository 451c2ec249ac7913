"""A folder ready to upload as the project's Hub model repo.

    OUT/README.md                                  model card (license, provenance, paper numbers)
    OUT/<dataset>/generator/model.safetensors      + config.json
    OUT/<dataset>/discriminator/...                (optional)
    OUT/<dataset>/temporal_discriminator/...       (optional)
    OUT/spin/...                                   (optional)
    OUT/registry-snippet.toml                      sha256 + size of every weights file, to
                                                   paste into weights/registry.toml after upload

Upload with `hf upload <repo> OUT .`; then pin the commit in weights/registry.toml.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bdmm_cli.errors import InputError
from bdmm_cli.fileio import atomic_output_dir, sha256_file
from bdmm_cli.state_dict import CONFIG_NAME, WEIGHTS_NAME, Checkpoint, write_folder

# The paper's Table 1 (FashionVideo, 256x256, test set): what the authors' weights reach.
PAPER_NUMBERS = {"SSIM": "0.918", "PSNR": "24.07", "L1": "0.0302", "FID": "14.08", "LPIPS": "0.0478", "FVD": "148.3"}

_REGISTRY_NAMES = {"generator": "generator-{ds}", "discriminator": "discriminator-{ds}",
                   "temporal_discriminator": "temporal-discriminator-{ds}", "spin": "spin"}

AUTHORS_LICENSE_NOTE = (
    "The authors' repository (rocketappslab/BDMM) states no license. These weights are a format "
    "conversion of their release; redistribution requires the authors' permission."
)

CITATION = """@inproceedings{yu2023bidirectionally,
  title={Bidirectionally Deformable Motion Modulation For Video-based Human Pose Transfer},
  author={Yu, Wing-Yin and Po, Lai-Man and Cheung, Ray C.C. and Zhao, Yuzhi and Xue, Yu and Li, Kun},
  booktitle={Proceedings of the IEEE/CVF International Conference on Computer Vision (ICCV)},
  year={2023}
}"""


@dataclass(frozen=True)
class ExportedFile:
    """One weights file of an export: its registry name, path in the repo, sha256 and size."""

    name: str
    kind: str
    repo_path: str
    sha256: str
    size: int


def _model_card(dataset: str, files: list[ExportedFile], license_id: str, license_note: str,
                provenance: str) -> str:
    rows = "\n".join(f"| `{f.repo_path}` | {f.kind.replace('_', ' ')} | {f.size:,} | `{f.sha256}` |" for f in files)
    numbers = " | ".join(PAPER_NUMBERS)
    values = " | ".join(PAPER_NUMBERS.values())
    license_line = f"license: {license_id}" if license_id != "other" else "license: other\nlicense_name: see-model-card"
    return f"""---
{license_line}
library_name: bdmm
tags:
- human-pose-transfer
- video-generation
- bdmm
datasets:
- {dataset}
---

# BDMM weights ({dataset})

Weights of BDMM, "Bidirectionally Deformable Motion Modulation for Video-based Human Pose
Transfer" (Yu et al., ICCV 2023, arXiv 2307.07754), in the format of the `bdmm` command-line
tool: `model.safetensors` (the authors' tensor names, no pickle) and `config.json` (the
network's configuration, also embedded in the safetensors metadata).

    bdmm animate person.jpg dance.mp4 -o out.mp4          # fetches these weights by itself
    BDMM_HUB_REPO=<this repo> bdmm weights download generator-{dataset}

## Files

| file | network | bytes | sha256 |
|---|---|---|---|
{rows}

## Provenance

{provenance}

## License

{license_note}

## Results reported in the paper (FashionVideo, 256x256, test set)

| {numbers} |
|{'---|' * len(PAPER_NUMBERS)}
| {values} |

These are the numbers the paper reports for the authors' model, quoted here for reference;
they were not re-measured for this upload. Reproduce them with `bdmm eval`.

## Citation

```bibtex
{CITATION}
```
"""


def export_release(
    out: str | Path,
    checkpoints: list[Checkpoint],
    *,
    dataset: str,
    license_id: str = "other",
    license_note: str = AUTHORS_LICENSE_NOTE,
    provenance: str = "",
    force: bool = False,
) -> list[ExportedFile]:
    """Write a Hub-ready folder holding `checkpoints` (at most one per kind); atomic."""
    out = Path(out).expanduser()
    if not checkpoints:
        raise InputError("nothing to export: give at least a generator")
    kinds = [c.kind for c in checkpoints]
    if len(set(kinds)) != len(kinds):
        raise InputError(f"export takes one checkpoint per kind, got {kinds}")
    with atomic_output_dir(out, force) as tmp:
        files = []
        for ckpt in checkpoints:
            rel = "spin" if ckpt.kind == "spin" else f"{dataset}/{ckpt.kind}"
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            write_folder(ckpt, tmp / rel)
            weights = tmp / rel / WEIGHTS_NAME
            files.append(ExportedFile(
                name=_REGISTRY_NAMES[ckpt.kind].format(ds=dataset), kind=ckpt.kind, repo_path=f"{rel}/{WEIGHTS_NAME}",
                sha256=sha256_file(weights), size=weights.stat().st_size,
            ))
        prov = provenance or "; ".join(
            f"{c.kind.replace('_', ' ')}: " + ", ".join(f"{k} {v}" for k, v in sorted(c.provenance.items()))
            for c in checkpoints if c.provenance
        ) or "not recorded"
        (tmp / "README.md").write_text(_model_card(dataset, files, license_id, license_note, prov), encoding="utf-8")
        snippet = ["# Paste into weights/registry.toml after uploading this folder; set [hub] revision to the commit."]
        for f in files:
            snippet += [f"[models.{f.name}]", f'filename = "{f.repo_path}"', f'sha256 = "{f.sha256}"',
                        f"size = {f.size}", "published = true", ""]
        (tmp / "registry-snippet.toml").write_text("\n".join(snippet), encoding="utf-8")
    return files


__all__ = ["CONFIG_NAME", "ExportedFile", "PAPER_NUMBERS", "export_release"]
