"""Mesh-flow throughput at 256x256 with an SMPL-sized mesh (CPU, and CUDA when present).

    python benchmarks/bench_flow.py            # full run
    python benchmarks/bench_flow.py --quick    # fewer repeats

The mesh is the synthetic body model at SMPL size (13,776 faces like SMPL; 6,944
vertices because it is made of closed tubes instead of one surface), posed upright like
a SPIN fit, camera s = 1.1 so the body covers a realistic part of the frame. Rows:

- `per-flow loop`: one `mesh_flow` call per flow, as the official code calls `get_flow`
  (the baseline of the ratios);
- `window_flows B=1`: the T + 2 = 8 flows of one 6-frame window in one batched call;
- `window_flows B=4`: four windows at once (training batch);
- `rasterize B=8`: the raster pass alone, with its peak memory (limit 2 GB).

Ratios are against the per-flow loop on the same device in the same run.
"""

from __future__ import annotations

import argparse
import math
import resource
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bdmm_cli.body import BodyModel, mesh_flow, project_ndc, rasterize, window_flows  # noqa: E402
from machine import machine_line  # noqa: E402
from bdmm_cli.body.synthetic import synthetic_body_arrays  # noqa: E402

S = 256
T = 6


def smpl_sized_body() -> BodyModel:
    body = BodyModel(synthetic_body_arrays(seed=0, ring=24, rings_per_metre=56.75, min_rings=6))
    assert body.num_faces == 13776, body.num_faces
    return body


def poses(body: BodyModel, n: int, seed: int, device) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    pose = torch.randn(n, 72, generator=g) * 0.25
    pose[:, :3] = torch.tensor([math.pi, 0.0, 0.0])
    betas = torch.randn(n, 10, generator=g) * 0.5
    return body(betas, pose).to(device)


def timeit(fn, device, repeats: int, min_seconds: float = 2.0) -> float:
    """Best time of one call, over at least ``repeats`` calls and ``min_seconds`` of calls
    (a call takes tens of milliseconds, so a handful of calls is all noise)."""
    fn()  # warm-up
    if device.type == "cuda":
        torch.cuda.synchronize()
    best = math.inf
    calls, start = 0, time.perf_counter()
    while calls < repeats or time.perf_counter() - start < min_seconds:
        t0 = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
        calls += 1
    return best


def rss_mb() -> float:
    """Peak RSS of this process in MB (VmHWM: unlike ru_maxrss, not inherited across exec)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def bench(device: torch.device, repeats: int, min_seconds: float) -> list[tuple[str, int, float, str]]:
    body = smpl_sized_body()
    faces = body.faces.to(device)
    rows = []

    def window(b: int, seed: int):
        src = poses(body, b, seed, device)
        frames = poses(body, b * T, seed + 1, device).view(b, T, -1, 3)
        pre, post = poses(body, b, seed + 2, device), poses(body, b, seed + 3, device)
        cam = torch.tensor([[1.1, 0.0, 0.1]], device=device).repeat(b, 1)
        cams = cam[:, None].repeat(1, T, 1)
        return src, cam, frames, cams, pre, post

    src, cam, frames, cams, pre, post = window(1, 0)

    def loop():
        for i in range(T):
            mesh_flow(src, frames[:, i], faces, cam, cams[:, i], S)
        mesh_flow(src, pre, faces, cam, cam, S)
        mesh_flow(src, post, faces, cam, cam, S)

    t = timeit(loop, device, repeats, min_seconds)
    base = (T + 2) / t
    rows.append(("per-flow loop (baseline)", T + 2, t, f"{base:.1f} flows/s  x1.00"))
    t = timeit(lambda: window_flows(src, cam, frames, cams, pre, cam, post, cam, faces, S), device, repeats, min_seconds)
    rows.append(("window_flows B=1", T + 2, t, f"{(T + 2) / t:.1f} flows/s  x{(T + 2) / t / base:.2f}"))
    src4, cam4, frames4, cams4, pre4, post4 = window(4, 10)
    n4 = 4 * (T + 2)
    t = timeit(lambda: window_flows(src4, cam4, frames4, cams4, pre4, cam4, post4, cam4, faces, S), device, repeats, min_seconds)
    rows.append(("window_flows B=4", n4, t, f"{n4 / t:.1f} flows/s  x{n4 / t / base:.2f}"))

    ndc8 = raster_inputs(body, device)
    t = timeit(lambda: rasterize(ndc8, faces, S), device, repeats, min_seconds)
    rows.append(("rasterize B=8", 8, t, f"{8 / t:.1f} images/s, {peak_memory(device)}"))
    return rows


def raster_inputs(body: BodyModel, device) -> torch.Tensor:
    verts8 = poses(body, 8, 20, device)
    return project_ndc(verts8, torch.tensor([[1.1, 0.0, 0.1]], device=device).repeat(8, 1))


def peak_memory(device: torch.device) -> str:
    """Memory of one B=8 raster pass: CUDA peak allocation, or on CPU the peak RSS of a
    fresh subprocess that only loads torch and the inputs and rasterizes once."""
    if device.type == "cuda":
        body = smpl_sized_body()
        ndc8, faces = raster_inputs(body, device), body.faces.to(device)
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        rasterize(ndc8, faces, S)
        torch.cuda.synchronize()
        return f"peak allocated {(torch.cuda.max_memory_allocated() - before) / 2**20:.0f} MB"
    import subprocess
    import tempfile

    body = smpl_sized_body()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "inputs.pt"
        torch.save({"ndc": raster_inputs(body, device), "faces": body.faces}, path)
        out = subprocess.run(
            [sys.executable, __file__, "--memory-probe", str(path)], capture_output=True, text=True, check=True
        )
    return out.stdout.strip().splitlines()[-1]


def memory_probe(path: str) -> None:
    data = torch.load(path, weights_only=True)
    rasterize(data["ndc"][:1], data["faces"], 8)  # load kernels, small
    before = rss_mb()
    rasterize(data["ndc"], data["faces"], S)
    print(f"process peak RSS {rss_mb():.0f} MB (before the pass {before:.0f} MB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--memory-probe", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_probe:
        memory_probe(args.memory_probe)
        return
    if args.threads:
        torch.set_num_threads(args.threads)
    repeats, min_seconds = (2, 0.3) if args.quick else (5, 2.0)
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    print(machine_line())
    print(f"mesh: synthetic SMPL-sized body, 13,776 faces; image {S}x{S}; window T={T} (+2 flows)")
    for device in devices:
        name = torch.cuda.get_device_name() if device.type == "cuda" else "CPU"
        print(f"\n{name}")
        print(f"{'case':28s} {'flows':>5s} {'best s':>8s}  result")
        for label, n, t, extra in bench(device, repeats, min_seconds):
            print(f"{label:28s} {n:5d} {t:8.3f}  {extra}")


if __name__ == "__main__":
    main()
