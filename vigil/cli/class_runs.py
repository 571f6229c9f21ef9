"""The runs ``vigil calibrate classes`` reads: a sector's recordings, simulated ones with their
truth, and replays that score a class model on a simulated run (issue 22 item 4).

- :func:`record_simulated` runs the demo's chain (:class:`vigil.pipeline.Pipeline`) on one
  seed and writes what its bus carried as a Vigil recording (the file ``vigil record``
  writes from a broker), stamped with the simulated clock; its header's ``meta`` names the
  seed, the simulator settings and the perturbations (:class:`SimulatedRun`), so that the
  world can be made again for its truth;
- :func:`read_run` reads a recording's tower-camera detections and published tracks (every
  other kind is skipped; a message that does not decode is counted, not fatal);
- :func:`truth_of` labels a simulated recording's tracks with the class of the bodies they
  followed (:func:`vigil.sim.track_truth.truth_labels`);
- :func:`replay_animals` feeds a simulated recording's inputs, in order and at their times,
  through a fresh sector core with a given class model and scores animals classified as
  animals against the re-made world (the scorer of ``vigil demo``), so that two class models
  are compared on the very same detections.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec
import numpy as np

from vigil.geo.frames import LocalFrame
from vigil.ingest.recording import Recorder, RecordingError, read_recording
from vigil.ingest.schema import CameraDetection, MessageError, Track, decode, encode
from vigil.ingest.topics import expected_kind
from vigil.sim import SimSettings
from vigil.sim.perturbations import Perturbations
from vigil.sim.protocol import animal_tally
from vigil.tracks.label_fit import CameraDetections, TrackMessages

if TYPE_CHECKING:
    from vigil.config import Deployment
    from vigil.geo.site import Site
    from vigil.tracks.config import TrackerConfig

#: The key of a simulated recording's header ``meta``.
META_KEY = "simulated_run"
#: A recording with more messages than this is refused (about a day of a busy sector).
MAX_MESSAGES = 5_000_000
#: The sector core's inputs a replay feeds it (what the live core took from outside).
_INPUT_KINDS = frozenset(
    {"camera_detection", "sensor_event", "sensor_status", "telemetry", "alert_action"}
)


class TruthTick(msgspec.Struct, frozen=True, array_like=True):
    """The bodies near the simulated towers at one tick: time (UTC s), ids, classes and
    positions (local m)."""

    t: float
    ids: list[str]
    classes: list[str]
    x: list[float]
    y: list[float]


@dataclass
class _States:
    """A :class:`TruthTick` as the scorer's matching reads movers' states."""

    ids: list[str]
    classes: list[str]
    x: np.ndarray
    y: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)


class StoredTruth:
    """A recording's truth, read back: :meth:`states` at the tick nearest ``t`` (within one
    tick), as :meth:`vigil.sim.World.states` would give it."""

    def __init__(self, ticks: list[TruthTick]) -> None:
        self.times = np.array([k.t for k in ticks], dtype=np.float64)
        self.ticks = ticks
        self._empty = _States([], [], np.zeros(0), np.zeros(0))

    def states(self, t: float) -> _States:
        """The bodies at the nearest tick (none further than 1 s away)."""
        if not len(self.times):
            return self._empty
        i = int(np.clip(np.searchsorted(self.times, t), 1, len(self.times) - 1))
        i = i - 1 if abs(self.times[i - 1] - t) <= abs(self.times[i] - t) else i
        if abs(self.times[i] - t) > 1.0:
            return self._empty
        k = self.ticks[i]
        return _States(k.ids, k.classes, np.asarray(k.x), np.asarray(k.y))


#: Bodies farther than this from every simulated tower are left out of a recording's truth, m.
TRUTH_RADIUS_M = 5000.0


class SimulatedRun(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What made a simulated recording: seed, simulated seconds, simulator settings,
    perturbations (``None``: none) and the class model the run tracked with (its ``fitted``)."""

    seed: int
    duration_s: float
    sim: SimSettings
    perturbations: Perturbations | None = None
    class_model: str = ""
    #: :func:`world_digest` at the start and at the end: a re-made world must match them
    world_start: str = ""
    world_end: str = ""
    #: the bodies within :data:`TRUTH_RADIUS_M` of the simulated towers at every tick
    truth: list[TruthTick] = []


def world_digest(world, t: float) -> str:
    """A short digest of every mover at ``t`` (ids, classes, positions to 0.1 m): the same
    for a world made again from the same seed, settings and perturbations."""
    import hashlib

    st = world.states(t)
    h = hashlib.sha256()
    for i, c, x, y in zip(st.ids, st.classes, st.x.tolist(), st.y.tolist(), strict=True):
        h.update(f"{i},{c},{x:.1f},{y:.1f};".encode())
    return h.hexdigest()[:16]


def _check_world(path: str | Path, run: SimulatedRun, world, t: float, which: str) -> None:
    expected = run.world_start if which == "start" else run.world_end
    if expected and world_digest(world, t) != expected:
        raise RecordingError(
            f"{path}: the simulator no longer makes this recording's world (seed {run.seed}, "
            f"movers at the {which} differ): its truth would be wrong; record it again"
        )


def record_simulated(
    deployment: Deployment,
    sim: SimSettings,
    seed: int,
    duration_s: float,
    out: str | Path,
    *,
    perturbations: Perturbations | None = None,
    tracker: TrackerConfig | None = None,
    overwrite: bool = False,
) -> dict:
    """Run the chain on ``seed`` for ``duration_s`` simulated seconds and record its bus to
    ``out`` (gzip JSON lines; times on the simulated clock); return the run's summary."""
    from vigil.pipeline import Pipeline

    tracker = tracker or deployment.tracker_config()
    pipe = Pipeline(
        deployment.site,
        sim,
        seed,
        tracker=tracker,
        rules=deployment.rules,
        detection=deployment.detection_for,
        perturbations=perturbations,
    )
    start = sim.start_time
    stream = Path(out).with_name(Path(out).name + ".part")
    rec = Recorder(stream, pipe.sector, started=start, flush_each=False, overwrite=True)
    pipe.bus.subscribe(
        f"vigil/v1/{pipe.sector}/#", lambda topic, msg: rec.write(topic, encode(msg), pipe.now)
    )
    ticks: list[TruthTick] = []
    towers = [t for t in deployment.site.towers if not sim.towers or t.id in sim.towers]
    tx, ty = pipe.frame.to_local([t.lat for t in towers], [t.lon for t in towers])
    tick = pipe._tick

    def tick_and_keep(t: float) -> None:
        tick(t)
        st = pipe.world.states(t)  # cached by the tick
        d = np.hypot(st.x[:, None] - np.asarray(tx)[None, :], st.y[:, None] - ty[None, :])
        near = np.flatnonzero((d <= TRUTH_RADIUS_M).any(axis=1)) if d.size else []
        ticks.append(
            TruthTick(
                t,
                [str(st.ids[i]) for i in near],
                [str(st.classes[i]) for i in near],
                [round(float(st.x[i]), 1) for i in near],
                [round(float(st.y[i]), 1) for i in near],
            )
        )

    pipe._tick = tick_and_keep
    ok = False
    try:
        first = world_digest(pipe.world, start)
        pipe.run(duration_s)
        summary = pipe.summary(duration_s)
        meta = SimulatedRun(
            seed=seed,
            duration_s=duration_s,
            sim=pipe.world.settings,
            perturbations=perturbations,
            class_model=deployment.config.classes.calibration or "",
            world_start=first,
            world_end=world_digest(pipe.world, start + duration_s),
            truth=ticks,
        )
        ok = True
    finally:
        rec.close()
        pipe.close()
        if not ok:
            stream.unlink(missing_ok=True)
    # the header is written first: the stream is copied behind it once the run is known
    final = Recorder(
        out,
        pipe.sector,
        started=start,
        meta={META_KEY: msgspec.to_builtins(meta)},
        flush_each=False,
        overwrite=overwrite,
    )
    _, messages = read_recording(stream)
    for m in messages:
        final.write(m.topic, m.raw, m.t)
    final.close()
    stream.unlink()
    return summary


@dataclass
class Run:
    """One recording as ``vigil calibrate classes`` reads it."""

    path: str
    sector: str
    detections: CameraDetections
    tracks: TrackMessages
    simulated: SimulatedRun | None
    undecodable: Counter[str] = field(default_factory=Counter)


def read_run(path: str | Path, frame: LocalFrame, sector: str) -> Run:
    """Read a recording's camera detections and tracks into the sector's local frame.

    Raises :class:`RecordingError` naming the file for a recording of another sector, one
    over :data:`MAX_MESSAGES` messages, or a damaged one; messages that do not decode are
    counted by reason in ``undecodable``."""
    header, messages = read_recording(path)
    if header.sector != sector:
        raise RecordingError(f"{path}: a recording of sector {header.sector!r}, not {sector!r}")
    simulated = None
    if header.meta and META_KEY in header.meta:
        try:
            simulated = msgspec.convert(header.meta[META_KEY], SimulatedRun)
        except msgspec.ValidationError as exc:
            raise RecordingError(f"{path}: header meta {META_KEY}: {exc}") from None
    dets: list[CameraDetection] = []
    tracks: list[Track] = []
    bad: Counter[str] = Counter()
    for n, m in enumerate(messages, start=1):
        if n > MAX_MESSAGES:
            raise RecordingError(f"{path}: more than {MAX_MESSAGES} messages")
        kind = expected_kind(m.topic)
        if kind not in ("camera_detection", "track"):
            continue
        try:
            msg = decode(m.topic, m.raw, now=m.t, max_skew_s=7 * 86_400.0)
        except MessageError as exc:
            bad[exc.reason] += 1
            continue
        if isinstance(msg, CameraDetection) and msg.box is not None:
            dets.append(msg)
        elif isinstance(msg, Track):
            tracks.append(msg)
    return Run(
        str(path), header.sector, _detections(dets, frame), _tracks(tracks, frame), simulated, bad
    )


def _detections(dets: list[CameraDetection], frame: LocalFrame) -> CameraDetections:
    x, y = frame.to_local([d.lat for d in dets], [d.lon for d in dets])
    cov = np.array([d.cov for d in dets], dtype=np.float64).reshape(-1, 2, 2)
    nan = float("nan")
    return CameraDetections(
        camera=[d.camera for d in dets],
        time=np.array([d.time for d in dets], dtype=np.float64),
        x=np.asarray(x, dtype=np.float64),
        y=np.asarray(y, dtype=np.float64),
        cov=cov,
        guess=[d.class_guess for d in dets],
        confidence=np.array([d.class_confidence for d in dets], dtype=np.float64),
        range_m=np.array([nan if d.range_m is None else d.range_m for d in dets]),
    )


def _tracks(tracks: list[Track], frame: LocalFrame) -> TrackMessages:
    live = [m for m in tracks if m.state != "ended"]
    x, y = frame.to_local([m.lat for m in live], [m.lon for m in live])
    sensors: dict[str, set[str]] = {}
    for m in tracks:
        sensors.setdefault(m.track_id, set()).update(m.sensors)
    return TrackMessages(
        track_id=[m.track_id for m in live],
        time=np.array([m.time for m in live], dtype=np.float64),
        x=np.asarray(x, dtype=np.float64),
        y=np.asarray(y, dtype=np.float64),
        vx=np.array([m.vx for m in live], dtype=np.float64),
        vy=np.array([m.vy for m in live], dtype=np.float64),
        cov=np.array([m.cov for m in live], dtype=np.float64).reshape(-1, 2, 2),
        state=[m.state for m in live],
        count=np.array([m.count for m in live], dtype=np.int64),
        sensors=sensors,
    )


def _world(site: Site, run: SimulatedRun):
    from vigil.sim import World

    # cameras off: the movers do not depend on them, and nothing is rendered
    sim = msgspec.structs.replace(run.sim, cameras="off")
    return World(site, sim, run.seed, perturbations=run.perturbations)


def truth_of(site: Site, run: Run) -> dict[str, str]:
    """Labels of a simulated recording's tracks from the re-made world's truth."""
    from vigil.sim.track_truth import truth_labels

    if run.simulated is None:
        raise RecordingError(
            f"{run.path}: not a simulated recording (its header names no seed and settings; "
            "make one with vigil calibrate record), so there is no truth to label it with"
        )
    if run.simulated.truth:
        tr = run.tracks
        samples = zip(tr.track_id, tr.time.tolist(), tr.x.tolist(), tr.y.tolist(), strict=True)
        truth = truth_labels(StoredTruth(run.simulated.truth), samples)  # type: ignore[arg-type]
        return {tid: t.label for tid, t in truth.items() if t.label is not None}
    world = _world(site, run.simulated)
    try:
        start = run.simulated.sim.start_time
        _check_world(run.path, run.simulated, world, start, "start")
        tr = run.tracks
        truth = truth_labels(
            world, zip(tr.track_id, tr.time.tolist(), tr.x.tolist(), tr.y.tolist(), strict=True)
        )
        _check_world(run.path, run.simulated, world, start + run.simulated.duration_s, "end")
    finally:
        world.close()
    return {tid: t.label for tid, t in truth.items() if t.label is not None}


@dataclass
class ReplayScore:
    """How a replay classed what it tracked, scored against the truth.

    ``confusion``: track-seconds, true class (rows: person, vehicle, animal) by the class the
    matched confirmed track published (columns: person, vehicle, animal, unknown), each body
    matched one to one to a track within the scorer's radius once a second;
    ``animal_seconds``/``animal_as_animal_s``: the scorer's own animal tally (``vigil demo``'s
    figure); ``animals``/``animals_as_animal``: animals by majority of their matched seconds
    (the evaluation protocol's vote, :func:`vigil.sim.protocol.animal_tally`);
    ``people``/``people_as_person``: people by the same vote, as persons."""

    confusion: np.ndarray
    animal_seconds: int
    animal_as_animal_s: int
    animals: int
    animals_as_animal: int
    people: int = 0
    people_as_person: int = 0


def replay_classes(site: Site, path: str | Path, tracker: TrackerConfig) -> ReplayScore:
    """Replay a simulated recording's inputs (in order, at their recorded times, ticking once
    a second as the run did) through a fresh sector core that tracks with ``tracker``, and
    score its classes against the recording's truth (the re-made world for a recording
    without one)."""
    from vigil.core import SectorCore
    from vigil.ingest.bus import InProcessBus
    from vigil.sim.scoring import Scorer, _assign
    from vigil.tracks.label_fit import DECIDED

    header, messages = read_recording(path)
    if not header.meta or META_KEY not in header.meta:
        raise RecordingError(f"{path}: not a simulated recording; a replay needs its truth")
    try:
        run = msgspec.convert(header.meta[META_KEY], SimulatedRun)
    except msgspec.ValidationError as exc:
        raise RecordingError(f"{path}: header meta {META_KEY}: {exc}") from None
    start = run.sim.start_time
    end = start + run.duration_s
    world = None
    if run.truth:
        truth: StoredTruth | object = StoredTruth(run.truth)
    else:
        world = truth = _world(site, run)
        _check_world(path, run, world, start, "start")
    clock = [start]
    bus = InProcessBus(header.sector, clock=lambda: clock[0])
    core = SectorCore(site, bus, tracker=tracker)
    m = np.zeros((3, len(DECIDED)), dtype=np.int64)
    rows = {"person": 0, "vehicle": 1, "animal": 2}
    per_animal: dict[str, list[int]] = {}
    per_person: dict[str, list[int]] = {}
    match_m = Scorer.animal_match_m

    def tick(t: float) -> None:
        clock[0] = t
        core.tick(t)
        live = core.live  # what the scorer matches: confirmed and coasting tracks
        if not live:
            return
        st = truth.states(t)  # type: ignore[attr-defined]
        if not len(st):
            return
        tx = np.array([x for _, x, _ in live])
        ty = np.array([y for _, _, y in live])
        for bi, ti in _assign(np.asarray(st.x), np.asarray(st.y), tx, ty, match_m):
            cls, guess = str(st.classes[bi]), live[ti][0].class_guess
            if (r := rows.get(cls)) is not None:
                m[r, DECIDED.index(guess)] += 1
            if cls == "animal":  # the scorer's tally: matched seconds, seconds as animal
                tally = per_animal.setdefault(str(st.ids[bi]), [0, 0])
                tally[0] += 1
                tally[1] += guess == "animal"
            elif cls == "person":
                tally = per_person.setdefault(str(st.ids[bi]), [0, 0])
                tally[0] += 1
                tally[1] += guess == "person"

    try:
        next_tick, n = start + 1.0, 0
        for n, msg in enumerate(messages, start=1):
            if n > MAX_MESSAGES:
                raise RecordingError(f"{path}: more than {MAX_MESSAGES} messages")
            if expected_kind(msg.topic) not in _INPUT_KINDS:
                continue
            while msg.t >= next_tick:  # the run's clock: ticks due first, then the message
                tick(next_tick)
                next_tick += 1.0
            clock[0] = msg.t
            bus.publish(msg.topic, msg.raw)
        while next_tick <= end:
            tick(next_tick)
            next_tick += 1.0
        if world is not None:
            _check_world(path, run, world, end, "end")
    finally:
        core.close()
        if world is not None:
            world.close()
    animals, as_animal = animal_tally({k: (a, b) for k, (a, b) in per_animal.items()})
    seconds = sum(a for a, _ in per_animal.values())
    people, as_person = animal_tally({k: (a, b) for k, (a, b) in per_person.items()})
    return ReplayScore(
        m, seconds, sum(b for _, b in per_animal.values()), animals, as_animal, people, as_person
    )
