"""The BDMM generator (authors' ``DanceGenerator``): one call runs one window of T frames.

    g = BDMMGenerator(GeneratorConfig())
    prepared = g.prepare(source)              # once per photo: style + folded kernels
    out = g(WindowInputs(source, heatmaps, flows, flow_pre, flow_post), None, prepared)
    out2 = g(next_inputs, out.state, prepared)

Per window (S = image side, shapes for the default widths):
1. style = mean over space of the style encoder's deepest map (B, 512), once per window.
2. Warped images grid_sample(source, flow) of every frame flow and of the pre/post flows go
   through the shared ``warp_encoder``; its S/4 (128 ch) and S/2 (64 ch) maps feed
3. the forward branch (``for_rcnn64/128``; starts from the "pre" image in the first window,
   from the carried state afterwards) and the backward branch (``back_rcnn64/128``; starts
   from the "post" image in every window), each a recurrent ResBlock over the T frames.
4. Per frame: structural encoder on concat[heatmaps_t, previous frame], recurrent
   structural state (``x_rcnn1/2``), then a StyleGAN2-like decoder whose S/4 and S/2 levels
   add forward and backward DMM blocks (deformable convs over the warp-branch features,
   steered by the decoder feature), ToRGB and tanh.

``forward`` is the default, faster path: the style code and the style-modulated kernels
are a step of their own, ``prepare(source)`` (once per source photo; ``forward`` runs it
when not given, as in training where autograd is on), with the activation gain and both
biases folded in (one convolution with its bias, then an in-place leaky ReLU), all warped
images are encoded in one batched call, the activations of the encoders run in place, the DMM blocks use our deformable conv
(``deform.py``) and take offsets and mask from one convolution, and on the CPU the S/2
branch and the decoder run channels-last (``fast_channels_last``, ``fast_layout``).
``forward_reference`` is the literal per-frame transcription of the authors' loop (kernels
modulated in every layer call, separate bias adds). Both run the same window and decoder
bodies (``_run``, ``_decode_frame``); what differs is passed in as a :class:`Modulation`
(literal: each layer modulates its kernel from the style; folded: the prepared kernels, in
the fast memory layout). Both compute the same function (equal up to float round-off;
tests check both against the authors' recorded outputs).
``set_deform_impl`` picks the deformable-conv implementation of both paths.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, NamedTuple

import torch
from torch import Tensor, nn

from bdmm_cli.body.flow import warp

from .dmm import DMMBlock
from .encoders import PoseSourceNet, ResBlock
from .layers import IntConfig, StyledConv, ToRGB, check_positive_ints

__all__ = [
    "GeneratorConfig", "WindowInputs", "WindowState", "WindowOutput", "SourceConstants", "Modulation",
    "BDMMGenerator", "warp",
]

#: Every style-modulated layer, in decoder order (their ``.conv`` owns the modulated kernel).
MODULATED_LAYERS = (
    "conv1up",
    "forconv1",
    "backconv1",
    "directconv1",
    "conv2up",
    "forconv2",
    "backconv2",
    "directconv2",
    "conv3up",
    "directconv3",
    "decoder256",
)


@dataclass(frozen=True)
class GeneratorConfig(IntConfig):
    """Widths of the generator. The default is the paper's model (authors' checkpoint).

    image_nc: image channels (3). structure_nc: heatmap channels (25, BODY_25).
    ngf: width of the first encoder level (S/2). img_f: width cap of the encoders.
    layers: encoder levels of the structural/warp encoders (3; the decoder is built for 3).
    style_dim: style vector size = width of the style encoder's deepest level
    (ngf * min(32, img_f // ngf), i.e. img_f for the usual widths).
    Tiny test model: ``GeneratorConfig(ngf=8, img_f=32, style_dim=32)``.
    """

    image_nc: int = 3
    structure_nc: int = 25
    ngf: int = 64
    img_f: int = 512
    layers: int = 3
    style_dim: int = 512

    def __post_init__(self) -> None:
        check_positive_ints(self)
        if self.layers != 3:
            raise ValueError(f"GeneratorConfig.layers must be 3 (the BDMM decoder has three levels), got {self.layers}")
        if self.img_f % self.ngf:
            raise ValueError(f"GeneratorConfig.img_f ({self.img_f}) must be a multiple of ngf ({self.ngf})")
        deepest = self.ngf * min(2 ** (2 * self.layers - 1), self.img_f // self.ngf)
        if self.style_dim != deepest:
            raise ValueError(
                f"GeneratorConfig.style_dim must equal the style encoder's deepest width {deepest} "
                f"(ngf * min(32, img_f // ngf)), got {self.style_dim}"
            )


@dataclass(frozen=True)
class WindowInputs:
    """Inputs of one window of T frames (S = image side, a multiple of 64, >= 128).

    source: (B, image_nc, S, S) the source photo, in [-1, 1].
    heatmaps: (B, T, structure_nc, S, S) target-pose keypoint heatmaps, in [0, 1].
    flows: (B, T, S, S, 2) mesh flow of each frame: (x, y) ``grid_sample`` coordinates
        (align_corners=False) into ``source``; -2 where the body does not cover the pixel.
    flow_pre: (B, S, S, 2) flow to the frame before the window (first window: frame 0).
    flow_post: (B, S, S, 2) flow to the frame after the window (last window: last frame).
    """

    source: Tensor
    heatmaps: Tensor
    flows: Tensor
    flow_pre: Tensor
    flow_post: Tensor

    @property
    def batch_size(self) -> int:
        return int(self.heatmaps.shape[0])

    @property
    def num_frames(self) -> int:
        return int(self.heatmaps.shape[1])


@dataclass(frozen=True)
class WindowState:
    """What one window hands to the next (None before the first window).

    last_frame: (B, image_nc, S, S) the last generated frame.
    structure: (B, 4*ngf, S/8, S/8) recurrent structural state (authors' ``uv_feat``).
    forward_s4: (B, 2*ngf, S/4, S/4) forward-branch state at S/4 (authors' "64").
    forward_s2: (B, ngf, S/2, S/2) forward-branch state at S/2 (authors' "128").
    (Widths are for img_f >= 4*ngf.) The backward branch is restarted in every window.
    """

    last_frame: Tensor
    structure: Tensor
    forward_s4: Tensor
    forward_s2: Tensor

    def detach(self) -> WindowState:
        """The same state cut from the autograd graph (truncated backpropagation)."""
        return WindowState(
            self.last_frame.detach(), self.structure.detach(), self.forward_s4.detach(), self.forward_s2.detach()
        )


class FastLayout(NamedTuple):
    """Memory formats of the fast path: ``encoders`` (the convolutions of the style, warp
    and structural encoders, whose input images are normalised in their own format; the S/8
    and S/4 states), ``s2`` (the S/2 recurrent branch and its state), ``decoder``."""

    encoders: torch.memory_format
    s2: torch.memory_format
    decoder: torch.memory_format


@dataclass(frozen=True)
class SourceConstants:
    """What the generator computes once per source photo (:meth:`BDMMGenerator.prepare`).

    style: (B, style_dim) spatial mean of the style encoder's deepest map.
    kernels: for every name in ``MODULATED_LAYERS``, (kernel (B, O, I, k, k), bias (O,)):
        the style-modulated kernel with the layer's activation gain folded in and one bias
        (see ``StyledConv.folded``, ``DMMBlock.folded``, ``ToRGB.folded``).
    B is the batch of the windows they are used with, or 1 for one photo shared by every
    window of a batch (:meth:`expand`).
    """

    style: Tensor
    kernels: Mapping[str, tuple[Tensor, Tensor]]

    @property
    def batch_size(self) -> int:
        return int(self.style.shape[0])

    def expand(self, batch: int) -> SourceConstants:
        """The constants of one photo (batch 1) for a batch of ``batch`` windows (views)."""
        if self.batch_size == batch:
            return self
        if self.batch_size != 1:
            raise ValueError(f"prepared constants are for a batch of {self.batch_size}, the window has {batch}")
        kernels = {name: (w.expand(batch, *w.shape[1:]), bias) for name, (w, bias) in self.kernels.items()}
        return SourceConstants(self.style.expand(batch, -1), kernels)


@dataclass(frozen=True)
class Modulation:
    """How the decoder's style-modulated layers get their kernels, and the memory layout.

    Literal (``kernels`` None): every layer modulates its own kernel from ``style`` at each
    call, as the authors' loop does; maps stay contiguous and the plain (not in-place)
    module forwards run. Folded: each layer applies its prepared kernel
    (:class:`SourceConstants`), the encoders run their fast forwards, maps in ``layout``.
    """

    style: Tensor
    kernels: Mapping[str, tuple[Tensor, Tensor]] | None
    layout: FastLayout

    @classmethod
    def literal(cls, style: Tensor) -> Modulation:
        plain = torch.contiguous_format
        return cls(style, None, FastLayout(plain, plain, plain))

    @classmethod
    def folded(cls, prepared: SourceConstants, layout: FastLayout) -> Modulation:
        return cls(prepared.style, prepared.kernels, layout)

    @property
    def fast(self) -> bool:
        return self.kernels is not None

    def __call__(self, layer: nn.Module, name: str, *args: Tensor) -> Tensor:
        """``layer`` (the generator's module ``name``) on ``args`` with its modulated kernel."""
        if self.kernels is None:
            return layer(*args, self.style)
        return layer(*args, folded=self.kernels[name])


@dataclass(frozen=True)
class WindowOutput:
    """frames: (B, T, image_nc, S, S) generated frames in [-1, 1]; state: for the next window."""

    frames: Tensor
    state: WindowState


def _dims(t: Tensor) -> str:
    return "(" + ", ".join(str(s) for s in t.shape) + ")"


class BDMMGenerator(nn.Module):
    """The BDMM generator; state-dict keys equal the authors' ``DanceGenerator`` keys.

    forward(inputs: WindowInputs, state: WindowState | None = None) -> WindowOutput.
    """

    def __init__(self, config: GeneratorConfig | None = None) -> None:
        super().__init__()
        cfg = GeneratorConfig() if config is None else config
        self.config = cfg
        ngf, img_f, sd = cfg.ngf, cfg.img_f, cfg.style_dim
        self.x_ref = PoseSourceNet(cfg.image_nc, ngf, img_f, 2 * cfg.layers)
        self.warp_encoder = PoseSourceNet(cfg.image_nc, ngf, img_f, cfg.layers)
        c8, c4, c2 = self.warp_encoder.out_channels  # widths at S/8, S/4, S/2
        self.widths = (c8, c4, c2)
        self.for_rcnn64 = ResBlock(2 * c4, c4)
        self.for_rcnn128 = ResBlock(2 * c2, c2)
        self.back_rcnn64 = ResBlock(2 * c4, c4)
        self.back_rcnn128 = ResBlock(2 * c2, c2)
        self.x_encoder = PoseSourceNet(cfg.structure_nc + cfg.image_nc, ngf, img_f, cfg.layers)
        self.x_rcnn1 = ResBlock(2 * c8, c8)
        self.x_rcnn2 = ResBlock(c8, c8)
        self.conv1up = StyledConv(c8, c4, 3, sd, upsample=True, demodulate=True)
        self.forconv1 = DMMBlock(c4, c4, sd, flow_in_channel=2 * c4, flow_out_channel=c4)
        self.backconv1 = DMMBlock(c4, c4, sd, flow_in_channel=2 * c4, flow_out_channel=c4)
        self.directconv1 = StyledConv(c4, c4, 3, sd, upsample=False, demodulate=False)
        self.conv2up = StyledConv(c4, c2, 3, sd, upsample=True, demodulate=True)
        self.forconv2 = DMMBlock(c2, c2, sd, flow_in_channel=2 * c2, flow_out_channel=c2)
        self.backconv2 = DMMBlock(c2, c2, sd, flow_in_channel=2 * c2, flow_out_channel=c2)
        self.directconv2 = StyledConv(c2, c2, 3, sd, upsample=False, demodulate=False)
        self.conv3up = StyledConv(c2, c2, 3, sd, upsample=True, demodulate=True)
        self.directconv3 = StyledConv(c2, c2, 3, sd, upsample=False, demodulate=False)
        self.decoder256 = ToRGB(c2, sd, out_channel=cfg.image_nc)
        self.out = nn.Tanh()

    # ------------------------------------------------------------------ pieces
    #: Memory layout of the fast path. None (default): chosen by measurement
    #: (``benchmarks/results/generator.md``): on the CPU the S/2 recurrent branch and the
    #: decoder run channels-last, where their convolutions are 1.3-5x faster, and the
    #: encoders and the S/8 and S/4 levels contiguous, where channels-last is no faster;
    #: contiguous on other devices. True: every map channels-last (on the CPU another ~8%
    #: faster, frames ~2e-6 from the literal loop instead of ~1e-6); False: every map
    #: contiguous. Values agree with the literal loop to float round-off either way (the
    #: channels-last instance norm is as exact as PyTorch's, ``encoders.instance_norm_fast``).
    fast_channels_last: bool | None = None

    def fast_layout(self, device: torch.device) -> FastLayout:
        """The memory formats of the fast path on ``device`` (see ``fast_channels_last``)."""
        cl, plain = torch.channels_last, torch.contiguous_format
        if self.fast_channels_last is None:
            return FastLayout(plain, cl, cl) if device.type == "cpu" else FastLayout(plain, plain, plain)
        return FastLayout(cl, cl, cl) if self.fast_channels_last else FastLayout(plain, plain, plain)

    DMM_BLOCKS = ("forconv1", "backconv1", "forconv2", "backconv2")

    def set_deform_impl(self, impl: str | None) -> BDMMGenerator:
        """Select the deformable-conv implementation of the four DMM blocks: "torch" (ours,
        the default), "torchvision" (the reference op) or None (``$BDMM_DEFORM_IMPL`` or
        "torch", read now, not per call). Returns self."""
        for name in self.DMM_BLOCKS:
            getattr(self, name).deform_impl = impl
        return self

    def style_code(self, source: Tensor) -> Tensor:
        """(B, image_nc, S, S) -> (B, style_dim): spatial mean of the style encoder's deepest map."""
        return self.x_ref(source)[0].mean(dim=(2, 3))

    def modulated_weights(self, style: Tensor) -> dict[str, Tensor]:
        """Per-sample modulated kernels of every style-modulated layer, (B, O, I, k, k) each."""
        return {name: getattr(self, name).conv.modulated_weight(style) for name in MODULATED_LAYERS}

    def check_inputs(self, inputs: WindowInputs, state: WindowState | None) -> None:
        """Raise ValueError naming the expected shape if any input or state tensor is off."""
        cfg = self.config
        src = inputs.source
        if src.ndim != 4 or src.shape[1] != cfg.image_nc:
            raise ValueError(f"source must be (B, {cfg.image_nc}, S, S), got {_dims(src)}")
        b, _, h, w = src.shape
        if h % 64 or w % 64 or h < 128 or w < 128:
            raise ValueError(f"image side must be a multiple of 64 and at least 128, got {h}x{w}")
        hm = inputs.heatmaps
        if hm.ndim != 5 or tuple(hm.shape[:1]) + tuple(hm.shape[2:]) != (b, cfg.structure_nc, h, w):
            raise ValueError(f"heatmaps must be ({b}, T, {cfg.structure_nc}, {h}, {w}), got {_dims(hm)}")
        t = hm.shape[1]
        if t < 1:
            raise ValueError("a window needs at least one frame (T >= 1)")
        if tuple(inputs.flows.shape) != (b, t, h, w, 2):
            raise ValueError(f"flows must be ({b}, {t}, {h}, {w}, 2), got {_dims(inputs.flows)}")
        for name in ("flow_pre", "flow_post"):
            f = getattr(inputs, name)
            if tuple(f.shape) != (b, h, w, 2):
                raise ValueError(f"{name} must be ({b}, {h}, {w}, 2), got {_dims(f)}")
        if state is not None:
            c8, c4, c2 = self.widths
            want = {
                "last_frame": (b, cfg.image_nc, h, w),
                "structure": (b, c8, h // 8, w // 8),
                "forward_s4": (b, c4, h // 4, w // 4),
                "forward_s2": (b, c2, h // 2, w // 2),
            }
            for name, shape in want.items():
                got = getattr(state, name)
                if tuple(got.shape) != shape:
                    raise ValueError(f"state.{name} must be {shape}, got {_dims(got)}")

    def folded_kernels(self, style: Tensor) -> dict[str, tuple[Tensor, Tensor]]:
        """Per-window constants of every style-modulated layer for the fast path: (kernel
        (B, O, I, k, k) with the activation gain folded in, bias (O,) = gain * (bias +
        activate.bias)); see ``StyledConv.folded``, ``DMMBlock.folded``, ``ToRGB.folded``."""
        return {name: getattr(self, name).folded(style) for name in MODULATED_LAYERS}

    def _decode_frame(
        self,
        heatmap: Tensor,
        x_prev: Tensor,
        uv: Tensor | None,
        fwd: tuple[Tensor, Tensor],
        bwd: tuple[Tensor, Tensor],
        mod: Modulation,
    ) -> tuple[Tensor, Tensor]:
        """One frame: (heatmap (B,25,S,S), previous frame, structural state or None, forward and
        backward warp features at S/4 and S/2) -> (frame (B,3,S,S), new structural state).
        ``mod`` gives the modulated layers their kernels (literal or folded) and the layout."""
        fast, lay = mod.fast, mod.layout
        u = self.x_encoder(torch.cat([heatmap, x_prev], 1), fast=fast, conv_format=lay.encoders)[0]
        if uv is None:  # first frame of a sequence: the "previous" state is the encoding itself
            uv = u
        x = self.x_rcnn2(self.x_rcnn1(torch.cat([uv, u], 1), fast), fast)
        uv = x
        dec = lay.decoder
        fwd = tuple(f.contiguous(memory_format=dec) for f in fwd)
        bwd = tuple(f.contiguous(memory_format=dec) for f in bwd)
        # S/4: upsample, then the direct path plus the forward and backward DMM blocks
        x = mod(self.conv1up, "conv1up", x.contiguous(memory_format=dec))
        xf = mod(self.forconv1, "forconv1", fwd[0], torch.cat([x, fwd[0]], 1))
        xb = mod(self.backconv1, "backconv1", bwd[0], torch.cat([x, bwd[0]], 1))
        x = torch.add(mod(self.directconv1, "directconv1", x), xf).add_(xb)  # (one new map)
        # S/2: the same
        x = mod(self.conv2up, "conv2up", x)
        xf = mod(self.forconv2, "forconv2", fwd[1], torch.cat([x, fwd[1]], 1))
        xb = mod(self.backconv2, "backconv2", bwd[1], torch.cat([x, bwd[1]], 1))
        x = torch.add(mod(self.directconv2, "directconv2", x), xf).add_(xb)
        # S: upsample, one more convolution, ToRGB, tanh
        x = mod(self.directconv3, "directconv3", mod(self.conv3up, "conv3up", x))
        image = self.out(mod(self.decoder256, "decoder256", x))  # tanh
        return image, uv

    def _propagate(
        self, enc: list[tuple[Tensor, Tensor]], f4: Tensor, f2: Tensor, backward: bool, fast: bool
    ) -> list[tuple[Tensor, Tensor]]:
        """Recurrent warp-feature branch over the T frames' encodings (S/4, S/2 maps).

        Forward: frames 0..T-1 from the state (f4, f2); backward: frames T-1..0. Returns the
        per-frame states in frame order. Channel order: current frame first, state second.
        """
        r4, r2 = (self.back_rcnn64, self.back_rcnn128) if backward else (self.for_rcnn64, self.for_rcnn128)
        states: list[tuple[Tensor, Tensor] | None] = [None] * len(enc)
        order = range(len(enc) - 1, -1, -1) if backward else range(len(enc))
        for t in order:
            f4 = r4(torch.cat([enc[t][0], f4], 1), fast)
            f2 = r2(torch.cat([enc[t][1], f2], 1), fast)
            states[t] = (f4, f2)
        return states  # type: ignore[return-value]

    def _run(
        self,
        inputs: WindowInputs,
        state: WindowState | None,
        enc: list[tuple[Tensor, Tensor]],
        pre: tuple[Tensor, Tensor] | None,
        post: tuple[Tensor, Tensor],
        mod: Modulation,
    ) -> WindowOutput:
        f4, f2 = pre if state is None else (state.forward_s4, state.forward_s2)
        fast = mod.fast
        fwd = self._propagate(enc, f4, f2, backward=False, fast=fast)
        bwd = self._propagate(enc, post[0], post[1], backward=True, fast=fast)
        x_prev = inputs.source if state is None else state.last_frame
        uv = None if state is None else state.structure
        frames = []
        for t in range(inputs.num_frames):
            x_prev, uv = self._decode_frame(inputs.heatmaps[:, t], x_prev, uv, fwd[t], bwd[t], mod)
            frames.append(x_prev)
        assert uv is not None
        new_state = WindowState(last_frame=x_prev, structure=uv, forward_s4=fwd[-1][0], forward_s2=fwd[-1][1])
        return WindowOutput(frames=torch.stack([f.contiguous() for f in frames], 1), state=new_state)

    # ------------------------------------------------------------------ windows
    def prepare(self, source: Tensor) -> SourceConstants:
        """The per-photo step: style code and folded kernels of ``source`` (B, image_nc, S, S),
        for every window of that photo (``forward(inputs, state, prepared)``). Differentiable
        when autograd is on; the caller picks the mode (inference: ``torch.inference_mode``)."""
        if source.ndim != 4 or source.shape[1] != self.config.image_nc:
            raise ValueError(f"source must be (B, {self.config.image_nc}, S, S), got {_dims(source)}")
        lay = self.fast_layout(source.device)
        style = self.x_ref(source, fast=True, conv_format=lay.encoders)[0].mean(dim=(2, 3))
        return SourceConstants(style, self.folded_kernels(style))

    def forward(
        self, inputs: WindowInputs, state: WindowState | None = None, prepared: SourceConstants | None = None
    ) -> WindowOutput:
        """Run one window (state None = first window of a video). Fast path: the style code
        and folded kernels are ``prepared`` (:meth:`prepare` of ``inputs.source``, or of the
        one photo of every window of the batch; computed here when None), and every warped image of the window (T frames, post, and pre in the
        first window) goes through ``warp_encoder`` in one batch."""
        self.check_inputs(inputs, state)
        lay = self.fast_layout(inputs.source.device)
        src = inputs.source
        b, t = inputs.batch_size, inputs.num_frames
        prepared = self.prepare(src) if prepared is None else prepared.expand(b)
        parts = [inputs.flows, inputs.flow_post[:, None]]
        if state is None:
            parts.append(inputs.flow_pre[:, None])
        flows = torch.cat(parts, 1)  # (B, n, S, S, 2)
        n = flows.shape[1]
        srcs = src[:, None].expand(b, n, *src.shape[1:]).reshape(b * n, *src.shape[1:])
        warped = warp(srcs, flows.reshape(b * n, *flows.shape[2:]))
        e4, e2 = self.warp_encoder(warped, fast=True, levels=2, conv_format=lay.encoders)  # S/8 level unused
        e4 = e4.reshape(b, n, *e4.shape[1:])
        e2 = e2.contiguous(memory_format=lay.s2).reshape(b, n, *e2.shape[1:])
        enc = [(e4[:, i], e2[:, i]) for i in range(t)]
        post = (e4[:, t], e2[:, t])
        pre = (e4[:, t + 1], e2[:, t + 1]) if state is None else None
        if state is not None:
            state = WindowState(
                state.last_frame.contiguous(memory_format=lay.encoders),
                state.structure.contiguous(memory_format=lay.encoders),
                state.forward_s4.contiguous(memory_format=lay.encoders),
                state.forward_s2.contiguous(memory_format=lay.s2),
            )
        return self._run(inputs, state, enc, pre, post, Modulation.folded(prepared, lay))

    def forward_reference(self, inputs: WindowInputs, state: WindowState | None = None) -> WindowOutput:
        """The same window computed literally as the authors' loop: one warp_encoder call per
        image, modulated kernels recomputed inside every layer call. For tests and benchmarks."""
        self.check_inputs(inputs, state)
        src = inputs.source
        style = self.style_code(src)
        pre_image = warp(src, inputs.flow_pre)
        post_image = warp(src, inputs.flow_post)
        enc = []
        for t in range(inputs.num_frames):
            _, e4, e2 = self.warp_encoder(warp(src, inputs.flows[:, t]))
            enc.append((e4, e2))
        pre = None
        if state is None:
            _, p4, p2 = self.warp_encoder(pre_image)
            pre = (p4, p2)
        _, q4, q2 = self.warp_encoder(post_image)
        return self._run(inputs, state, enc, pre, (q4, q2), Modulation.literal(style))
