"""A camera's detection settings (issue 19 item 1, issue 24 item 2): validation, combining,
sensitivity, polygon masks, the metric minimum size, and daylight defaults on real video
(CDnet highway: detections only where the ground truth moves, and the cars found)."""

from __future__ import annotations

import msgspec
import numpy as np
import pytest

from vigil.detection.detector import DetectorConfig
from vigil.detection.objects import CameraGeometry
from vigil.detection.settings import DAYLIGHT, DetectionSettings, sensitivity_radius
from vigil.geo.camera import PinholeCamera
from vigil.geo.frames import LocalFrame


def convert(raw: dict) -> DetectionSettings:
    return msgspec.convert(raw, DetectionSettings)


# -- validation and combining -------------------------------------------------------------
@pytest.mark.parametrize(
    ("raw", "named"),
    [
        ({"sensr": "daylight"}, "sensr"),
        ({"sensor": "infrared"}, "$.sensor"),
        ({"sensitivity": 1.5}, "$.sensitivity"),
        ({"min_size_m": -1.0}, "$.min_size_m"),
        ({"min_size_px": "big"}, "$.min_size_px"),
        ({"filter_px": 4}, "filter_px=4"),
        ({"warmup_frames": -3}, "$.warmup_frames"),
        ({"ignore": [[[0, 0], [10, 0]]]}, "$.ignore[0]"),
        ({"ignore": [[[0, 0], [10, 10], [20, 20]]]}, "ignore[0]"),
        ({"include": [[[0, 0], [1e9, 0], [0, 5]]]}, "$.include[0][1][0]"),
        ({"ignore": [[[0, 0], [5, 0], [0, 5]]] * 65}, "$.ignore"),
    ],
)
def test_a_bad_setting_is_refused_naming_it(raw: dict, named: str) -> None:
    with pytest.raises(msgspec.ValidationError) as info:
        convert(raw)
    assert named in str(info.value)


def test_nothing_set_on_a_thermal_camera_is_todays_tower_detector() -> None:
    assert DetectionSettings().detector_config() == DetectorConfig.for_tower()
    assert DetectionSettings().detector_config(thermal=False) == DAYLIGHT
    assert DetectionSettings(sensor="daylight").detector_config(thermal=True) == DAYLIGHT
    assert DetectionSettings(sensor="thermal").detector_config(thermal=False) == (
        DetectorConfig.for_tower()
    )


def test_a_cameras_override_is_laid_over_the_sector_defaults() -> None:
    sector = convert({"sensor": "daylight", "min_size_px": 6, "warmup_frames": 50})
    camera = convert({"min_size_px": 3, "ignore": [[[0, 0], [9, 0], [0, 9]]]})
    both = camera.over(sector)
    assert both.sensor == "daylight" and both.min_size_px == 3 and both.warmup_frames == 50
    assert both.ignore == [[(0.0, 0.0), (9.0, 0.0), (0.0, 9.0)]]
    cfg = both.detector_config()
    assert cfg.objects.min_size_px == 3 and cfg.warmup_frames == 50 and cfg.filter_size == 5
    assert camera.over(None) is camera


def test_sensitivity_maps_onto_the_radius_floor() -> None:
    assert [sensitivity_radius(18, s) for s in (0.0, 0.25, 0.5, 0.75, 1.0)] == [36, 25, 18, 13, 9]
    cfg = DetectionSettings(sensor="daylight", sensitivity=0.0).detector_config()
    assert cfg.background.radius_min == 36 and cfg.background.radius_max >= 36
    assert DetectionSettings(sensitivity=1.0).detector_config().background.radius_min == 4


def _moving_patch(
    steps: int, shape: tuple[int, int], patches: list[tuple[int, int, int, int, int]], seed: int = 1
):
    """Frames of grey 100 + noise with patches ``(row, col, h, w, lift)`` moving 1 px a frame."""
    rng = np.random.default_rng(seed)
    for t in range(steps):
        f = np.clip(100 + rng.normal(0, 1.5, shape), 0, 255).astype(np.uint8)
        for row, col, h, w, lift in patches:
            f[row : row + h, col + t : col + t + w] = np.clip(100 + lift, 0, 255)
        yield t, f


def test_higher_sensitivity_finds_a_fainter_mover() -> None:
    def found(sensitivity: float) -> int:
        s = DetectionSettings(sensor="daylight", sensitivity=sensitivity, warmup_frames=5)
        det = s.detector((60, 120))
        hits = 0
        for t, f in _moving_patch(40, (60, 120), [(20, 10, 12, 8, 12)]):
            hits += len(det.process(f, float(t)).pixel_detections)
        return hits

    assert found(0.5) == 0  # a 12-level change is inside the daylight floor of 18
    assert found(1.0) > 20  # at the floor of 9 it is seen in most frames


# -- polygon masks --------------------------------------------------------------------------
def test_an_ignore_polygon_suppresses_motion_inside_it_and_not_outside() -> None:
    shape = (80, 160)
    movers = [(10, 10, 10, 8, 80), (55, 10, 10, 8, 80)]  # one in the top half, one below
    ignore = [[(0, 0), (159, 0), (159, 39), (0, 39)]]  # the top half
    runs = {}
    for name, s in {
        "masked": DetectionSettings(sensor="daylight", ignore=ignore, warmup_frames=3),
        "plain": DetectionSettings(sensor="daylight", warmup_frames=3),
    }.items():
        det = s.detector(shape)
        rows, fg_top = [], 0
        for t, f in _moving_patch(40, shape, movers):
            r = det.process(f, float(t))
            fg_top += int(np.count_nonzero(r.mask[:40]))
            rows += [d.centroid[1] for d in r.pixel_detections]
        runs[name] = (rows, fg_top)
    masked_rows, masked_fg = runs["masked"]
    plain_rows, _ = runs["plain"]
    assert masked_fg == 0 and masked_rows and all(v >= 40 for v in masked_rows)
    assert any(v < 40 for v in plain_rows) and any(v >= 40 for v in plain_rows)


def test_an_include_polygon_watches_only_inside_it() -> None:
    s = DetectionSettings(
        sensor="daylight",
        include=[[(0, 40), (159, 40), (159, 79), (0, 79)]],
        ignore=[[(120, 40), (159, 40), (159, 79), (120, 79)]],
    )
    region = s.region((80, 160))
    assert region is not None and region.dtype == np.uint8
    assert (
        region[:40].max() == 0 and region[41:, :119].min() == 255 and region[41:, 121:].max() == 0
    )
    assert DetectionSettings(sensor="daylight").region((80, 160)) is None
    det = s.detector((80, 160))
    rows = []
    for t, f in _moving_patch(40, (80, 160), [(10, 10, 10, 8, 80), (55, 10, 10, 8, 80)]):
        rows += [d.centroid[1] for d in det.process(f, float(t)).pixel_detections]
    assert rows and all(v >= 40 for v in rows)


# -- metric minimum size --------------------------------------------------------------------
def _geometry() -> CameraGeometry:
    """A 10 m mast looking 10 degrees down, 40 degree lens, 320x240: f = 439.6 px."""
    cam = PinholeCamera(
        x=0.0, y=0.0, height_m=10.0, pan_deg=0.0, tilt_deg=10.0, hfov_deg=40.0,
        width=320, height=240, max_range_m=400.0,
    )  # fmt: skip
    return CameraGeometry(cam, LocalFrame(31.33, -110.94), "cam1")


def _row_at(geometry: CameraGeometry, range_m: float) -> int:
    """The image row where the ground ``range_m`` straight ahead is seen."""
    _, v, *_ = geometry.camera.project(np.array([0.0]), np.array([range_m]), 0.0)
    return int(round(float(v[0])))


def test_the_metric_minimum_size_drops_a_small_far_blob_and_keeps_a_person() -> None:
    geometry = _geometry()
    f_px = geometry.camera.focal_px
    # a person 1.7 m tall and 0.5 m wide at 50 m: 15 x 4 pixels (0.114 m a pixel)
    person_h = round(1.7 / (50.0 / f_px))
    foot = _row_at(geometry, 50.0)
    # something 3 x 3 pixels at 120 m (0.27 m a pixel): 0.8 m, a dog or a bird
    far = _row_at(geometry, 120.0)
    assert person_h == 15 and 0 < far < foot - person_h - 5
    movers = [(foot - person_h, 60, person_h, 4, 90), (far - 3, 200, 3, 3, 90)]

    def rows(min_size_m: float | None) -> list[float]:
        s = DetectionSettings(
            sensor="daylight", min_size_m=min_size_m, warmup_frames=3, filter_px=3
        )
        det = s.detector((240, 320), geometry, "cam1")
        out: list[float] = []
        for t, f in _moving_patch(30, (240, 320), movers):
            res = det.process(f, 1.7e9 + t / 10.0, t)
            out += [0.5 * (d.box[1] + d.box[3]) for d in res.detections]
        return out

    kept = rows(1.0)
    assert kept and all(abs(v - (foot - person_h / 2)) < 3 for v in kept)
    off = rows(None)  # without it the small far blob is a detection too
    assert any(abs(v - (far - 1.5)) < 3 for v in off)
    assert any(abs(v - (foot - person_h / 2)) < 3 for v in off)


def test_the_minimum_size_in_pixels_drops_smaller_blobs() -> None:
    def sizes(min_size_px: int | None) -> set[int]:
        det = DetectionSettings(sensor="daylight", min_size_px=min_size_px, warmup_frames=3)
        d = det.detector((60, 160))
        out: set[int] = set()
        for t, f in _moving_patch(30, (60, 160), [(10, 10, 12, 6, 80), (40, 80, 5, 5, 80)]):
            found = d.process(f, float(t)).pixel_detections
            out |= {int(max(p.box[2] - p.box[0], p.box[3] - p.box[1])) for p in found}
        return out

    assert 5 in sizes(None) and 12 in sizes(None)
    assert 12 in sizes(8) and min(sizes(8)) >= 8


# -- daylight defaults on real video -------------------------------------------------------
def test_the_settings_in_effect_are_reported() -> None:
    s = DetectionSettings(
        sensor="daylight", sensitivity=1.0, min_size_m=0.5, ignore=[[(0, 0), (79, 0), (0, 59)]]
    )
    got = s.effective(shape=(60, 80))
    assert got["sensor"] == "daylight" and got["threshold_grey"] == 9 and got["filter_px"] == 5
    assert got["min_size_m"] == 0.5 and got["ignore"] == 1 and got["include"] == 0
    assert 0.45 < got["watched"] < 0.55
    tower = DetectionSettings().effective()
    assert tower["sensor"] == "thermal" and tower["threshold_grey"] == 8
    assert tower["filter_px"] == 1 and tower["warmup_frames"] == 35 and "watched" not in tower
