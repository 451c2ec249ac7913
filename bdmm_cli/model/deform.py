"""The modulated deformable convolution of the DMM blocks, in plain PyTorch ops.

    modulated_deform_conv2d(input, offset, mask, weight, impl=None) -> (B, O, H, W)

out[b, o, p] = sum_{c, j} weight[b, o, c, j] * mask[b, j, p]
               * bilinear(input[b, c], p + tap_j - (k-1)/2 + offset[b, j, p])

stride 1, "same" padding, one kernel per sample, one offset group per sample (all input
channels share the sample's offsets), zeros outside the map: DCNv2 as
``torchvision.ops.deform_conv2d`` computes it (the authors' op). Two implementations:

- ``"torch"`` (the default): the bilinear samples of all k*k taps are taken in one
  ``grid_sample`` call (im2col: (B, C, k*k, H*W) columns), the mask is multiplied in, and
  one matrix multiply per sample contracts (C, k*k) with the kernel. Differentiable by
  autograd (grid_sample, mul and matmul have backward formulas), so training uses it too.
- ``"torchvision"``: ``torchvision.ops.deform_conv2d`` with the batch folded into groups;
  the reference the tests compare against.

Choose with the ``impl`` argument, ``DMMBlock.deform_impl``,
``BDMMGenerator.set_deform_impl`` or the environment variable ``BDMM_DEFORM_IMPL``. The
variable is a setting, read and checked when a DMM block is built (or told ``None`` again),
never per call: a block keeps its resolved choice; the functional op without ``impl``
uses the value read at its first such call in the process.

Exact torchvision semantics. torchvision samples at the pixel position
y = py - pad + ky + offset_y (same for x); a point with y <= -1, y >= H, x <= -1 or x >= W
is 0; otherwise each of the four neighbours floor() / floor()+1 inside the map contributes
its bilinear weight, and the derivative with respect to the position is the one of that
cell (the right-hand one on the integer grid, also at exactly -1). ``grid_sample`` with
zero padding computes the same values and derivatives; the positions are passed as
normalised coordinates (p + 0.5) * 2 / size - 1 (align_corners=False), which round-trip
exactly for integer and half-integer positions when the size is a power of two (the input
is zero-padded to the next power of two otherwise, which does not change any sample). So
the cell chosen on the integer grid (e.g. zero offsets, as at initialisation) is
torchvision's, and elsewhere the positions agree to float round-off.

Speed on the CPU: the sampled map is read in channels-last order (the C values of a pixel
are adjacent, so each bilinear tap is one short contiguous read), and at batch 1 the
channels are split into one slice per thread so that ``grid_sample`` (threaded over the
batch) uses every core. The output rows are sampled and contracted in bands whose columns
stay under ``COLS_BLOCK_BYTES`` (12 MiB): a larger block comes from fresh mmap pages on
every call (10x the page faults of a window: 120,000 against 12,000 measured).
"""

from __future__ import annotations

import os
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["DEFORM_IMPLS", "DeformImpl", "default_deform_impl", "modulated_deform_conv2d"]

DeformImpl = Literal["torch", "torchvision"]
DEFORM_IMPLS: tuple[str, ...] = ("torch", "torchvision")
ENV_VAR = "BDMM_DEFORM_IMPL"


def default_deform_impl() -> str:
    """The implementation used when none is named: ``$BDMM_DEFORM_IMPL`` or ``"torch"``."""
    impl = os.environ.get(ENV_VAR, "").strip().lower() or "torch"
    if impl not in DEFORM_IMPLS:
        raise ValueError(f"{ENV_VAR} must be one of {', '.join(DEFORM_IMPLS)}, got {impl!r}")
    return impl


_PROCESS_DEFAULT: list[str] = []  # the functional op's default, read once (first call without impl)


def modulated_deform_conv2d(
    input: Tensor, offset: Tensor, mask: Tensor, weight: Tensor, impl: str | None = None, bias: Tensor | None = None
) -> Tensor:
    """Modulated deformable convolution, stride 1, "same" padding, per-sample kernels.

    Args:
        input: (B, C, H, W) the feature being deformed.
        offset: (B, 2*k*k, H, W); channel 2j is the vertical (y) and 2j+1 the horizontal (x)
            displacement, in pixels, of tap j = k*ky + kx (torchvision / DCNv2 layout).
        mask: (B, k*k, H, W) per-tap modulation scalars (BDMM uses 2*sigmoid, in (0, 2)).
        weight: (B, O, C, k, k) one kernel per sample (e.g. from ``modulate_weight``), or
            (O, C, k, k) shared by all samples; k odd.
        impl: ``"torch"`` or ``"torchvision"``; None = :func:`default_deform_impl`, read once
            per process (the DMM blocks pass the choice they resolved when built).
        bias: optional (O,), added to every output pixel (inside the matrix multiply).

    Returns:
        (B, O, H, W): out[b, o, p] = sum_{c, j} weight[b, o, c, j] * mask[b, j, p]
        * bilinear(input[b, c], p + tap_j - (k-1)/2 + offset[b, j, p]) (zeros outside).

    Shapes are not checked here (the generator checks its inputs once per window).
    """
    if impl is None:
        if not _PROCESS_DEFAULT:
            _PROCESS_DEFAULT.append(default_deform_impl())
        impl = _PROCESS_DEFAULT[0]
    if impl == "torch":
        return _deform_conv2d_torch(input, offset, mask, weight, bias)
    if impl == "torchvision":
        return _deform_conv2d_torchvision(input, offset, mask, weight, bias)
    raise ValueError(f"deform impl must be one of {', '.join(DEFORM_IMPLS)}, got {impl!r}")


def _deform_conv2d_torchvision(
    input: Tensor, offset: Tensor, mask: Tensor, weight: Tensor, bias: Tensor | None = None
) -> Tensor:
    """torchvision.ops.deform_conv2d, the batch folded into groups (one offset group and
    one kernel group per sample)."""
    from torchvision.ops import deform_conv2d

    b, c, h, w = input.shape
    k = weight.shape[-1]
    pad = k // 2
    if weight.ndim == 4:
        return deform_conv2d(input, offset, weight, bias, padding=(pad, pad), mask=mask)
    if b == 1:
        return deform_conv2d(input, offset, weight[0], bias, padding=(pad, pad), mask=mask)
    o = weight.shape[1]
    out = deform_conv2d(
        input.reshape(1, b * c, h, w),
        offset.reshape(1, b * 2 * k * k, h, w),
        weight.reshape(b * o, c, k, k),
        None if bias is None else bias.repeat(b),
        padding=(pad, pad),
        mask=mask.reshape(1, b * k * k, h, w),
    )
    return out.reshape(b, o, h, w)


def _pow2_at_least(n: int) -> int:
    return 1 << max(n - 1, 0).bit_length()


def _tap_grid(offset: Tensor, k: int, h: int, w: int, hp: int, wp: int) -> Tensor:
    """Normalised grid_sample coordinates of every tap: (B, k*k, H, W, 2) in (x, y) order
    for a map zero-padded to (hp, wp)."""
    b, taps, dev = offset.shape[0], k * k, offset.device
    dt = offset.dtype if offset.dtype in (torch.float32, torch.float64) else torch.float32
    off = offset.to(dt).reshape(b, taps, 2, h, w)
    tap = torch.arange(k, device=dev, dtype=dt) - k // 2
    rows = torch.arange(h, device=dev, dtype=dt)
    cols = torch.arange(w, device=dev, dtype=dt)
    base_y = (tap.repeat_interleave(k)[:, None] + rows[None, :])[:, :, None]  # (kk, H, 1)
    base_x = (tap.repeat(k)[:, None] + cols[None, :])[:, None, :]  # (kk, 1, W)
    y = base_y + off[:, :, 0]  # torchvision's sample position, same rounding
    x = base_x + off[:, :, 1]
    return torch.stack(((x + 0.5) * (2.0 / wp) - 1.0, (y + 0.5) * (2.0 / hp) - 1.0), dim=-1)


#: Largest im2col block (bytes) sampled at once on the CPU. glibc serves blocks over its
#: mmap threshold (at most 32 MiB) with fresh pages, so a larger block would pay a page
#: fault per 4 KiB on every call (the S/2 DMM's columns are 37.7 MB): the output rows are
#: done in bands of at most this size instead, whose memory the allocator reuses.
COLS_BLOCK_BYTES = 12 * 2**20


def _deform_conv2d_torch(
    input: Tensor, offset: Tensor, mask: Tensor, weight: Tensor, bias: Tensor | None = None
) -> Tensor:
    """grid_sample im2col of all taps + one matmul per sample (see the module docstring),
    in bands of output rows on the CPU (:data:`COLS_BLOCK_BYTES`)."""
    b, c, h, w = input.shape
    o, k = weight.shape[-4], weight.shape[-1]
    taps = k * k
    hp, wp = _pow2_at_least(h), _pow2_at_least(w)
    grid = _tap_grid(offset, k, h, w, hp, wp)  # (B, kk, H, W, 2)
    x = input if input.dtype == grid.dtype else input.to(grid.dtype)
    if (hp, wp) != (h, w):
        x = F.pad(x, (0, wp - w, 0, hp - h))
    split, band = 1, h
    if x.device.type == "cpu":
        x = x.contiguous(memory_format=torch.channels_last)
        threads = torch.get_num_threads()
        if b == 1 and threads > 1 and c % threads == 0 and c >= 2 * threads:
            # one slice of channels per thread: (threads, C/threads, H, W) views of one map
            x = x.permute(0, 2, 3, 1).reshape(hp, wp, threads, c // threads).permute(2, 3, 0, 1)
            split = threads
        most = max(1, COLS_BLOCK_BYTES // (b * c * taps * w * grid.element_size()))  # rows per band
        band = -(-h // -(-h // most))  # as few bands as fit, as even as ceil allows
    wmat = weight.reshape(*weight.shape[:-4], o, c * taps).to(input.dtype)  # (B, O, C*kk) or (O, C*kk)
    b_col = None if bias is None else bias.to(input.dtype).view(1, o, 1)
    outs = []
    for r0 in range(0, h, band):
        rows = min(band, h - r0)
        g = grid[:, :, r0 : r0 + rows].reshape(b, taps * rows, w, 2)
        if split > 1:
            g = g.expand(split, *g.shape[1:])
        cols = F.grid_sample(x, g, mode="bilinear", padding_mode="zeros", align_corners=False)
        cols = cols.reshape(b, c, taps, rows * w)  # (B, C, kk, rows*W), contiguous
        m = mask[:, :, r0 : r0 + rows].reshape(b, 1, taps, rows * w).to(cols.dtype)
        if torch.is_grad_enabled() and (cols.requires_grad or m.requires_grad):
            cols = cols * m
        else:
            cols = cols.mul_(m)
        if cols.dtype != input.dtype:
            cols = cols.to(input.dtype)
        cols = cols.view(b, c * taps, rows * w)
        if b_col is None:
            outs.append(torch.matmul(wmat, cols))
        else:
            outs.append(torch.baddbmm(b_col, wmat.expand(b, o, c * taps), cols))
    out = (outs[0] if len(outs) == 1 else torch.cat(outs, 2)).view(b, o, h, w)
    if input.is_contiguous(memory_format=torch.channels_last) and not input.is_contiguous():
        # channels-last in, channels-last out (one pass over the output; computing the
        # transposed product directly is slower in MKL)
        out = out.contiguous(memory_format=torch.channels_last)
    return out
