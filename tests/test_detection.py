"""The motion detector: background model behaviour, blobs -> detections, pool, video runner."""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import msgspec
import numpy as np
import pytest

from vigil.detection.background import (
    BackgroundParams,
    DetectionError,
    SampleConsensusModel,
    SlowBackground,
    SlowParams,
)
from vigil.detection.blobs import Blobs
from vigil.detection.detector import DetectorConfig, DetectorPool, MotionDetector
from vigil.detection.objects import CameraGeometry, ObjectFollower, ObjectParams, guess_class
from vigil.detection.video import (
    VideoInputError,
    load_camera_config,
    parse_camera_config,
    run_detect,
)
from vigil.geo.camera import PinholeCamera
from vigil.geo.frames import LocalFrame
from vigil.ingest.schema import CameraDetection, decode, validate

T0 = 1_714_532_400.0  # 2024-05-01T03:00:00Z


def texture(h: int, w: int, seed: int = 0, sigma: float = 3.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = cv2.GaussianBlur(rng.normal(0, 1, (h, w)).astype(np.float32), (0, 0), sigma)
    return cv2.normalize(base, None, 60, 160, cv2.NORM_MINMAX)


def noisy(base: np.ndarray, rng: np.random.Generator, sigma: float = 2.0) -> np.ndarray:
    return np.clip(base + rng.normal(0, sigma, base.shape), 0, 255).astype(np.uint8)


# -- background model -------------------------------------------------------------------------


def test_model_finds_a_moving_square_and_not_the_noise() -> None:
    rng = np.random.default_rng(1)
    base = texture(60, 80)
    model = SampleConsensusModel((60, 80))
    for t in range(30):
        f = base.copy()
        f[20:30, 10 + t : 16 + t] += 60
        fg = model.apply(noisy(f, rng))
    square = np.zeros((60, 80), bool)
    square[20:30, 39:45] = True
    assert fg[square].mean() > 0.9
    assert (fg[~square] > 0).mean() < 0.01


def test_gain_compensation_absorbs_a_gain_step() -> None:
    rng = np.random.default_rng(2)
    base = texture(60, 80)
    masks = {}
    for comp in (True, False):
        model = SampleConsensusModel((60, 80), BackgroundParams(gain_compensation=comp))
        for _ in range(20):
            model.apply(noisy(base, rng))
        masks[comp] = model.apply(noisy(base * 1.3, rng))
        if comp:
            assert model.gain == pytest.approx(1.3, abs=0.03)
    assert (masks[True] > 0).mean() < 0.01
    assert (masks[False] > 0).mean() > 0.3


def test_flicker_feedback_quiets_brush() -> None:
    rng = np.random.default_rng(3)
    base = texture(60, 80)
    brush = np.zeros((60, 80), bool)
    brush[5:25, 5:35] = True
    frames = []
    for _ in range(300):
        f = base.copy()
        f[brush] += 30.0 * rng.choice([-1.0, 1.0], brush.sum())  # leaves whipping both ways
        frames.append(noisy(f, rng))
    late = {}
    for step in (0, 8):
        model = SampleConsensusModel((60, 80), BackgroundParams(flicker_step=step))
        fg = [(model.apply(f)[brush] > 0).mean() for f in frames]
        late[step] = np.mean(fg[-100:])
        if step:
            assert model.flicker[brush].mean() > 10 * max(model.flicker[~brush].mean(), 0.1)
    assert late[8] < 0.6 * late[0]


def test_model_rejects_bad_frames_and_settings() -> None:
    model = SampleConsensusModel((10, 12))
    with pytest.raises(DetectionError, match=r"expected uint8 grey levels of shape \(10, 12\)"):
        model.apply(np.zeros((10, 13), np.uint8))
    with pytest.raises(DetectionError, match="min_matches=9"):
        BackgroundParams(samples=8, min_matches=9)


def creeping_spot(n: int, seed: int, px_per_frame: float = 0.02, contrast: float = 25.0):
    """Frames of a textured scene with a warm sub-pixel body creeping right along row 30.

    The body is 0.4 px wide and lifts the pixels it covers by ``contrast`` times the share
    of each it covers, as a person 2-3 km from a tower walking nearly straight at it.
    Returns the frames and, per frame, the column of its brightest pixel.
    """
    rng = np.random.default_rng(seed)
    base = texture(60, 80, seed)
    frames, cols = [], []
    for t in range(n):
        f = base.copy()
        u0 = 20.0 + px_per_frame * t
        u1 = u0 + 0.4
        j0 = int(u0)
        for j in range(j0, int(u1) + 1):
            cover = max(0.0, min(u1, j + 1) - max(u0, j))
            f[30, j] += contrast * cover
        frames.append(noisy(f, rng, 0.7))
        cols.append(j0 if (j0 + 1 - u0) >= 0.2 else j0 + 1)
    return frames, cols


def test_slow_background_keeps_a_creeping_warm_body_the_sample_model_learns() -> None:
    # 0.02 px a frame: 20 s to cross a pixel at 2.5 fps, which the sample model learns as
    # it goes; the slow model keeps it, and reports nothing else.
    frames, cols = creeping_spot(400, seed=4)
    params = BackgroundParams(radius_min=8, radius_scale=4.0, flicker_step=8)
    fast = SampleConsensusModel((60, 80), params)
    slow = SlowBackground((60, 80), SlowParams(border_px=0))
    seen_fast, seen_slow, elsewhere = [], [], []
    for t, (f, col) in enumerate(zip(frames, cols, strict=True)):
        fg_fast = fast.apply(f)
        fg_slow = slow.apply(f, T0 + 0.4 * t, fast.gain)
        if t >= 200:
            seen_fast.append(fg_fast[30, col] > 0)
            seen_slow.append(fg_slow[30, col - 1 : col + 2].any())
            body = np.zeros_like(fg_slow, bool)
            body[29:32, col - 2 : col + 3] = True
            elsewhere.append((fg_slow[~body] > 0).sum())
    assert np.mean(seen_fast) < 0.5
    assert np.mean(seen_slow) > 0.95
    assert max(elsewhere) == 0


def test_slow_background_reports_only_warmer_and_learns_what_stays() -> None:
    rng = np.random.default_rng(6)
    base = texture(40, 50, 6)
    params = SlowParams(mean_s=10.0, held_factor=2.0, border_px=0)
    slow = SlowBackground((40, 50), params)
    for t in range(50):
        slow.apply(noisy(base, rng, 0.7), T0 + 0.2 * t)
    warm, cold = base.copy(), base.copy()
    warm[10:13, 10:13] += 20  # a warm body arrives
    cold[30:33, 30:33] -= 20  # where something warm stood when the model started
    step = warm.copy()
    step[30:33, 30:33] -= 20
    masks = [slow.apply(noisy(step, rng, 0.7), T0 + 10 + 0.2 * t) for t in range(300)]
    assert masks[25][10:13, 10:13].all() and not masks[25][30:33, 30:33].any()
    # Held, it is learnt at half the rate: gone after three held time constants (60 s).
    assert not masks[-1].any()
    with pytest.raises(DetectionError, match="mean_s=0"):
        SlowParams(mean_s=0)
    with pytest.raises(DetectionError, match=r"expected uint8 grey levels of shape \(40, 50\)"):
        slow.apply(np.zeros((40, 51), np.uint8), T0)


# -- blobs -> detections ----------------------------------------------------------------------


@pytest.fixture
def tower() -> CameraGeometry:
    """A 25 m mast looking north, 320x240, 24 degree lens, rated 3 km."""
    cam = PinholeCamera(
        x=0.0, y=0.0, height_m=25.0, pan_deg=0.0, tilt_deg=2.0, hfov_deg=24.0,
        width=320, height=240, max_range_m=3000.0,
    )  # fmt: skip
    return CameraGeometry(cam, LocalFrame(31.33, -110.94), "t01")


def blob_at(u: float, v_foot: float, w: int, h: int) -> Blobs:
    left, top = int(round(u - w / 2)), int(round(v_foot - h))
    a = lambda x: np.array([x], np.int32)  # noqa: E731
    return Blobs(a(left), a(top), a(w), a(h), a(w * h), np.array([left + (w - 1) / 2]),
                 np.array([top + (h - 1) / 2]))  # fmt: skip


def test_covariance_grows_with_range(tower: CameraGeometry) -> None:
    xs = np.zeros(3)
    ys = np.array([300.0, 1000.0, 2500.0])
    u, v, _ = tower.camera.project(xs, ys)
    cov = tower.covariance(u, v, np.ones(3), np.ones(3), 0.0)
    along = cov[:, 1, 1]  # north = along the line of sight
    across = cov[:, 0, 0]
    assert along[0] < along[1] < along[2]
    assert across[0] < across[1] < across[2]
    # Across the line of sight one pixel is range / focal length.
    f = tower.camera.focal_px
    np.testing.assert_allclose(np.sqrt(across), np.hypot(ys, 25.0) / f, rtol=0.02)
    # Along it, grazing view stretches a pixel by range / height.
    assert np.sqrt(along[2]) > 50 * np.sqrt(across[2])


def test_persistent_blob_becomes_a_wire_detection_at_its_ground_position(
    tower: CameraGeometry,
) -> None:
    follower = ObjectFollower("t01", ObjectParams(min_hits=3, window=5), tower)
    x, y = 40.0, 600.0
    u, v, _ = tower.camera.project(x, y)
    mpp = float(tower.camera.metres_per_pixel(math.hypot(x, y)))
    h_px = max(1, round(1.7 / mpp))
    w_px = max(1, round(0.5 / mpp))
    emitted = []
    for k in range(5):
        res = follower.update(blob_at(float(u), float(v), w_px, h_px), T0 + k * 0.1, k + 1)
        emitted.append(res.detections)
    assert [len(d) for d in emitted] == [0, 0, 1, 1, 1]
    det = emitted[-1][0]
    validate(det, now=T0 + 1)
    assert decode("vigil/v1/tucson/cam/t01/detections", msgspec.json.encode(det)) == det
    gx, gy = tower.frame.to_local([det.lat], [det.lon])
    cov = np.array(det.cov).reshape(2, 2)
    err = np.array([gx[0] - x, gy[0] - y])
    assert float(err @ np.linalg.solve(cov, err)) < 9.0  # within 3 sigma
    assert det.range_m == pytest.approx(math.hypot(x, y), rel=0.05)
    assert det.class_guess == "person"


def test_single_frame_flicker_is_never_emitted(tower: CameraGeometry) -> None:
    follower = ObjectFollower("t01", ObjectParams(), tower)
    rng = np.random.default_rng(0)
    total = 0
    for k in range(50):  # a speck at a random place every frame, as shimmer makes
        b = blob_at(float(rng.uniform(20, 300)), float(rng.uniform(140, 230)), 1, 1)
        total += len(follower.update(b, T0 + k * 0.1, k + 1).detections)
    assert total == 0


def test_blobs_in_the_sky_or_too_big_for_their_range_are_dropped(tower: CameraGeometry) -> None:
    follower = ObjectFollower("t01", ObjectParams(), tower)
    u, v, _ = tower.camera.project(0.0, 2000.0)
    sky = blob_at(160.0, 20.0, 3, 3)  # above the horizon
    huge = blob_at(float(u), float(v), 40, 30)  # 40 px at 2 km is ~60 m wide
    person = blob_at(float(u), float(v), 1, 1)
    for b, kept in ((sky, False), (huge, False), (person, True)):
        assert bool(follower.update(b, T0, 1).kept[0]) is kept


@pytest.mark.parametrize(
    ("height_m", "width_m", "speed", "expected"),
    [
        (1.75, 0.5, 1.2, "person"),
        (1.5, 4.6, None, "vehicle"),
        (1.6, 1.8, 15.0, "vehicle"),
        (0.9, 1.4, 2.0, "animal"),
    ],
    ids=["walker", "parked-truck", "fast-car", "cow"],
)
def test_class_guess(height_m: float, width_m: float, speed: float | None, expected: str) -> None:
    cls, conf = guess_class(height_m, width_m, speed, 20.0)
    assert cls == expected and 0.0 < conf <= 1.0


# -- the detector on a rendered tower scene ---------------------------------------------------


def render_walkers(
    cam: PinholeCamera,
    n_frames: int,
    walkers: list[tuple[float, float, float, float]],
    seed: int = 0,
    warmup: int = 10,
):
    """Frames of flat warm ground with walkers (x, y, vx, vy in m, m/s) as warm boxes.

    The walkers enter after ``warmup`` frames of empty ground, at 10 frames per second.
    """
    rng = np.random.default_rng(seed)
    h, w = cam.height, cam.width
    base = texture(h, w, seed, 6.0)
    _, hor, _ = cam.project(0.0, 1e6)
    base[: max(int(hor[()]), 0)] = 40.0  # cold sky
    frames, truth = [], []
    for k in range(n_frames):
        f = base.copy()
        pos = []
        for x0, y0, vx, vy in walkers if k >= warmup else []:
            x, y = x0 + vx * k * 0.1, y0 + vy * k * 0.1
            u, v, _ = cam.project(x, y)
            mpp = float(cam.metres_per_pixel(math.hypot(x - cam.x, y - cam.y)))
            hp, wp = max(1.0, 1.7 / mpp), max(1.0, 0.5 / mpp)
            u0, v0 = int(round(float(u) - wp / 2)), int(round(float(v) - hp))
            f[v0 : v0 + int(round(hp)), u0 : u0 + int(round(wp))] += 50.0
            pos.append((x, y))
        frames.append(noisy(f, rng, 1.5))
        truth.append(pos)
    return frames, truth


def test_tower_detector_places_walkers_on_the_ground(tower: CameraGeometry) -> None:
    walkers = [(-60.0, 500.0, 1.4, 0.0), (80.0, 900.0, -1.0, 0.5)]
    # the walkers enter after the tower warm-up (DetectorConfig.warmup_frames)
    frames, truth = render_walkers(tower.camera, 100, walkers, warmup=40)
    det = MotionDetector((240, 320), DetectorConfig.for_tower(), tower)
    seen = [0, 0]
    for k, f in enumerate(frames):
        res = det.process(f, T0 + k * 0.1, k + 1)
        assert truth[k] or not res.detections  # nothing before the walkers come
        for d in res.detections:
            gx, gy = tower.frame.to_local([d.lat], [d.lon])
            near = [math.hypot(gx[0] - x, gy[0] - y) for x, y in truth[k]]
            j = int(np.argmin(near))
            assert near[j] < 3 * math.sqrt(d.cov[3]) + 5.0, (k, near)
            seen[j] += 1
    assert min(seen) >= 50  # both walkers detected in most of their 60 frames


def test_pool_gives_the_same_results_as_one_by_one() -> None:
    rng = np.random.default_rng(4)
    base = texture(48, 64)
    streams = []
    for c in range(3):
        frames = []
        for t in range(15):
            f = base.copy()
            f[10:20, 5 + 2 * t + c : 11 + 2 * t + c] += 70
            frames.append(noisy(f, rng))
        streams.append(frames)
    alone = []
    for frames in streams:
        d = MotionDetector((48, 64))
        alone.append([d.process(f, float(t)).mask.copy() for t, f in enumerate(frames)])
    with DetectorPool([MotionDetector((48, 64)) for _ in range(3)]) as pool:
        pooled = [[], [], []]
        for t in range(15):
            for c, r in enumerate(pool.process([s[t] for s in streams], float(t))):
                pooled[c].append(r.mask.copy())
    for a, b in zip(alone, pooled, strict=True):
        np.testing.assert_array_equal(np.stack(a), np.stack(b))


# -- video runner -----------------------------------------------------------------------------


def write_video(path: Path, n: int = 30, size=(64, 48)) -> None:
    rng = np.random.default_rng(0)
    w, h = size
    base = texture(h, w)
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (w, h))
    for t in range(n):
        f = base.copy()
        if t > 0:
            f[15:27, 5 + t : 12 + t] += 80
        vw.write(cv2.cvtColor(noisy(f, rng), cv2.COLOR_GRAY2BGR))
    vw.release()


def test_run_detect_writes_pixel_detections_and_masks(tmp_path: Path) -> None:
    video = tmp_path / "walk.avi"
    write_video(video)
    out = tmp_path / "det.jsonl"
    summary = run_detect(str(video), out, masks_dir=tmp_path / "masks", start_time=T0)
    assert summary.frames == 30 and summary.masks_written == 30
    masks = sorted((tmp_path / "masks").glob("*.png"))
    assert [m.name for m in masks[:2]] == ["000001.png", "000002.png"] and len(masks) == 30
    last = cv2.imread(str(masks[-1]), cv2.IMREAD_UNCHANGED)
    assert last.shape == (48, 64) and set(np.unique(last)) <= {0, 255}
    lines = [json.loads(s) for s in out.read_text().splitlines()]
    assert len(lines) == summary.detections > 0
    final = [d for d in lines if d["frame"] == 30]
    assert len(final) == 1 and final[0]["type"] == "pixel_detection"
    u0, v0, u1, v1 = final[0]["box"]
    assert abs(u0 - 34) <= 2 and abs(v0 - 15) <= 2 and abs(u1 - 41) <= 2 and abs(v1 - 27) <= 2
    assert final[0]["time"] == pytest.approx(T0 + 2.9)


def test_truncated_video_names_the_frame_after_writing_the_ones_before(tmp_path: Path) -> None:
    video = tmp_path / "walk.avi"
    write_video(video, n=40)
    data = video.read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: len(data) // 2])
    out = tmp_path / "det.jsonl"
    with pytest.raises(VideoInputError, match=r"frame \d+: cannot decode") as info:
        run_detect(str(cut), out, masks_dir=tmp_path / "m", start_time=T0)
    err = info.value
    assert 1 < err.frame <= 40 and err.frames_read == err.frame - 1
    assert len(list((tmp_path / "m").glob("*.png"))) == err.frames_read
    assert out.exists()


def test_image_sequence_with_a_corrupt_image(tmp_path: Path) -> None:
    base = texture(48, 64).astype(np.uint8)
    for i in range(1, 11):
        cv2.imwrite(str(tmp_path / f"in{i:06d}.png"), base)
    (tmp_path / "in000007.png").write_bytes(b"not a png")
    with pytest.raises(VideoInputError, match="frame 7") as info:
        run_detect(str(tmp_path / "in%06d.png"), tmp_path / "d.jsonl", start_time=T0)
    assert info.value.frames_read == 6


def test_missing_input_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(VideoInputError, match="frame 0: no such file"):
        run_detect(str(tmp_path / "none.avi"), tmp_path / "d.jsonl")


CONFIG = """
[camera]
id = "t03"
lat = 31.3401
lon = -110.9512
height_m = 25.0
pan_deg = 180.0
tilt_deg = 2.0
hfov_deg = 24.0
width = 64
height = 48
range_m = 4000.0

[frame]
lat0 = 31.33
lon0 = -110.94
"""


def test_camera_config_reads_and_runs(tmp_path: Path) -> None:
    path = tmp_path / "cam.toml"
    path.write_text(CONFIG)
    setup = load_camera_config(path)
    cam = setup.geometry.camera
    assert setup.geometry.camera_id == "t03" and (cam.width, cam.height) == (64, 48)
    x, y = LocalFrame(31.33, -110.94).to_local([31.3401], [-110.9512])
    assert (cam.x, cam.y) == (pytest.approx(x[0]), pytest.approx(y[0]))
    video = tmp_path / "walk.avi"
    write_video(video)
    out = tmp_path / "d.jsonl"
    run_detect(str(video), out, setup.geometry, start_time=T0)
    for line in out.read_text().splitlines():
        det = msgspec.json.decode(line, type=CameraDetection)
        assert det.camera == "t03"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ("height_m = 25.0", "height_m = 25.0\nzoom = 2"),
            r"'camera.zoom' = 2 \(line 7\).*unknown field",
        ),
        (
            ("tilt_deg = 2.0", "tilt_deg = 95.0"),
            r"'camera.tilt_deg' = 95.0 \(line 8\): Expected `float` <= 90.0",
        ),
    ],
    ids=["unknown-key", "out-of-range"],
)
def test_camera_config_errors_name_key_value_and_line(change, message) -> None:
    with pytest.raises(DetectionError, match=message):
        parse_camera_config(CONFIG.replace(*change), "cam.toml")
