"""DWPose (`--keypoints dwpose`): COCO-WholeBody -> BODY_25 on synthetic skeletons, YOLOX and
SimCC decoding, the detector end to end on ONNX stand-ins exported here with torch.onnx (same
signatures as the published files), batching, tracking like OpenPose, and refusal of bad files."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")  # torch.onnx.export needs it

import dwpose_helpers as H  # noqa: E402
from bdmm_cli.pose.body25 import BODY25_NAMES  # noqa: E402
from bdmm_cli.pose.wholebody import WHOLEBODY_NAMES, body25_from_wholebody  # noqa: E402

# The table of docs/openpose.md ("BODY_25 from other detectors"), by name.
DIRECT = {
    "Nose": "nose", "RShoulder": "right_shoulder", "RElbow": "right_elbow", "RWrist": "right_wrist",
    "LShoulder": "left_shoulder", "LElbow": "left_elbow", "LWrist": "left_wrist", "RHip": "right_hip",
    "RKnee": "right_knee", "RAnkle": "right_ankle", "LHip": "left_hip", "LKnee": "left_knee",
    "LAnkle": "left_ankle", "REye": "right_eye", "LEye": "left_eye", "REar": "right_ear", "LEar": "left_ear",
    "LBigToe": "left_big_toe", "LSmallToe": "left_small_toe", "LHeel": "left_heel",
    "RBigToe": "right_big_toe", "RSmallToe": "right_small_toe", "RHeel": "right_heel",
}
MIDPOINTS = {"Neck": ("left_shoulder", "right_shoulder"), "MidHip": ("left_hip", "right_hip")}
# COCO-WholeBody's published point names, in order (body 17, then the 6 foot points).
COCO_WHOLEBODY_ORDER = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder", "left_elbow",
    "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle",
    "right_ankle", "left_big_toe", "left_small_toe", "left_heel", "right_big_toe", "right_small_toe", "right_heel",
)


def wholebody_from_named(named: dict[str, tuple[float, float, float]], rng) -> tuple[np.ndarray, np.ndarray]:
    """(133, 2), (133,) with the named body/foot points; face and hands random (never used)."""
    kp = rng.uniform(0, 300, size=(133, 2))
    sc = rng.uniform(0, 2, size=133)
    for i, name in enumerate(COCO_WHOLEBODY_ORDER):
        x, y, s = named[name]
        kp[i], sc[i] = (x, y), s
    return kp, sc


def expected_body25(named: dict[str, tuple[float, float, float]], size=(320, 240), thr=0.3) -> np.ndarray:
    w, h = size

    def present(n):
        x, y, s = named[n]
        return s >= thr and 0 <= x <= w - 1 and 0 <= y <= h - 1

    out = np.zeros((25, 3))
    for j, name in enumerate(BODY25_NAMES):
        if name in DIRECT and present(DIRECT[name]):
            x, y, s = named[DIRECT[name]]
            out[j] = (x, y, min(s, 1.0))
        elif name in MIDPOINTS and all(present(p) for p in MIDPOINTS[name]):
            (xa, ya, sa), (xb, yb, sb) = (named[p] for p in MIDPOINTS[name])
            out[j] = ((xa + xb) / 2, (ya + yb) / 2, min(sa, sb, 1.0))
    return out


def standing(scale=1.0, dx=0.0) -> dict[str, tuple[float, float, float]]:
    """A synthetic standing skeleton (image x right, y down; the person faces the camera, so
    their left is on the image's right)."""
    pts = {
        "nose": (160, 30), "left_eye": (165, 25), "right_eye": (155, 25), "left_ear": (172, 28),
        "right_ear": (148, 28), "left_shoulder": (185, 60), "right_shoulder": (135, 60),
        "left_elbow": (195, 95), "right_elbow": (125, 95), "left_wrist": (200, 125), "right_wrist": (120, 125),
        "left_hip": (175, 130), "right_hip": (145, 130), "left_knee": (177, 175), "right_knee": (143, 175),
        "left_ankle": (178, 215), "right_ankle": (142, 215), "left_big_toe": (188, 228),
        "left_small_toe": (194, 226), "left_heel": (176, 222), "right_big_toe": (132, 228),
        "right_small_toe": (126, 226), "right_heel": (144, 222),
    }
    return {k: (dx + x * scale, y * scale, 0.8) for k, (x, y) in pts.items()}


def test_the_table_names_match_coco_wholebody_order():
    assert WHOLEBODY_NAMES == COCO_WHOLEBODY_ORDER


def test_body25_of_a_synthetic_skeleton():
    rng = np.random.default_rng(0)
    named = standing()
    kp, sc = wholebody_from_named(named, rng)
    got = body25_from_wholebody(kp, sc, (320, 240))
    np.testing.assert_allclose(got, expected_body25(named), atol=1e-9)
    assert (got[:, 2] > 0).all()  # every BODY_25 joint, feet included
    # Neck and MidHip by hand
    np.testing.assert_allclose(got[BODY25_NAMES.index("Neck")], (160, 60, 0.8))
    np.testing.assert_allclose(got[BODY25_NAMES.index("MidHip")], (160, 130, 0.8))
    # the person's left is on the image's right, in both skeletons
    assert got[BODY25_NAMES.index("LShoulder"), 0] > got[BODY25_NAMES.index("RShoulder"), 0]


def test_missing_parents_low_scores_and_points_outside_the_image():
    rng = np.random.default_rng(1)
    named = standing(dx=40)
    named["left_shoulder"] = (*named["left_shoulder"][:2], 0.2)        # below 0.3: missing, so is Neck
    named["right_hip"] = (*named["right_hip"][:2], 1.7)                # SimCC scores can exceed 1: conf 1
    named["left_hip"] = (*named["left_hip"][:2], 0.5)                  # MidHip conf = min(0.5, 1.0)
    named["right_heel"] = (-3.0, named["right_heel"][1], 0.9)          # outside the image: missing
    named["left_small_toe"] = (330.0, 226.0, 0.9)                      # past the right edge (W = 320)
    kp, sc = wholebody_from_named(named, rng)
    got = body25_from_wholebody(kp, sc, (320, 240))
    want = expected_body25(named)
    np.testing.assert_allclose(got, want, atol=1e-9)
    idx = BODY25_NAMES.index
    assert (got[idx("LShoulder")] == 0).all() and (got[idx("Neck")] == 0).all()
    assert got[idx("RHip"), 2] == 1.0 and got[idx("MidHip"), 2] == pytest.approx(0.5)
    assert (got[idx("RHeel")] == 0).all() and (got[idx("LSmallToe")] == 0).all()
    assert got[idx("RShoulder"), 2] == pytest.approx(0.8)
    # nobody: all missing
    kp2, sc2 = wholebody_from_named({k: (v[0], v[1], 0.1) for k, v in named.items()}, rng)
    sc2[:] = 0.1
    assert (body25_from_wholebody(kp2, sc2, (320, 240)) == 0).all()


def test_yolox_decoding_nms_and_thresholds():
    from bdmm_cli.pose.dwpose import decode_yolox

    # canvas cx, cy, w, h, score; r = 2 (a 320x240 frame on the 640 canvas)
    rows = H.yolox_rows([(280, 240, 160, 320, 0.9), (300, 250, 160, 320, 0.6),  # overlaps the first: NMS
                         (520, 100, 64, 128, 0.5),                                # a second person
                         (100, 400, 64, 64, 0.25)])                              # below 0.3 after NMS
    dets = decode_yolox(rows, 2.0)
    np.testing.assert_allclose(dets, [[100, 40, 180, 200, 0.9], [244, 18, 276, 82, 0.5]], atol=1e-4)


def test_simcc_decoding():
    from bdmm_cli.pose.dwpose import decode_simcc

    x = np.zeros((2, 576), np.float32)
    y = np.zeros((2, 768), np.float32)
    x[0, 101], y[0, 300], x[1, 7], y[1, 9] = 0.8, 0.6, 1.4, 1.0
    locs, scores = decode_simcc(x, y)
    np.testing.assert_allclose(locs, [[50.5, 150.0], [3.5, 4.5]])
    np.testing.assert_allclose(scores, [0.7, 1.2], rtol=1e-6)


def test_detector_end_to_end_gives_the_known_body25(tmp_path):
    """A 320x240 frame; the stand-in YOLOX reports one box (100, 40)-(180, 200) in frame pixels,
    the stand-in DWPose peaks at known crop pixels. By hand: the box grows 1.25x to 100x200 about
    (140, 120), then to the 288:384 aspect: 150x200, so crop pixel (u, v) is frame pixel
    (65 + u * 150/288, 20 + v * 200/384)."""
    from bdmm_cli.pose.dwpose import DWPoseDetector, DWPoseModels

    xy = H.skeleton_xy()
    det, pose = H.write_standins(tmp_path, xy=xy)
    models = DWPoseModels(det, pose)
    frame = np.full((240, 320, 3), 90, np.uint8)
    body = DWPoseDetector(models, video=False)(frame)
    frame_xy = np.stack([65 + xy[:, 0] * 150 / 288, 20 + xy[:, 1] * 200 / 384], axis=1)
    named = {name: (frame_xy[i, 0], frame_xy[i, 1], 0.9) for i, name in enumerate(COCO_WHOLEBODY_ORDER)}
    np.testing.assert_allclose(body.keypoints, expected_body25(named), atol=1e-3)
    assert body.num_valid == 25
    # nobody: a detector table without boxes
    (tmp_path / "empty").mkdir()
    det2 = H.export(H.StandInDetector([]), tmp_path / "empty" / "yolox_l.onnx", "det")
    assert DWPoseDetector(DWPoseModels(det2, pose), video=False)(frame) is None


def test_batched_and_one_at_a_time_files_agree(tmp_path):
    from bdmm_cli.pose.dwpose import DWPoseModels

    boxes = [(280, 240, 160, 320, 0.9), (520, 140, 96, 200, 0.8)]  # two people per frame
    a = DWPoseModels(*H.write_standins(tmp_path / "dyn", boxes=boxes, gain=3.0, batched=True))
    b = DWPoseModels(*H.write_standins(tmp_path / "one", boxes=boxes, gain=3.0, batched=False))
    assert a.det_batched and a.pose_batched and not b.det_batched and not b.pose_batched
    runs = []
    for m in (a, b):
        original = m._run
        m._run = lambda session, batched, x, original=original: (runs.append((batched, len(x))), original(session, batched, x))[1]
    frames = [np.full((240, 320, 3), v, np.uint8) for v in (40, 90, 160)]
    pa, pb = a.detect_people(frames), b.detect_people(frames)
    assert runs[:2] == [(True, 3), (True, 6)]  # one detector run for 3 frames, one pose run for 6 people
    assert [len(p) for p in pa] == [2, 2, 2]
    for fa, fb in zip(pa, pb):
        for x, y in zip(fa, fb):
            np.testing.assert_allclose(x.keypoints, y.keypoints, atol=1e-4)
    # brighter frames move the stand-in's points (so the tracking test below sees motion)
    assert not np.allclose(pa[0][0].keypoints[:, :2], pa[2][0].keypoints[:, :2])


def test_video_mode_tracks_and_smooths_exactly_like_openpose(tmp_path):
    """The same people through OpenPose's tracker (the authors' matching + One-Euro + largest box)
    give the DWPose detector's output frame for frame; frames 0 and 1 are raw, later ones smoothed."""
    from bdmm_cli.pose.dwpose import DWPoseDetector, DWPoseModels
    from bdmm_cli.pose.openpose import PersonTracker, to_body25

    boxes = [(280, 240, 160, 320, 0.9), (520, 140, 96, 200, 0.8)]
    models = DWPoseModels(*H.write_standins(tmp_path, boxes=boxes, gain=40.0))
    frames = [np.full((240, 320, 3), v, np.uint8) for v in (60, 75, 95, 80, 120, 100)]
    det = DWPoseDetector(models, video=True)
    got = det.detect_batch(frames[:4]) + det.detect_batch(frames[4:])  # state carries across calls
    assert det.smooths_keypoints
    raw = models.detect_people(frames)
    tracker = PersonTracker(smooth=True)
    for t, (people, body) in enumerate(zip(raw, got)):
        want = to_body25(tracker(people)[0])
        np.testing.assert_allclose(body.keypoints, want.keypoints, atol=1e-5)
    largest = [max(p, key=lambda q: np.ptp(q.keypoints[q.keypoints[:, 0] != -1, 0]) *
                   np.ptp(q.keypoints[q.keypoints[:, 0] != -1, 1])) for p in raw]
    for t in (0, 1):  # raw, the larger person
        np.testing.assert_allclose(got[t].keypoints, to_body25(largest[t].keypoints).keypoints, atol=1e-5)
    assert not np.allclose(got[2].keypoints[:, :2], to_body25(largest[2].keypoints).keypoints[:, :2], atol=1e-3)
    # smoothing off: every frame raw
    plain = DWPoseDetector(models, video=True, smooth=False).detect_batch(frames)
    for t in range(len(frames)):
        np.testing.assert_allclose(plain[t].keypoints, to_body25(largest[t].keypoints).keypoints, atol=1e-5)


def test_the_stage_uses_dwpose_once_smoothed_and_keys_the_cache_on_it(tmp_path):
    import torch

    from bdmm_cli.pose import HMR, PoseConfig, PoseEstimator
    from bdmm_cli.pose.dwpose import DWPoseDetector, DWPoseModels

    models = DWPoseModels(*H.write_standins(tmp_path / "a", gain=40.0))
    other = DWPoseModels(*H.write_standins(tmp_path / "b", gain=30.0))
    torch.manual_seed(0)
    hmr = HMR().eval()
    frames = [np.full((240, 320, 3), v, np.uint8) for v in (60, 75, 95, 80)]
    est = PoseEstimator(hmr, config=PoseConfig(batch_size=2), dwpose=models)
    out = list(est.process(iter(frames), video=True))
    assert all(f.pose is not None for f in out)
    assert est.keypoints_description.startswith("DWPose")
    # not smoothed a second time: the stage equals one that crops the detector's own output
    det = DWPoseDetector(models, video=True)

    class Plain:
        name = "plain"

        def __call__(self, image):
            return det(image)

    ref = list(PoseEstimator(hmr, detector=Plain(), config=PoseConfig(batch_size=2, smooth_keypoints=False)).process(
        iter(frames), video=True))
    for a, b in zip(out, ref):
        np.testing.assert_allclose(a.pose.keypoints, b.pose.keypoints, atol=1e-4)
    assert est.fingerprint() != PoseEstimator(hmr, dwpose=other).fingerprint()
    assert est.fingerprint() != PoseEstimator(hmr, config=PoseConfig(batch_size=2)).fingerprint()


def test_files_that_are_not_dwposes_are_refused(tmp_path):
    from bdmm_cli.errors import CheckpointError
    from bdmm_cli.pose.dwpose import DWPoseModels

    det, pose = H.write_standins(tmp_path)
    with pytest.raises(CheckpointError, match="is not a YOLOX detector"):
        DWPoseModels(pose, pose)
    with pytest.raises(CheckpointError, match="is not a DWPose whole-body model"):
        DWPoseModels(det, det)
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not an onnx file")
    with pytest.raises(CheckpointError, match="not a readable ONNX model"):
        DWPoseModels(junk, pose)


def test_registry_pins_the_two_published_files_consistently():
    """The models and the downloads name the same files, sizes and digests, and `bdmm setup`
    recognises them by those names."""
    from bdmm_cli.hub.registry import load_registry
    from bdmm_cli.setup import ITEMS

    reg = load_registry()
    sources = {s.name: s for s in reg.sources}
    items = {i.name: i for i in ITEMS}
    for name, fname in (("dwpose-det", "yolox_l.onnx"), ("dwpose-pose", "dw-ll_ucoco_384.onnx")):
        entry, src = reg.get(name), sources[name]
        assert entry.source == "setup" and entry.filename == src.filename == fname == items[name].files[0]
        assert len(entry.sha256) == 64 and entry.sha256 == src.sha256 and entry.size == src.size > 0
        assert src.provides == (name,) and "Apache-2.0" in entry.license and "Apache-2.0" in src.license
        assert src.url.startswith("https://huggingface.co/yzd-v/DWPose/resolve/") and src.url.endswith(fname)


def test_onnxruntime_providers_follow_the_device():
    import onnxruntime as ort

    from bdmm_cli.pose.dwpose import onnx_providers

    assert onnx_providers("cpu") == ["CPUExecutionProvider"]
    cuda = "CUDAExecutionProvider" in ort.get_available_providers()
    assert onnx_providers("cuda:0") == (["CUDAExecutionProvider", "CPUExecutionProvider"] if cuda else ["CPUExecutionProvider"])


def test_same_boxes_and_keypoints_as_rtmlib(tmp_path):
    """rtmlib (which repackages DWPose's steps) as an independent reference, where it is installed
    (`pip install --no-deps rtmlib`: its own requirements pull in the GUI OpenCV builds)."""
    rtmlib = pytest.importorskip("rtmlib")
    from bdmm_cli.pose.dwpose import DWPoseModels

    boxes = [(280, 240, 160, 320, 0.9), (520, 140, 96, 200, 0.8), (100, 400, 64, 64, 0.2)]
    det, pose = H.write_standins(tmp_path, boxes=boxes, gain=40.0)
    ours = DWPoseModels(det, pose)
    yolox = rtmlib.YOLOX(str(det), model_input_size=(640, 640), score_thr=0.3, backend="onnxruntime", device="cpu")
    rtm = rtmlib.RTMPose(str(pose), model_input_size=(288, 384), backend="onnxruntime", device="cpu")
    for frame in (np.full((240, 320, 3), 70, np.uint8), np.random.default_rng(0).integers(0, 255, (360, 300, 3), np.uint8)):
        ref_boxes = yolox(frame)
        got_boxes = ours.detect_boxes([frame])[0]
        np.testing.assert_allclose(got_boxes[:, :4], np.asarray(ref_boxes).reshape(-1, 4), atol=1e-3)
        ref_kp, ref_sc = rtm(frame, bboxes=list(ref_boxes))
        got_kp, got_sc = ours.wholebody([frame], [got_boxes])[0]
        np.testing.assert_allclose(got_kp, ref_kp, atol=1e-3)
        np.testing.assert_allclose(got_sc, ref_sc, atol=1e-5)
