"""The authors' release, rebuilt small for `bdmm setup` tests.

- `smpldataset_files()`: what the authors' SMPLDataset archive holds: `smpl_model.pkl` (the
  synthetic body model pickled in SMPL's dict-of-arrays format), `spin_ckpt.pth` (SPIN's flat
  state dict), `gmm_08.pkl` (SMPLify's prior: a latin-1-readable pickle of a dict with
  means 8x69, covars 8x69x69, weights 8, docs/smplify.md) and `openpose_body25.pth`
  (the 327-tensor BODY_25 layout). Big tensors are stored as expanded scalars, so the files
  stay small while their shapes are the real ones.
- `fashionvideo_files()`: latest_net_G.pth (a tiny generator, DataParallel `module.` keys),
  latest_net_D.pth, latest_net_D_V.pth (tiny discriminators), in the authors' key layout.
- `zip_bytes` / `tar_gz_bytes`: archives with the authors' folder layout.
"""

from __future__ import annotations

import io
import pickle
import tarfile
import zipfile

import numpy as np
import torch

TINY_G = dict(ngf=8, img_f=32, style_dim=32)
TINY_D = dict(ndf=8, img_f=32, layers=3)


def _save(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def _expanded(shapes: dict[str, tuple[int, ...]], scale: float) -> dict[str, torch.Tensor]:
    return {k: torch.tensor(7) if k.endswith("num_batches_tracked") else torch.tensor(scale * (i + 1)).expand(s)
            for i, (k, s) in enumerate(shapes.items())}


def spin_state_dict() -> dict[str, torch.Tensor]:
    from bdmm_cli.pose.hmr import spin_expected_shapes

    return _expanded(spin_expected_shapes(), 1e-4)


def openpose_state_dict() -> dict[str, torch.Tensor]:
    from bdmm_cli.pose.openpose import OpenPoseBody25

    with torch.device("meta"):
        shapes = {k: tuple(v.shape) for k, v in OpenPoseBody25().state_dict().items()}
    return _expanded(shapes, 1e-5)


def gmm_arrays(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(8, 69, 69)) * 0.1
    w = rng.uniform(0.5, 1.5, size=8)
    return {"means": rng.normal(size=(8, 69)) * 0.2, "covars": a @ a.transpose(0, 2, 1) + 0.05 * np.eye(69),
            "weights": w / w.sum()}


def smpl_pickle_bytes() -> bytes:
    from bdmm_cli.body.synthetic import synthetic_body_arrays

    return pickle.dumps(synthetic_body_arrays(0), protocol=2)


def smpldataset_files() -> dict[str, bytes]:
    return {
        "gmm_08.pkl": pickle.dumps(gmm_arrays(), protocol=2),
        "openpose_body25.pth": _save(openpose_state_dict()),
        "smpl_model.pkl": smpl_pickle_bytes(),
        "spin_ckpt.pth": _save(spin_state_dict()),
    }


def networks(seed: int = 0):
    from bdmm_cli.model import BDMMGenerator, DiscriminatorConfig, GeneratorConfig, SpatialDiscriminator, TemporalDiscriminator

    torch.manual_seed(seed)
    return (BDMMGenerator(GeneratorConfig(**TINY_G)), SpatialDiscriminator(DiscriminatorConfig(**TINY_D)),
            TemporalDiscriminator(DiscriminatorConfig(**TINY_D)))


def fashionvideo_files(seed: int = 0) -> dict[str, bytes]:
    g, d, d_v = networks(seed)
    return {"latest_net_G.pth": _save({f"module.{k}": v for k, v in g.state_dict().items()}),
            "latest_net_D.pth": _save(d.state_dict()), "latest_net_D_V.pth": _save(d_v.state_dict())}


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name), data)
    return buf.getvalue()


def tar_gz_bytes(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def smpldataset_zip() -> bytes:
    """The authors' SMPLDataset archive: checkpoints/{gmm_08.pkl, openpose_body25.pth, smpl_model.pkl, spin_ckpt.pth}."""
    return zip_bytes({f"checkpoints/{k}": v for k, v in smpldataset_files().items()})


def fashionvideo_zip(seed: int = 0) -> bytes:
    """The authors' FashionVideo archive: bdmm_dancefashion_checkpoints/latest_net_{G,D,D_V}.pth."""
    return zip_bytes({f"bdmm_dancefashion_checkpoints/{k}": v for k, v in fashionvideo_files(seed).items()})


def mean_params_bytes() -> bytes:
    buf = io.BytesIO()
    np.savez(buf, pose=np.linspace(0, 1, 144), shape=np.linspace(0, 1, 10), cam=np.array([0.9, 0.0, 0.0]))
    return buf.getvalue()


def spin_data_tar() -> bytes:
    """SPIN's data.tar.gz, reduced to the member setup reads (plus one it ignores)."""
    return tar_gz_bytes({"data/smpl_mean_params.npz": mean_params_bytes(), "data/README.txt": b"other files"})
