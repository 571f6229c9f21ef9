"""The aircraft: an orbit at altitude, MAVLink telemetry, and detections in its camera footprint.

The aircraft flies a counter-clockwise circle around its orbit centre at its speed and height,
banked for the turn, with its gimbal pointed at the centre. Telemetry goes out as real MAVLink 2
messages packed by pymavlink (HEARTBEAT, GLOBAL_POSITION_INT, ATTITUDE, GPS_RAW_INT,
CAMERA_FOV_STATUS, MOUNT_STATUS) and as the wire's :class:`~vigil.ingest.schema.Telemetry`. The
camera reports objects inside its ground footprint with a detection probability and a position
error, as :class:`~vigil.ingest.schema.CameraDetection` with ``frame=-1``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import shapely

from vigil.geo.camera import PinholeCamera
from vigil.geo.frames import LocalFrame
from vigil.geo.site import Aircraft
from vigil.ingest.schema import CameraDetection, Telemetry

from .movers import MoverStates, rng_for
from .perturbations import STREAM_UAS_CONFUSION, STREAM_UAS_FALSE, UasClassifier
from .perturbations_sensors import uas_false_alarms, uas_guess
from .settings import SimSettings
from .terrain import SimTerrain

STREAM_UAS = 30
GRAVITY = 9.80665
#: Seconds the autopilot had been up when the simulation starts (for ``time_boot_ms``).
BOOT_LEAD_S = 600.0


@dataclass(frozen=True)
class TelemetryItem:
    """One telemetry report: the wire message and the MAVLink packets it came from."""

    time: float
    aircraft: str
    message: Telemetry
    packets: tuple[bytes, ...]


@dataclass(frozen=True)
class UasDetection:
    """One aircraft camera detection and the mover it really is."""

    time: float
    message: CameraDetection
    mover_id: str
    x: float
    y: float


def _quaternion(roll: float, pitch: float, yaw: float) -> list[float]:
    """Quaternion ``(w, x, y, z)`` of body-to-NED Euler angles in radians (ZYX order)."""
    cr, sr = math.cos(roll / 2), math.sin(roll / 2)
    cp, sp = math.cos(pitch / 2), math.sin(pitch / 2)
    cy, sy = math.cos(yaw / 2), math.sin(yaw / 2)
    return [
        cr * cp * cy + sr * sp * sy,
        sr * cp * cy - cr * sp * sy,
        cr * sp * cy + sr * cp * sy,
        cr * cp * sy - sr * sp * cy,
    ]


class Orbiter:
    """One aircraft on its orbit, with its MAVLink encoder."""

    def __init__(
        self,
        aircraft: Aircraft,
        index: int,
        frame: LocalFrame,
        settings: SimSettings,
        seed: int,
        terrain: SimTerrain | None = None,
        classifier: UasClassifier | None = None,
    ) -> None:
        from pymavlink.dialects.v20 import ardupilotmega as mavlink

        self.aircraft = aircraft
        self.index = index
        self.frame = frame
        self.settings = settings
        self.seed = seed
        #: the classifier's confusion and false alarms (None or off: always right, none)
        self.classifier = classifier if classifier is not None and classifier.on else None
        cx, cy = frame.to_local([aircraft.orbit_centre[0]], [aircraft.orbit_centre[1]])
        self.cx, self.cy = float(cx[0]), float(cy[0])
        self.omega = aircraft.speed_mps / aircraft.orbit_radius_m
        # on relief: the orbit is flown its altitude above the ground under its centre
        self.terrain = terrain
        self.ground_z = 0.0 if terrain is None else float(terrain.ground_z(self.cx, self.cy))
        self.mavlink = mavlink
        self.mav = mavlink.MAVLink(None, srcSystem=index + 1, srcComponent=1)
        self.tick = 0
        self.det_tick = 0
        self._last_heartbeat = -math.inf
        self._view: tuple[float, PinholeCamera, shapely.Polygon] | None = None

    def state(self, t: float) -> tuple[float, float, float, float, float, float]:
        """Position ``(x, y)`` m, velocity ``(vx, vy)`` m/s, heading and bank, degrees."""
        a = self.aircraft
        theta = self.omega * (t - self.settings.start_time) + 0.7 * self.index
        x = self.cx + a.orbit_radius_m * math.cos(theta)
        y = self.cy + a.orbit_radius_m * math.sin(theta)
        vx = -a.speed_mps * math.sin(theta)
        vy = a.speed_mps * math.cos(theta)
        heading = math.degrees(math.atan2(vx, vy)) % 360.0
        bank = -math.degrees(math.atan(a.speed_mps**2 / (GRAVITY * a.orbit_radius_m)))
        return x, y, vx, vy, heading, bank

    def camera(self, t: float) -> PinholeCamera:
        """The gimbal camera at ``t``: pointed at the orbit centre."""
        a = self.aircraft
        x, y, *_ = self.state(t)
        pan = math.degrees(math.atan2(self.cx - x, self.cy - y)) % 360.0
        tilt = math.degrees(math.atan2(a.altitude_agl_m, a.orbit_radius_m))
        return PinholeCamera(
            x=x,
            y=y,
            height_m=a.altitude_agl_m,
            pan_deg=pan,
            tilt_deg=tilt,
            hfov_deg=a.hfov_deg,
            width=a.width,
            height=a.height,
            max_range_m=max(3.0 * a.orbit_radius_m, 5000.0),
            ground_z=self.ground_z,
        )

    def view(self, t: float) -> tuple[PinholeCamera, shapely.Polygon]:
        """The camera and its ground footprint at ``t`` (kept for the next call at ``t``)."""
        if self._view is None or self._view[0] != t:
            cam = self.camera(t)
            self._view = (t, cam, cam.footprint(samples_per_edge=4))
        return self._view[1], self._view[2]

    def telemetry(self, t: float) -> TelemetryItem:
        """The aircraft's report at ``t``, as MAVLink packets and as the wire message."""
        a, m, mav = self.aircraft, self.mavlink, self.mav
        x, y, vx, vy, heading, bank = self.state(t)
        cam, fp = self.view(t)
        lat, lon = (float(v[0]) for v in self.frame.to_wgs84([x], [y]))
        alt = a.ground_elevation_m + a.altitude_agl_m
        boot_ms = int(round((t - self.settings.start_time + BOOT_LEAD_S) * 1000.0))
        lat7, lon7 = int(round(lat * 1e7)), int(round(lon * 1e7))
        gs = math.hypot(vx, vy)
        fx, fy = np.asarray(fp.exterior.coords).T
        flat, flon = self.frame.to_wgs84(fx, fy)
        centre_lat, centre_lon = (float(v[0]) for v in self.frame.to_wgs84([self.cx], [self.cy]))
        msgs = []
        if t - self._last_heartbeat >= 1.0 - 1e-9:
            self._last_heartbeat = t
            msgs.append(
                m.MAVLink_heartbeat_message(
                    m.MAV_TYPE_FIXED_WING, m.MAV_AUTOPILOT_ARDUPILOTMEGA, 0x81, 0,
                    m.MAV_STATE_ACTIVE, 3,
                )
            )  # fmt: skip
        msgs += [
            m.MAVLink_global_position_int_message(
                boot_ms, lat7, lon7, int(round(alt * 1000)), int(round(a.altitude_agl_m * 1000)),
                int(round(vy * 100)), int(round(vx * 100)), 0, int(round(heading * 100)) % 36000,
            ),
            m.MAVLink_attitude_message(
                boot_ms, math.radians(bank), math.radians(2.0), math.radians(heading),
                0.0, 0.0, self.omega,
            ),
            m.MAVLink_gps_raw_int_message(
                int(round(t * 1e6)), 3, lat7, lon7, int(round(alt * 1000)), 80, 120,
                int(round(gs * 100)), int(round(heading * 100)) % 36000, 14,
            ),
            m.MAVLink_camera_fov_status_message(
                boot_ms, lat7, lon7, int(round(alt * 1000)),
                int(round(centre_lat * 1e7)), int(round(centre_lon * 1e7)),
                int(round(a.ground_elevation_m * 1000)),
                _quaternion(0.0, -math.radians(cam.tilt_deg), math.radians(cam.pan_deg)),
                float(cam.hfov_deg), float(cam.vfov_deg),
            ),
            m.MAVLink_mount_status_message(
                1, 154, int(round(-cam.tilt_deg * 100)), 0, int(round(cam.pan_deg * 100)), 2
            ),
        ]  # fmt: skip
        packets = tuple(bytes(msg.pack(mav)) for msg in msgs)
        tel = Telemetry(
            aircraft=a.id,
            time=t,
            lat=lat,
            lon=lon,
            alt_m=alt,
            agl_m=a.altitude_agl_m,
            roll_deg=bank,
            pitch_deg=2.0,
            yaw_deg=heading,
            ground_speed_mps=gs,
            gimbal_pan_deg=cam.pan_deg,
            gimbal_tilt_deg=cam.tilt_deg,
            hfov_deg=cam.hfov_deg,
            vfov_deg=cam.vfov_deg,
            footprint=[(float(p), float(q)) for p, q in zip(flat, flon, strict=True)],
        )
        self.tick += 1
        return TelemetryItem(t, a.id, tel, packets)

    def detect(self, t: float, states: MoverStates) -> list[UasDetection]:
        """Detections at ``t`` of the movers inside the camera's ground footprint."""
        a = self.aircraft
        rng = rng_for(self.seed, STREAM_UAS, self.index, self.det_tick)
        tick = self.det_tick
        self.det_tick += 1
        clf = self.classifier
        out = []
        if clf is not None:
            out = self._false_alarms(t, tick)
        if len(states) == 0:
            return out
        cam, fp = self.view(t)
        inside = shapely.contains_xy(fp, states.x, states.y)
        if self.terrain is not None and inside.any():
            # only over a clear line from the aircraft to the body's head
            idx = np.flatnonzero(inside)
            tr = self.terrain
            head = tr.seen_z(cam.centre, states.x[idx], states.y[idx]) + states.height_m[idx]
            inside[idx] = tr.clear(cam.centre, states.x[idx], states.y[idx], head)
        sigma = a.position_error_m
        rng_c = rng_for(self.seed, STREAM_UAS_CONFUSION, self.index, tick) if clf else None
        for k in np.flatnonzero(inside):
            if rng.uniform() >= a.detection_probability:
                continue
            ex, ey = rng.normal(0.0, sigma, 2) if sigma > 0 else (0.0, 0.0)
            px, py = float(states.x[k] + ex), float(states.y[k] + ey)
            lat, lon = (float(v[0]) for v in self.frame.to_wgs84([px], [py]))
            cls = states.classes[k]
            guess = cls if rng.uniform() < 0.8 else "unknown"
            if rng_c is not None:
                guess = uas_guess(clf, rng_c, cls)
            slant = math.hypot(math.hypot(states.x[k] - cam.x, states.y[k] - cam.y), cam.height_m)
            msg = CameraDetection(
                camera=a.id,
                time=t,
                frame=-1,
                score=round(float(rng.uniform(0.5, 0.99)), 3),
                lat=lat,
                lon=lon,
                cov=(sigma**2, 0.0, 0.0, sigma**2),
                class_guess=guess,
                class_confidence=round(float(rng.uniform(0.5, 0.95)), 3)
                if guess != "unknown"
                else 0.0,
                range_m=round(slant, 1),
            )
            out.append(UasDetection(t, msg, states.ids[k], float(states.x[k]), float(states.y[k])))
        return out

    def _false_alarms(self, t: float, tick: int) -> list[UasDetection]:
        """Detections of nothing (``mover_id`` empty) in the footprint at ``t``."""
        a = self.aircraft
        rng = rng_for(self.seed, STREAM_UAS_FALSE, self.index, tick)
        cam, fp = self.view(t)
        out = []
        for x, y, guess in uas_false_alarms(
            self.classifier, rng, fp, 1.0 / self.settings.uas_detection_hz
        ):
            lat, lon = (float(v[0]) for v in self.frame.to_wgs84([x], [y]))
            conf = round(float(rng.uniform(0.3, 0.8)), 3) if guess != "unknown" else 0.0
            msg = CameraDetection(
                camera=a.id, time=t, frame=-1, score=round(float(rng.uniform(0.5, 0.8)), 3),
                lat=lat, lon=lon, cov=(a.position_error_m**2, 0.0, 0.0, a.position_error_m**2),
                class_guess=guess, class_confidence=conf,
                range_m=round(math.hypot(math.hypot(x - cam.x, y - cam.y), cam.height_m), 1),
            )  # fmt: skip
            out.append(UasDetection(t, msg, "", x, y))
        return out
