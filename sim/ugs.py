"""Unattended ground sensors: detections, nuisance alarms, heartbeats and the odd bad message.

Each sensor is checked every ``ugs_tick_s``. The chance it reports a mover falls with distance
and depends on its modality and the mover's class (seismic: footsteps and vehicles; magnetic:
vehicles and metal carried; passive infrared: warm bodies inside its beam; acoustic: engines
mostly). After a report a sensor holds off for ``ugs_holdoff_s``. Wind sets off nuisance
alarms, more in the afternoon. Heartbeats report the battery, which drains with time and use.
Rarely a message arrives malformed or stamped by a skewed clock; the truth labels both.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import msgspec
import numpy as np

from vigil.geo.frames import LocalFrame
from vigil.geo.site import GroundSensor
from vigil.ingest.schema import SensorEvent, SensorStatus, encode

from .movers import MoverStates, rng_for
from .perturbations import STREAM_UGS_NUISANCE, UgsNuisance
from .perturbations_sensors import ugs_nuisance
from .settings import SimSettings
from .terrain import PIR_HEIGHT_M, SimTerrain

STREAM_UGS = 20

#: Detection probability at the sensor itself, by modality and class.
P_DETECT: dict[str, dict[str, float]] = {
    "seismic": {"person": 0.85, "vehicle": 0.98, "animal": 0.6},
    "magnetic": {"person": 0.2, "vehicle": 0.95, "animal": 0.0},
    "pir": {"person": 0.92, "vehicle": 0.8, "animal": 0.85},
    "acoustic": {"person": 0.3, "vehicle": 0.95, "animal": 0.3},
}
#: How far a class is felt, as a multiple of the sensor's rated radius.
REACH: dict[str, dict[str, float]] = {
    "seismic": {"person": 1.0, "vehicle": 2.5, "animal": 1.0},
    "magnetic": {"person": 0.6, "vehicle": 1.0, "animal": 1.0},
    "pir": {"person": 1.0, "vehicle": 1.2, "animal": 1.0},
    "acoustic": {"person": 0.5, "vehicle": 3.0, "animal": 0.5},
}
#: What the sensor's own classifier says, given the true class: P(guess | class).
GUESS: dict[str, dict[str, float]] = {
    "person": {"person": 0.7, "animal": 0.2, "vehicle": 0.02, "unknown": 0.08},
    "animal": {"person": 0.3, "animal": 0.55, "vehicle": 0.02, "unknown": 0.13},
    "vehicle": {"person": 0.03, "animal": 0.02, "vehicle": 0.9, "unknown": 0.05},
}
CLASSES = ("person", "vehicle", "animal", "unknown")
WEIGHT = {"person": 1.0, "vehicle": 12.0, "animal": 3.0}


@dataclass(frozen=True)
class UgsMessage:
    """One message as the gateway hands it on: raw bytes, the decoded message, the truth.

    ``message`` is ``None`` for a malformed payload. ``label`` is ``"ok"``, ``"malformed"``
    or ``"skewed"`` (time stamped by a wrong clock); ``cause`` names the movers that set the
    sensor off, or ``("wind",)``, ``("small_animal",)`` or ``("far_vehicle",)`` for a nuisance
    alarm, or ``()`` for a heartbeat.
    """

    time: float
    sensor: str
    payload: bytes
    message: SensorEvent | SensorStatus | None
    label: str
    cause: tuple[str, ...]


class SensorField:
    """All ground sensors of a site and their state (battery, hold-off, last heard)."""

    def __init__(
        self,
        sensors: list[GroundSensor],
        frame: LocalFrame,
        settings: SimSettings,
        seed: int,
        terrain: SimTerrain | None = None,
        nuisance: UgsNuisance | None = None,
    ) -> None:
        self.sensors = list(sensors)
        #: alarms from small animals and far vehicles (None or off: wind only)
        self.nuisance = nuisance if nuisance is not None and nuisance.on else None
        self.terrain = terrain
        self.settings = settings
        self.seed = seed
        n = len(self.sensors)
        if n:
            x, y = frame.to_local([s.lat for s in sensors], [s.lon for s in sensors])
        else:
            x = y = np.zeros(0)
        self.x, self.y = np.asarray(x), np.asarray(y)
        rng = rng_for(seed, STREAM_UGS, 0, 0)
        self.battery = rng.uniform(0.55, 1.0, n)
        self.quiet_until = np.full(n, -np.inf)
        self.last_heard = np.full(n, settings.start_time)
        self.status_phase = rng.uniform(0.0, settings.ugs_status_interval_s, n)
        self.tick = 0

    def _finish(
        self, rng: np.random.Generator, t: float, i: int, msg, cause: tuple[str, ...]
    ) -> UgsMessage:
        """Encode a message as the sensor sends it, now and then badly."""
        st = self.settings
        u = rng.uniform()
        label = "ok"
        if u < st.malformed_rate:
            label = "malformed"
            raw = encode(msg)
            how = int(rng.integers(0, 3))
            if how == 0:
                payload = raw[: max(1, int(len(raw) * rng.uniform(0.2, 0.9)))]
            elif how == 1:
                payload = raw.replace(b'"time":', b'"time":"', 1)
            else:
                payload = raw.replace(b'"sensor":', b'"sensr":', 1)
            return UgsMessage(t, self.sensors[i].id, payload, None, label, cause)
        if u < st.malformed_rate + st.skewed_rate:
            label = "skewed"
            msg = msgspec.structs.replace(msg, time=msg.time + st.clock_skew_s)
        self.last_heard[i] = t
        return UgsMessage(t, self.sensors[i].id, encode(msg), msg, label, cause)

    def step(self, t: float, states: MoverStates, local_hour: float) -> list[UgsMessage]:
        """Everything the sensors send at tick time ``t``, in sensor order."""
        st = self.settings
        n = len(self.sensors)
        out: list[UgsMessage] = []
        if n == 0:
            return out
        rng = rng_for(self.seed, STREAM_UGS, 1, self.tick)
        rng_n = rng_for(self.seed, STREAM_UGS_NUISANCE, 0, self.tick) if self.nuisance else None
        self.tick += 1
        dt = st.ugs_tick_s
        wind = 0.3 + 0.7 * max(0.0, math.sin(math.pi * (local_hour - 9.0) / 12.0))
        p_wind = 1.0 - math.exp(-st.wind_nuisance_per_hour * wind * dt / 3600.0)
        self.battery = np.clip(self.battery - st.battery_drain_per_day * dt / 86400.0, 0.0, 1.0)
        if len(states):
            dx = states.x[None, :] - self.x[:, None]
            dy = states.y[None, :] - self.y[:, None]
            dist = np.hypot(dx, dy)
        for i, s in enumerate(self.sensors):
            alive = self.battery[i] > 0.0
            due = math.floor((t - st.start_time - self.status_phase[i]) / st.ugs_status_interval_s)
            prev = math.floor(
                (t - dt - st.start_time - self.status_phase[i]) / st.ugs_status_interval_s
            )
            draws = rng.uniform(size=4)
            if alive and due > prev:
                state = "ok" if self.battery[i] > 0.15 else "degraded"
                status = SensorStatus(
                    sensor=s.id,
                    time=t,
                    battery=round(float(self.battery[i]), 4),
                    state=state,
                    last_heard=float(self.last_heard[i]),
                )
                out.append(self._finish(rng, t, i, status, ()))
            if not alive or t < self.quiet_until[i]:
                continue
            hits: list[int] = []
            if len(states):
                near = np.flatnonzero(dist[i] <= 3.0 * s.radius_m)
                for k in near:
                    cls = states.classes[k]
                    reach = s.radius_m * REACH[s.modality][cls]
                    d = dist[i, k]
                    if d > reach:
                        continue
                    if s.modality == "pir" and s.azimuth_deg is not None and s.beam_deg < 360:
                        az = math.degrees(math.atan2(dx[i, k], dy[i, k])) % 360.0
                        off = abs((az - s.azimuth_deg + 180.0) % 360.0 - 180.0)
                        if off > s.beam_deg / 2:
                            continue
                    if s.modality == "pir" and not self._in_sight(i, states, k):
                        continue
                    p = P_DETECT[s.modality][cls] * (1.0 - (d / reach) ** 2)
                    if rng.uniform() < p:
                        hits.append(int(k))
            if hits:
                out.append(self._finish(rng, t, i, self._event(rng, t, i, states, hits), tuple(
                    states.ids[k] for k in hits)))  # fmt: skip
                self.quiet_until[i] = t + st.ugs_holdoff_s
                self.battery[i] = max(0.0, self.battery[i] - 2e-6)
            elif draws[0] < p_wind:
                ev = SensorEvent(
                    sensor=s.id,
                    time=t,
                    modality=s.modality,
                    strength=round(float(draws[1] * 0.4), 4),
                    class_guess=CLASSES[int(draws[2] * 4) % 4],
                    class_confidence=round(float(0.2 + 0.4 * draws[3]), 3),
                    count=1,
                )
                out.append(self._finish(rng, t, i, ev, ("wind",)))
                self.quiet_until[i] = t + st.ugs_holdoff_s
            elif rng_n is not None and (
                got := ugs_nuisance(self.nuisance, rng_n, s.modality, dt, local_hour)
            ):
                ev = SensorEvent(
                    sensor=s.id, time=t, modality=s.modality,
                    strength=round(float(rng_n.uniform(0.2, 1.5)), 4), class_guess=got[1],
                    class_confidence=round(float(rng_n.uniform(0.3, 0.7)), 3), count=1,
                )  # fmt: skip
                out.append(self._finish(rng_n, t, i, ev, (got[0],)))
                self.quiet_until[i] = t + st.ugs_holdoff_s
        return out

    def _in_sight(self, i: int, states: MoverStates, k: int) -> bool:
        """Whether sensor ``i`` (an infrared eye :data:`PIR_HEIGHT_M` above its ground) sees
        the middle of body ``k`` over the ground; always on flat ground."""
        tr = self.terrain
        if tr is None:
            return True
        eye = np.array([self.x[i], self.y[i], float(tr.ground_z(self.x[i], self.y[i]))])
        eye[2] += PIR_HEIGHT_M
        mid = tr.seen_z(eye, states.x[k], states.y[k]) + 0.5 * states.height_m[k]
        return bool(tr.clear(eye, states.x[k], states.y[k], mid)[0])

    def _event(
        self, rng: np.random.Generator, t: float, i: int, states: MoverStates, hits: list[int]
    ) -> SensorEvent:
        s = self.sensors[i]
        d = np.hypot(states.x[hits] - self.x[i], states.y[hits] - self.y[i])
        near = hits[int(np.argmin(d))]
        cls = states.classes[near]
        weight = sum(WEIGHT[states.classes[k]] / (1.0 + (dd / 5.0) ** 2) for k, dd in zip(
            hits, d, strict=True))  # fmt: skip
        strength = float(weight * rng.lognormal(0.0, 0.25))
        probs = GUESS[cls]
        if s.modality == "magnetic":
            probs = {"vehicle": 0.85, "unknown": 0.15} if cls == "vehicle" else {"unknown": 1.0}
        names = list(probs)
        guess = names[int(rng.choice(len(names), p=np.array([probs[k] for k in names])))]
        conf = float(rng.uniform(0.4, 0.9)) if guess != "unknown" else float(rng.uniform(0.1, 0.3))
        count = max(1, len(hits) + int(rng.integers(-1, 2)) if len(hits) > 2 else len(hits))
        direction = None
        if s.modality == "pir":
            vx, vy = states.vx[near], states.vy[near]
            if math.hypot(vx, vy) > 0.1:
                direction = round(
                    (math.degrees(math.atan2(vx, vy)) + rng.normal(0.0, 15.0)) % 360.0, 1
                )
        return SensorEvent(
            sensor=s.id,
            time=t,
            modality=s.modality,
            strength=round(strength, 4),
            class_guess=guess,
            class_confidence=round(conf, 3),
            count=int(count),
            direction_deg=direction,
        )
