"""OpenPose BODY_25 (bdmm_cli.pose.openpose) against the facts in docs/openpose.md.

Network: key layout restated from the document's tables; forward against an independent
float64 evaluation with torch.nn.functional over the same state dict. Decoding: heatmaps
and PAFs rendered from known skeletons (tests/openpose_helpers.py) must give the skeletons
back. Tracking: synthetic sequences against a scalar One-Euro filter written out in the test
helpers. Random weights only.
"""

from __future__ import annotations

import collections
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from bdmm_cli.errors import CheckpointError
from bdmm_cli.pose.openpose import (
    OpenPoseBody25,
    OpenPoseDetector,
    Person,
    PersonTracker,
    decode_body25,
    find_peaks,
    load_openpose,
    preprocess_openpose,
    select_max_box,
)
from openpose_helpers import StandInNet, geometry, render, skeleton
from pose_helpers import one_euro_reference

# ------------------------------------------------------------------------------------------
# the network
# ------------------------------------------------------------------------------------------

STEM = [  # (layer, in, out, activation) as the document's table; None = max pool 2x2
    ("conv1_1", 3, 64, "relu"), ("conv1_2", 64, 64, "relu"), None,
    ("conv2_1", 64, 128, "relu"), ("conv2_2", 128, 128, "relu"), None,
    ("conv3_1", 128, 256, "relu"), ("conv3_2", 256, 256, "relu"), ("conv3_3", 256, 256, "relu"),
    ("conv3_4", 256, 256, "relu"), None,
    ("conv4_1", 256, 512, "relu"), ("conv4_2", 512, 512, "prelu4_2"),
    ("conv4_3_CPM", 512, 256, "prelu4_3_CPM"), ("conv4_4_CPM", 256, 128, "prelu4_4_CPM"),
]
BLOCKS = [  # (S, L, in, width, mid, out) in registration order
    (0, 2, 128, 96, 256, 52), (1, 2, 180, 128, 512, 52), (2, 2, 180, 128, 512, 52),
    (3, 2, 180, 128, 512, 52), (0, 1, 180, 96, 256, 26), (1, 1, 206, 128, 512, 26),
]


def expected_layout() -> list[tuple[str, tuple[int, ...]]]:
    keys = []
    for layer in STEM:
        if layer is None:
            continue
        name, cin, cout, act = layer
        keys += [(f"model0.{name}.weight", (cout, cin, 3, 3)), (f"model0.{name}.bias", (cout,))]
        if act != "relu":
            keys.append((f"model0.{act}.weight", (cout,)))
    for s, l, cin, width, mid, out in BLOCKS:
        p, t = f"block{s}{l}.main", f"stage{s}_L{l}"
        for i in range(1, 6):
            for c in range(3):
                src = (cin if i == 1 else 3 * width) if c == 0 else width
                keys += [(f"{p}.{i - 1}.split{c}.Mconv{i}_{t}_{c}.weight", (width, src, 3, 3)),
                         (f"{p}.{i - 1}.split{c}.Mconv{i}_{t}_{c}.bias", (width,)),
                         (f"{p}.{i - 1}.split{c}.Mprelu{i}_{t}_{c}.weight", (width,))]
        keys += [(f"{p}.5.split0.Mconv6_{t}.weight", (mid, 3 * width, 1, 1)), (f"{p}.5.split0.Mconv6_{t}.bias", (mid,)),
                 (f"{p}.5.split0.Mprelu6_{t}.weight", (mid,)),
                 (f"{p}.6.split0.Mconv7_{t}.weight", (out, mid, 1, 1)), (f"{p}.6.split0.Mconv7_{t}.bias", (out,))]
    return keys


def reference_forward(sd: dict[str, torch.Tensor], x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The document's network in float64 with torch.nn.functional, read off the key names."""
    sd = {k: v.double() for k, v in sd.items()}

    def conv(name, h):
        w = sd[name + ".weight"]
        return F.conv2d(h, w, sd[name + ".bias"], padding=w.shape[-1] // 2)

    h = x.double()
    for layer in STEM:
        if layer is None:
            h = F.max_pool2d(h, 2, 2)
            continue
        name, _, _, act = layer
        h = conv(f"model0.{name}", h)
        h = F.relu(h) if act == "relu" else F.prelu(h, sd[f"model0.{act}.weight"])
    feat = h

    def block(s, l, h):
        p, t = f"block{s}{l}.main", f"stage{s}_L{l}"
        for i in range(1, 6):
            cols = []
            for c in range(3):
                h = F.prelu(conv(f"{p}.{i - 1}.split{c}.Mconv{i}_{t}_{c}", h), sd[f"{p}.{i - 1}.split{c}.Mprelu{i}_{t}_{c}.weight"])
                cols.append(h)
            h = torch.cat(cols, 1)
        h = F.prelu(conv(f"{p}.5.split0.Mconv6_{t}", h), sd[f"{p}.5.split0.Mprelu6_{t}.weight"])
        return conv(f"{p}.6.split0.Mconv7_{t}", h)

    p0 = block(0, 2, feat)
    p1 = block(1, 2, torch.cat([feat, p0], 1))
    p2 = block(2, 2, torch.cat([feat, p1], 1))
    p3 = block(3, 2, torch.cat([feat, p2], 1))
    h0 = block(0, 1, torch.cat([feat, p3], 1))
    h1 = block(1, 1, torch.cat([feat, h0, p3], 1))
    return h1, p3


def random_state_dict(seed: int = 0) -> dict[str, torch.Tensor]:
    """Random weights in the authors' layout, PReLU slopes and biases random too."""
    g = torch.Generator().manual_seed(seed)
    sd = {}
    for key, shape in expected_layout():
        if "prelu" in key.lower():
            sd[key] = torch.rand(shape, generator=g) * 0.5
        elif key.endswith(".bias"):
            sd[key] = torch.randn(shape, generator=g) * 0.05
        else:
            fan_in = math.prod(shape[1:])
            sd[key] = torch.randn(shape, generator=g) * math.sqrt(2.0 / fan_in)
    return sd


def test_state_dict_layout_is_the_authors_file():
    sd = OpenPoseBody25().state_dict()
    assert [(k, tuple(v.shape)) for k, v in sd.items()] == expected_layout()
    assert len(sd) == 327
    assert sum(v.numel() for v in sd.values()) == 26_166_084


def test_forward_matches_an_independent_float64_evaluation():
    sd = random_state_dict(1)
    net = OpenPoseBody25()
    net.load_state_dict(sd, strict=True)
    net.eval()
    x = torch.rand(1, 3, 64, 72, generator=torch.Generator().manual_seed(2)) - 0.5
    with torch.no_grad():
        heat, paf = net(x)
    ref_heat, ref_paf = reference_forward(sd, x)
    assert heat.shape == (1, 26, 8, 9) and paf.shape == (1, 52, 8, 9)
    for got, ref in ((heat, ref_heat), (paf, ref_paf)):
        scale = ref.abs().max().item()
        assert scale > 1e-3  # the signal survives the 60 layers
        assert (got.double() - ref).abs().max().item() <= 1e-4 * scale


# ------------------------------------------------------------------------------------------
# loading
# ------------------------------------------------------------------------------------------

def test_load_openpose_reads_the_authors_layout(tmp_path):
    sd = random_state_dict(3)
    path = tmp_path / "openpose_body25.pth"
    torch.save(collections.OrderedDict(sd), path)
    net = load_openpose(path)
    assert not net.training
    got = net.state_dict()
    assert list(got) == list(sd) and all(torch.equal(got[k], sd[k]) for k in sd)


class _Payload:
    def __reduce__(self):
        return (print, ("pickled code ran",))


@pytest.mark.parametrize("change, message", [
    (lambda sd: sd.pop("block11.main.6.split0.Mconv7_stage1_L1.bias"), "1 missing"),
    (lambda sd: sd.update({"module.extra": torch.zeros(1)}), "1 unexpected"),
    (lambda sd: sd.update({"model0.prelu4_2.weight": torch.zeros(3)}), "misshaped"),
])
def test_load_openpose_refuses_a_wrong_layout(tmp_path, change, message):
    sd = random_state_dict(4)
    change(sd)
    path = tmp_path / "bad.pth"
    torch.save(sd, path)
    with pytest.raises(CheckpointError, match=message):
        load_openpose(path)


def test_load_openpose_refuses_pickled_code_and_non_state_dicts(tmp_path, capsys):
    evil = tmp_path / "evil.pth"
    torch.save({"model0.conv1_1.weight": _Payload()}, evil)
    with pytest.raises(CheckpointError, match="pickled objects"):
        load_openpose(evil)
    assert "pickled code ran" not in capsys.readouterr().out
    tensor = tmp_path / "tensor.pth"
    torch.save(torch.zeros(3), tensor)
    with pytest.raises(CheckpointError, match="not an OpenPose BODY_25 state dict"):
        load_openpose(tensor)
    # A "state_dict" / "model" wrapper is unwrapped by the one reader every checkpoint goes
    # through (state_dict.flatten_state_dict), so a wrapped file loads the same weights.
    nested = tmp_path / "nested.pth"
    sd = random_state_dict(5)
    torch.save({"state_dict": sd}, nested)
    got = load_openpose(nested).state_dict()
    assert all(torch.equal(got[k], v.float()) for k, v in sd.items())
    wrapped_tensor = tmp_path / "wrapped_tensor.pth"
    torch.save({"state_dict": torch.zeros(3)}, wrapped_tensor)
    with pytest.raises(CheckpointError, match="does not fit OpenPose BODY_25.*unexpected: state_dict"):
        load_openpose(wrapped_tensor)


# ------------------------------------------------------------------------------------------
# preprocessing
# ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("wh, scale, shape, pad", [
    ((640, 480), 368 / 480, (368, 496), (0, 2, 0, 3)),
    ((480, 640), 0.575, (368, 368), (0, 46, 0, 46)),
    ((517, 333), 368 / 333, (368, 576), (0, 2, 0, 3)),
])
def test_preprocess_matches_the_documented_examples(wh, scale, shape, pad):
    w, h = wh
    inp = preprocess_openpose(np.zeros((h, w, 3), np.uint8))
    assert inp.tensor.shape == (1, 3, *shape) and inp.tensor.dtype == torch.float32
    assert inp.scale == pytest.approx(scale, abs=1e-12)
    assert tuple(inp.pad) == pad


def test_preprocess_is_bgr_normalised_and_grey_padded():
    import cv2

    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (120, 100, 3), dtype=np.uint8)
    inp = preprocess_openpose(rgb)
    top, left, bottom, right = inp.pad
    t = inp.tensor[0].numpy()
    # the documented resize: fx = fy = scale on the BGR uint8 image
    bgr = cv2.resize(np.ascontiguousarray(rgb[:, :, ::-1]), (0, 0), fx=368 / 120, fy=368 / 120,
                     interpolation=cv2.INTER_CUBIC)
    inner = t[:, top:t.shape[1] - bottom, left:t.shape[2] - right]
    np.testing.assert_array_equal(inner, (bgr.transpose(2, 0, 1).astype(np.float32) - 128) / 256)
    assert (t[:, :, :left] == 0).all() and (t[:, :, t.shape[2] - right:] == 0).all()
    assert left + right > 0  # 100 x 368/120 = 307 < 368: padded to the minimum width
    red = preprocess_openpose(np.full((64, 64, 3), (255, 0, 0), np.uint8)).tensor[0]
    assert red[2, 10, 10] == pytest.approx(127 / 256) and red[0, 10, 10] == pytest.approx(-0.5)


# ------------------------------------------------------------------------------------------
# peaks
# ------------------------------------------------------------------------------------------

def test_peak_rules():
    hm = np.zeros((20, 30), np.float32)
    hm[5, 10] = 0.5            # kept (leftmost of a close pair) although weaker
    hm[8, 13] = 0.9            # distance sqrt(18) = 4.2 < 6: suppressed
    hm[5, 20], hm[5, 21] = 0.7, 0.7   # symmetric 2-pixel plateau: no peak
    hm[15, 2] = 0.09           # below 0.1: never a peak
    hm[15, 25] = 0.3           # distance to nothing: kept
    hm[10, 25] = 0.4           # same column: y-ascending after the x sort; 5 px from (25, 15)? yes -> suppressed
    hm[2, 25] = 0.2            # 8 px from (25, 10): kept
    peaks = find_peaks(hm, first_id=7)
    assert [(x, y) for x, y, _, _ in peaks] == [(10, 5), (25, 2), (25, 10)]
    assert [i for *_, i in peaks] == [7, 8, 9]
    assert peaks[0][2] == pytest.approx(0.5)


# ------------------------------------------------------------------------------------------
# decoding synthetic outputs
# ------------------------------------------------------------------------------------------

HW = (240, 320)


def decode(people, hw=HW, **kw):
    heat, paf = render(people, hw, **kw)
    scale, pad, _ = geometry(hw)
    return decode_body25(torch.from_numpy(heat)[None], torch.from_numpy(paf)[None], scale, pad, hw)


def assert_recovers(found: list[np.ndarray], truth: list[np.ndarray], hw=HW):
    """Each true skeleton is one decoded person: same joints present, each within 1.5 input px."""
    scale = geometry(hw)[0]
    assert len(found) == len(truth)
    unused = list(range(len(found)))
    for t in truth:
        present = t[:, 2] > 0
        match = None
        for i in unused:
            f = found[i]
            if np.array_equal(f[:, 0] != -1, present) and np.abs(f[present, :2] - t[present, :2]).max() <= 1.5 / scale:
                match = i
                break
        assert match is not None, "a skeleton was not recovered"
        unused.remove(match)
        f = found[match]
        np.testing.assert_array_equal(f[~present], np.tile([-1.0, -1.0, 0.0], ((~present).sum(), 1)))
        assert (f[present, 2] >= 0.1).all() and (f[present, 2] <= 1.1).all()


def test_decodes_one_person():
    truth = skeleton(150.3, 20.2, 200)
    found = decode([truth])
    assert_recovers(found, [truth])
    assert found[0].shape == (25, 3) and found[0].dtype == np.float64


def test_decodes_occluded_joints_as_missing():
    truth = skeleton(150.3, 20.2, 200, missing=(4, 6, 7, 11, 22, 23, 24, 17))
    assert_recovers(decode([truth]), [truth])


def test_decodes_overlapping_people():
    a = skeleton(140.2, 20.1, 200)
    b = skeleton(185.4, 50.3, 170, missing=(6, 7))
    box = lambda t: (t[t[:, 2] > 0, 0].min(), t[t[:, 2] > 0, 0].max())
    assert box(b)[0] < box(a)[1]  # the boxes overlap
    assert_recovers(decode([a, b]), [a, b])


def test_nothing_and_noise_give_nobody():
    assert decode([]) == []
    assert decode([], heat_noise=0.099, paf_noise=0.05, seed=1) == []


def test_noisy_maps_still_give_the_person():
    truth = skeleton(150.3, 20.2, 200)
    assert_recovers(decode([truth], heat_noise=0.05, paf_noise=0.02, seed=3), [truth])


def test_a_body_without_neck_falls_apart_into_parts():
    """Documented consequence of the assembly: without a Neck, several persons of >= 3 parts."""
    truth = skeleton(150.3, 20.2, 200, missing=(1,))
    found = decode([truth])
    assert len(found) > 1
    scale = geometry(HW)[0]
    seen = np.zeros(25, bool)
    for f in found:
        present = f[:, 0] != -1
        assert present.sum() >= 3 and not present[1]
        assert np.abs(f[present, :2] - truth[present, :2]).max() <= 1.5 / scale
        seen |= present
    assert seen.sum() == 24


def test_coordinates_are_clipped_to_the_image():
    # a person partly outside the image (in the padding): joints land on the border
    hw = (240, 160)  # narrow: padded left and right
    truth = skeleton(150.0, 20.2, 200)
    found = decode([truth], hw=hw)
    assert len(found) == 1
    xs = found[0][found[0][:, 0] != -1, 0]
    assert xs.max() == 160.0 and xs.min() >= 0


def test_limbs_longer_than_half_the_map_are_penalised():
    # ratio = mean + min(92 / length - 1, 0) with 92 = 184 // 2; PAF score 0.5 along x:
    # 80 px: 0.5 (no penalty); 150 px: 0.5 + 92/150 - 1 > 0 (kept); 200 px: < 0 (refused)
    from bdmm_cli.pose.openpose import _limb_pairs

    paf_x = np.full((184, 600), 0.5, np.float32)
    paf_y = np.zeros((184, 600), np.float32)
    a = [(10, 90, 1.0, 0)]
    assert _limb_pairs(a, [(90, 90, 1.0, 1)], paf_x, paf_y, 92) == [(0, 1, pytest.approx(0.5))]
    assert _limb_pairs(a, [(160, 90, 1.0, 1)], paf_x, paf_y, 92) == [(0, 1, pytest.approx(0.5 + 92 / 150 - 1))]
    assert _limb_pairs(a, [(210, 90, 1.0, 1)], paf_x, paf_y, 92) == []


# ------------------------------------------------------------------------------------------
# selection and tracking
# ------------------------------------------------------------------------------------------

def person(cx, top, height, score=10.0, hw=(480, 640)) -> Person:
    kp = skeleton(cx, top, height)
    kp[:, 2] = 0.8
    return Person(kp, score)


def test_max_box_selection_keeps_the_first_of_equal_areas():
    boxes = [np.array([0, 0, 10, 10], np.float32), np.array([5, 5, 25, 15], np.float32),
             np.array([0, 0, 20, 10], np.float32)]
    assert select_max_box(boxes) == 1
    assert select_max_box([np.zeros(4, np.float32)] * 2) == 0
    assert select_max_box([]) is None


def expected_smoothed(raw_frames: list[np.ndarray]) -> np.ndarray:
    """The last frame of a track whose filters started on raw_frames[0] (joint by joint)."""
    out = np.array(raw_frames[-1], dtype=np.float64)
    for j in range(25):
        for c in range(2):
            out[j, c] = one_euro_reference([f[j, c] for f in raw_frames])[-1]
    return out


def test_tracking_smooths_from_frame_two_and_follows_people():
    # A (small) all along but frame 7; B (large) enters at 3, leaves after 5; lists in varying order
    a = [person(80 + 4 * t, 100 + 2 * t, 100, score=5.0 + t) for t in range(10)]
    b = [person(400 - 5 * t, 50, 220, score=9.0 - t) for t in range(10)]
    frames = []
    for t in range(10):
        people = [] if t == 7 else [a[t]]
        if 3 <= t <= 5:
            people = [b[t]] + people if t % 2 else people + [b[t]]
        frames.append(people)
    tracker = PersonTracker()
    got = [tracker(people) for people in frames]
    raw_a, raw_b = [p.keypoints for p in a], [p.keypoints for p in b]
    expect = {
        0: raw_a[0], 1: raw_a[1], 2: expected_smoothed(raw_a[1:3]),   # frames 0 and 1 raw
        3: raw_b[3], 4: expected_smoothed(raw_b[3:5]), 5: expected_smoothed(raw_b[3:6]),  # B new at 3: raw
        6: expected_smoothed(raw_a[1:7]),                              # A kept its filters while not selected
        7: None,
        8: raw_a[8], 9: expected_smoothed(raw_a[8:10]),                # after nobody: raw again, then smoothed
    }
    for t, want in expect.items():
        if want is None:
            assert got[t] is None
            continue
        kp, box = got[t]
        np.testing.assert_allclose(kp, want, rtol=0, atol=1e-9, err_msg=f"frame {t}")
        found = kp[kp[:, 0] != -1]
        np.testing.assert_allclose(box, [found[:, 0].min(), found[:, 1].min(), found[:, 0].max(), found[:, 1].max()],
                                   rtol=1e-6)
    assert not np.allclose(got[2][0], raw_a[2])  # smoothing did something


def test_similarity_uses_the_bottom_right_product_not_the_area():
    """A 15 px jump near the top-left corner breaks the track (small x1*y1); near the
    bottom-right the same jump is matched and smoothed."""
    for cx, top, matched in ((30.0, 5.0, False), (560.0, 400.0, True)):
        seq = [person(cx, top, 40), person(cx + 1, top, 40), person(cx + 2, top, 40), person(cx + 17, top, 40)]
        tracker = PersonTracker()
        out = [tracker([p]) for p in seq]
        last = out[-1][0]
        if matched:
            np.testing.assert_allclose(last, expected_smoothed([p.keypoints for p in seq[1:]]), atol=1e-9)
        else:
            np.testing.assert_array_equal(last, seq[-1].keypoints)


# ------------------------------------------------------------------------------------------
# the detector
# ------------------------------------------------------------------------------------------

def test_detector_video_mode_is_the_image_path_then_smoothed():
    hw = (240, 320)
    seq = [[skeleton(150.3 + 3 * t, 20.2 + t, 200, missing=(6, 7))] for t in range(5)]
    seq[2].append(skeleton(40.1, 150.3, 60))  # a small second person: never selected
    net = StandInNet(seq, hw)
    frames = [StandInNet.frame(t, hw) for t in range(5)]
    single = OpenPoseDetector(net, video=False)
    raw = [single(f) for f in frames]
    video = OpenPoseDetector(net, video=True)
    got = [video(f) for f in frames]
    for t in range(5):
        assert raw[t] is not None and got[t] is not None
        kp = raw[t].keypoints
        assert (kp[[6, 7]] == 0).all() and (kp[[0, 1, 2, 8], 2] > 0).all()  # missing joints are (0, 0, 0)
        truth = seq[t][0]
        present = truth[:, 2] > 0
        assert np.abs(kp[present, :2] - truth[present, :2]).max() <= 1.5 / geometry(hw)[0] + 1e-3
    for t in (0, 1):
        np.testing.assert_array_equal(got[t].keypoints, raw[t].keypoints)
    present = raw[0].valid
    for t in (2, 3, 4):
        want = np.stack([[one_euro_reference([float(raw[s].keypoints[j, c]) for s in range(1, t + 1)])[-1]
                          for c in range(2)] for j in range(25)])
        np.testing.assert_allclose(got[t].keypoints[present, :2], want[present], atol=1e-3)
    assert video.smooths_keypoints and not single.smooths_keypoints


def test_detect_batch_equals_one_frame_at_a_time():
    hw = (240, 320)
    seq = [[skeleton(150.3 + 3 * t, 20.2, 200)] for t in range(4)] + [[]]
    frames = [StandInNet.frame(t, hw) for t in range(5)]
    one = OpenPoseDetector(StandInNet(seq, hw), video=True)
    singles = [one(f) for f in frames]
    net = StandInNet(seq, hw)
    batched = OpenPoseDetector(net, video=True).detect_batch(frames)
    assert net.calls == [5]
    assert batched[4] is None and singles[4] is None
    for s, b in zip(singles[:4], batched[:4]):
        np.testing.assert_array_equal(s.keypoints, b.keypoints)
