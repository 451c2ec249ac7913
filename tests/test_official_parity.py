"""Parity with the authors' networks: recorded forward passes in tests/data/official_bdmm
(a copy of ../shared/fixtures/official_bdmm; see conftest.py).

The generator, D and D_V load ``make_state_dict(spec, net, seed)`` (the fixture's own seed)
through ``load_official_state_dict`` (strict) and must reproduce every recorded output at
relative L2 error < 1e-4 (float32 outputs) or < 1e-3 (states stored as float16).

Other recorded cases: point ``BDMM_PARITY_FIXTURE`` (an .npz recorded the same way) and
``BDMM_PARITY_SPEC`` (its spec.json; default: beside the .npz) at them. Batch size, image
size, window length and number of windows are read from the arrays.

``test_trace_*`` walks ``trace_128.npz`` module by module (the tool to localise a mismatch:
the first failing name is where the implementations part).
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from bdmm_cli.model import (
    BDMMGenerator,
    SpatialDiscriminator,
    TemporalDiscriminator,
    WindowInputs,
    load_official_state_dict,
)

TOL_F32 = 1e-4
TOL_F16 = 1e-3


def rel_l2(ours: torch.Tensor, ref: torch.Tensor) -> float:
    ours, ref = ours.detach().double(), ref.detach().double()
    return float((ours - ref).norm() / ref.norm().clamp_min(1e-30))


def _load_weights_module(spec_path: Path, fixture_dir: Path | None):
    for cand in (spec_path.parent / "weights.py", (fixture_dir or spec_path.parent) / "weights.py"):
        if cand.is_file():
            spec = importlib.util.spec_from_file_location("official_bdmm_weights", cand)
            mod = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(mod)
            return mod
    pytest.skip(f"weights.py not found beside {spec_path}")


@pytest.fixture(scope="module")
def parity_paths(request) -> tuple[Path, Path, Path | None]:
    env_fx = os.environ.get("BDMM_PARITY_FIXTURE")
    fixture_dir = None if env_fx else request.getfixturevalue("fixture_dir")
    npz = Path(env_fx) if env_fx else fixture_dir / "case_a.npz"
    spec = Path(os.environ.get("BDMM_PARITY_SPEC", npz.parent / "spec.json"))
    for p in (npz, spec):
        if not p.is_file():
            pytest.skip(f"parity file not found: {p}")
    return npz, spec, fixture_dir


def _nets(spec_path: Path, fixture_dir: Path | None, seed: int):
    fw = _load_weights_module(spec_path, fixture_dir)
    spec = fw.load_spec(spec_path)
    g = BDMMGenerator().eval()
    d = SpatialDiscriminator().eval()
    dv = TemporalDiscriminator().eval()
    for net, module in (("G", g), ("D", d), ("D_V", dv)):
        load_official_state_dict(module, fw.make_state_dict(spec, net, seed))
    return g, d, dv


class FirstCall:
    """Forward hooks keeping each named module's output at its first call."""

    def __init__(self, modules: dict[str, torch.nn.Module]) -> None:
        self.out: dict[str, object] = {}
        self.handles = [m.register_forward_hook(self._hook(n)) for n, m in modules.items()]

    def _hook(self, name: str):
        def hook(module, args, output):
            self.out.setdefault(name, output)

        return hook

    def remove(self) -> None:
        for h in self.handles:
            h.remove()


@pytest.fixture(scope="module")
def parity(parity_paths):
    """Run every window of the case in order with the carried state; collect (name, ours, ref, tol)."""
    npz_path, spec_path, fixture_dir = parity_paths
    z = np.load(npz_path)
    arr = lambda k: torch.from_numpy(z[k].astype(np.float32))  # noqa: E731
    g, d, dv = _nets(spec_path, fixture_dir, int(z["seed"]))
    n_windows = len([k for k in z.files if k.startswith("w") and k.endswith("_BP")])
    rows: list[tuple[str, torch.Tensor, torch.Tensor, float]] = []
    hooks = FirstCall({"x_encoder": g.x_encoder, "forconv1": g.forconv1})
    state = None
    with torch.no_grad():
        for w in range(n_windows):
            inputs = WindowInputs(
                source=arr("P_ref"),
                heatmaps=arr(f"w{w}_BP"),
                flows=arr(f"w{w}_flow_frames"),
                flow_pre=arr(f"w{w}_flow_pre"),
                flow_post=arr(f"w{w}_flow_post"),
            )
            out = g(inputs, state)
            state = out.state
            rows.append((f"w{w}_out_images", out.frames, arr(f"w{w}_out_images"), TOL_F32))
            rows.append((f"w{w}_out_uv_feat", state.structure, arr(f"w{w}_out_uv_feat"), TOL_F16))
            rows.append((f"w{w}_out_state64", state.forward_s4, arr(f"w{w}_out_state64"), TOL_F16))
            rows.append((f"w{w}_out_state128", state.forward_s2, arr(f"w{w}_out_state128"), TOL_F16))
        hooks.remove()
        rows.append(("style_code", g.style_code(arr("P_ref")), arr("style_code"), TOL_F32))
        rows.append(("w0_f0_x_encoder", hooks.out["x_encoder"][0], arr("w0_f0_x_encoder"), TOL_F32))
        rows.append(("w0_f0_forconv1", hooks.out["forconv1"], arr("w0_f0_forconv1"), TOL_F32))
        frames0 = arr("w0_out_images")
        rows.append(("D_out", d(frames0[:, 0]), arr("D_out"), TOL_F32))
        rows.append(("D_V_out", dv(frames0), arr("D_V_out"), TOL_F32))
    return {"rows": rows, "n_windows": n_windows, "shape": tuple(z["w0_BP"].shape)}


def _check(parity, prefix_filter) -> None:
    rows = [r for r in parity["rows"] if prefix_filter(r[0])]
    assert rows, "no recorded outputs matched"
    report, bad = [], []
    for name, ours, ref, tol in rows:
        assert tuple(ours.shape) == tuple(ref.shape), f"{name}: shape {tuple(ours.shape)} != {tuple(ref.shape)}"
        err = rel_l2(ours, ref)
        report.append(f"{name}: {err:.2e} (tol {tol:.0e})")
        if not err < tol:
            bad.append(name)
    print("\n".join(report))
    assert not bad, "relative L2 over tolerance: " + "; ".join(r for r in report if r.split(":")[0] in bad)


def test_case_has_windows(parity):
    assert parity["n_windows"] >= 1


def test_generated_frames_match(parity):
    _check(parity, lambda n: n.endswith("_out_images"))


def test_carried_states_match(parity):
    _check(parity, lambda n: n.endswith(("_uv_feat", "_state64", "_state128")))


def test_style_code_and_intermediates_match(parity):
    _check(parity, lambda n: n in ("style_code", "w0_f0_x_encoder", "w0_f0_forconv1"))


def test_discriminators_match(parity):
    _check(parity, lambda n: n in ("D_out", "D_V_out"))


# ----------------------------------------------------------------------------- trace
TRACE_TOL_F16 = 1e-3  # float16-stored maps (rounding floor ~2e-4)
# float32-stored entries (offsets, masks, style vectors, the deepest style map, D outputs).
# The README suggests ~1e-5; measured here: offsets/masks/styles 0.5-5e-6, but the deepest
# style-encoder map x_ref.encoder4 at 1.1e-5, because oneDNN's float32 convolutions round
# more than the recorder's (ours vs a float64 run of the same weights: 9.6e-6; the
# recording vs float64: 3.9e-6) and six instance-normalised levels amplify it. A wrong op
# gives >= 1e-3, so 3e-5 still separates round-off from a divergence.
TRACE_TOL_F32 = 3e-5
TRACE_TOL_STATS = 1e-4  # per-channel mean/std, relative L2 over all channels


@pytest.fixture(scope="module")
def trace(fixture_dir):
    """Run window 0 of trace_128.npz (seed-3 weights) through the reference-order path with
    first-call hooks on every depth<=2 submodule, plus the DMM conv inputs and the styles."""
    path = fixture_dir / "trace_128.npz"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    z = np.load(path)
    arr = lambda k: torch.from_numpy(z[k].astype(np.float32))  # noqa: E731
    g, d, dv = _nets(fixture_dir / "spec.json", fixture_dir, int(z["seed"]) if "seed" in z.files else 3)

    def depth2(prefix: str, module: torch.nn.Module) -> dict[str, torch.nn.Module]:
        return {
            (prefix + n): m for n, m in module.named_modules() if n and n.count(".") <= 1
        }

    mods = depth2("", g) | depth2("D.", d) | depth2("D_V.", dv)
    for name in ("conv1up", "directconv1", "conv2up", "directconv2", "conv3up", "directconv3", "decoder256",
                 "forconv1", "backconv1", "forconv2", "backconv2"):
        mods[f"{name}.conv.modulation"] = g.get_submodule(f"{name}.conv.modulation")
    hooks = FirstCall(mods)
    dcn: dict[str, torch.Tensor] = {}

    def dcn_hook(blk: str):
        def pre(module, args):
            if f"{blk}.dcn_input" not in dcn:
                dcn[f"{blk}.dcn_input"], dcn[f"{blk}.dcn_offset"], dcn[f"{blk}.dcn_mask"] = args[:3]

        return pre

    pre_handles = [g.get_submodule(f"{b}.conv").register_forward_pre_hook(dcn_hook(b))
                   for b in ("forconv1", "backconv1", "forconv2", "backconv2")]
    inputs = WindowInputs(arr("P_ref"), arr("w0_BP"), arr("w0_flow_frames"), arr("w0_flow_pre"), arr("w0_flow_post"))
    with torch.no_grad():
        out = g.forward_reference(inputs, None)
        frames = arr("w0_out_images")
        d(frames[:, 0])
        dv(frames)
    hooks.remove()
    for h in pre_handles:
        h.remove()
    captured: dict[str, torch.Tensor] = dict(dcn)
    for name, value in hooks.out.items():
        if isinstance(value, (list, tuple)):
            for i, v in enumerate(value):
                captured[f"{name}.{i}"] = v
        else:
            captured[name] = value
    return z, captured, out


def test_trace_module_by_module(trace):
    """Walk trace_order; the first diverging module is reported first."""
    z, captured, _ = trace
    order = json.loads(str(z["trace_order"]))
    index = json.loads(str(z["trace_index"]))
    lines, bad = [], []
    for name in order:
        info = index[name]
        assert name in captured, f"no module output captured for {name!r}"
        ours = captured[name]
        assert list(ours.shape) == info["shape"], f"{name}: shape {list(ours.shape)} != {info['shape']}"
        ref = torch.from_numpy(z[info["key"]].astype(np.float32))
        err = rel_l2(ours[:, : info["channels_stored"]], ref)
        tol = TRACE_TOL_F16 if info["dtype"] == "float16" else TRACE_TOL_F32
        lines.append(f"{name}: {err:.2e}")
        if not err < tol:
            bad.append(f"{name}: {err:.2e} > {tol:.0e}")
        stats_key = info["key"].replace("trace/", "trace_stats/", 1)
        if stats_key in z.files and ours.ndim >= 3:
            flat = ours.double().flatten(2)
            mine = torch.stack([flat.mean(-1), flat.std(-1, unbiased=False)], -1)
            serr = rel_l2(mine, torch.from_numpy(z[stats_key]).double())
            if not serr < TRACE_TOL_STATS:
                bad.append(f"{name} stats: {serr:.2e} > {TRACE_TOL_STATS:.0e}")
    print("\n".join(lines))
    assert not bad, "first divergence: " + bad[0] + (f" (+{len(bad) - 1} more)" if len(bad) > 1 else "")


def test_trace_window_outputs(trace):
    z, captured, out = trace
    arr = lambda k: torch.from_numpy(z[k].astype(np.float32))  # noqa: E731
    assert rel_l2(out.frames, arr("w0_out_images")) < TOL_F32
    assert rel_l2(out.state.structure, arr("w0_out_uv_feat")) < TOL_F16
    assert rel_l2(out.state.forward_s4, arr("w0_out_state64")) < TOL_F16
    assert rel_l2(out.state.forward_s2, arr("w0_out_state128")) < TOL_F16
    assert rel_l2(captured["x_encoder.0"], arr("w0_f0_x_encoder")) < TOL_F32
    assert rel_l2(captured["forconv1"], arr("w0_f0_forconv1")) < TOL_F32
    assert rel_l2(captured["D.conv"], arr("D_out")) < TOL_F32
    assert rel_l2(captured["D_V.conv"], arr("D_V_out")) < TOL_F32
