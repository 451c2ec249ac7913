"""The one table of network kinds: every network bdmm installs, imports, detects and loads.

    kind = KINDS["spin"]
    kind.title            # "SPIN/HMR regressor"      (messages)
    kind.files            # ("spin_ckpt.pth", "model_checkpoint.pt")  (authors' names, preferred first)
    kind.setup_name       # "spin"                    (`bdmm setup` item, registry entry)
    kind.matches(sd)      # True for a SPIN state dict (detection from key names alone)
    kind.checker()        # pose.hmr.check_spin_checkpoint: (Checkpoint, kind, source) -> Checkpoint

Every other list of kinds reads this one: `state_dict.detect_kind`, `checkpoints.read_checkpoint`
and `import_checkpoint`, `model.checkpoint`'s messages, `bdmm weights import --kind`,
`bdmm setup`'s items, `hub.resolve` (authors' file names, registry prefixes), `hub.download`
and `pipeline.requirements` (which kinds can be imported, which option takes them).

This module sits below everything (it imports nothing of bdmm's at import time): loaders
are named as ``"module:function"`` and imported when asked for.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass

STATE_DICT = "state_dict"  # a PyTorch / safetensors state dict, checked strictly against its network
ONNX = "onnx"  # an ONNX graph, opened with onnxruntime and its signature checked


@dataclass(frozen=True)
class NetworkKind:
    """One kind of network.

    Fields:
        name: the kind ("generator"), as in config.json's "kind" and the registry's `kind`.
        title: how messages name it ("BDMM generator").
        files: the authors' file names for it, preferred first ("latest_net_G.pth").
        setup_name: the registry entry / `bdmm setup` item it is installed as.
        prefix: registry prefix that turns a data set name into an entry ("generator-" +
            "fashionvideo"); "" when there is one entry only.
        signature: ``(keys, state dict) -> bool``: whether an authors' state dict holds this
            kind, from key names (and a shape where names alone do not tell); None for ONNX.
        loader: ``"module:function"`` of the strict checker: for state-dict kinds
            ``(Checkpoint, kind, source) -> Checkpoint`` (layout checked on the meta device,
            config filled in); for ONNX kinds ``(setup_name, path) -> session``.
        format: STATE_DICT or ONNX.
        option: the `bdmm animate` option that takes an imported folder of this kind ("" none).
    """

    name: str
    title: str
    files: tuple[str, ...]
    setup_name: str
    prefix: str
    signature: Callable[[set, Mapping], bool] | None
    loader: str
    format: str = STATE_DICT
    option: str = ""

    @property
    def importable(self) -> bool:
        """`bdmm weights import` converts it (a state dict)."""
        return self.format == STATE_DICT

    def matches(self, sd: Mapping) -> bool:
        """Whether state dict `sd` holds this kind (False for ONNX kinds)."""
        return self.signature is not None and self.signature(set(sd), sd)

    def checker(self) -> Callable:
        """The strict checker named by `loader`, imported now."""
        module, _, attr = self.loader.partition(":")
        return getattr(importlib.import_module(module), attr)


# --- key signatures (checked in table order: the first that matches wins) ---------------------

_GENERATOR_PREFIXES = ("x_ref.", "x_encoder.", "warp_encoder.", "decoder256.")
_SPIN_HEAD = ("fc1.weight", "fc2.weight", "decpose.weight", "decshape.weight", "deccam.weight")


def _is_generator(keys: set, sd: Mapping) -> bool:
    return any(k.startswith(_GENERATOR_PREFIXES) for k in keys)


def _is_spin(keys: set, sd: Mapping) -> bool:
    return any(k in keys for k in _SPIN_HEAD) or "init_pose" in keys


def _is_openpose(keys: set, sd: Mapping) -> bool:
    return any(k.startswith("model0.conv1_1.") for k in keys)


def _is_any_discriminator(keys: set, sd: Mapping) -> bool:
    return "block0.model.1.weight" in keys or "conv.weight_orig" in keys


def _is_temporal_discriminator(keys: set, sd: Mapping) -> bool:
    first = sd.get("block0.model.1.weight")
    temporal = (first is not None and first.dim() == 5) or any(k.startswith("block1.") for k in keys)
    return _is_any_discriminator(keys, sd) and temporal


def _is_discriminator(keys: set, sd: Mapping) -> bool:
    return _is_any_discriminator(keys, sd) and not _is_temporal_discriminator(keys, sd)


_MODEL_CHECK = "bdmm_cli.model.checkpoint:check_network"

#: Every network kind, in the order `bdmm setup` lists them and detection tries them.
TABLE: tuple[NetworkKind, ...] = (
    NetworkKind("generator", "BDMM generator", ("latest_net_G.pth",), "generator-fashionvideo", "generator-",
                _is_generator, _MODEL_CHECK, option="--weights DIR"),
    NetworkKind("discriminator", "BDMM spatial discriminator (D)", ("latest_net_D.pth",),
                "discriminator-fashionvideo", "discriminator-", _is_discriminator, _MODEL_CHECK),
    NetworkKind("temporal_discriminator", "BDMM temporal discriminator (D_V)", ("latest_net_D_V.pth",),
                "temporal-discriminator-fashionvideo", "temporal-discriminator-", _is_temporal_discriminator,
                _MODEL_CHECK),
    NetworkKind("spin", "SPIN/HMR regressor", ("spin_ckpt.pth", "model_checkpoint.pt"), "spin", "", _is_spin,
                "bdmm_cli.pose.hmr:check_spin_checkpoint", option="--pose-weights DIR"),
    NetworkKind("openpose_body25", "OpenPose BODY_25 network", ("openpose_body25.pth",), "openpose-body25", "",
                _is_openpose, "bdmm_cli.pose.openpose:check_openpose_checkpoint"),
    NetworkKind("dwpose_det", "DWPose's person detector (YOLOX-L, ONNX)", ("yolox_l.onnx",), "dwpose-det", "",
                None, "bdmm_cli.pose.dwpose:open_onnx", format=ONNX),
    NetworkKind("dwpose_pose", "DWPose whole-body keypoints (ONNX)", ("dw-ll_ucoco_384.onnx",), "dwpose-pose", "",
                None, "bdmm_cli.pose.dwpose:open_onnx", format=ONNX),
)

#: {kind name: NetworkKind}.
KINDS: dict[str, NetworkKind] = {k.name: k for k in TABLE}
#: The kinds `bdmm weights import` converts (state dicts), in table order.
IMPORTABLE: tuple[str, ...] = tuple(k.name for k in TABLE if k.importable)


def title(kind: str) -> str:
    """How messages name `kind` (the kind itself when it is not in the table)."""
    return KINDS[kind].title if kind in KINDS else kind


def by_setup_name(name: str) -> NetworkKind | None:
    """The kind installed as registry entry / setup item `name`, or None."""
    return next((k for k in TABLE if k.setup_name == name), None)


def detect(sd: Mapping) -> str | None:
    """The first kind (table order) whose signature matches `sd`, or None."""
    return next((k.name for k in TABLE if k.matches(sd)), None)


__all__ = ["IMPORTABLE", "KINDS", "ONNX", "STATE_DICT", "TABLE", "NetworkKind", "by_setup_name", "detect", "title"]
