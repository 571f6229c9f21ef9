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
        )
    finally:
        rec.close()
        pipe.close()
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
    (the evaluation protocol's vote, :func:`vigil.sim.protocol.animal_tally`)."""

    confusion: np.ndarray
    animal_seconds: int
    animal_as_animal_s: int
    animals: int
    animals_as_animal: int


def replay_classes(site: Site, path: str | Path, tracker: TrackerConfig) -> ReplayScore:
    """Replay a simulated recording's inputs (in order, at their recorded times) through a
    fresh sector core that tracks with ``tracker``, and score its classes against the re-made
    world."""
    from vigil.pipeline import Pipeline
    from vigil.sim.scoring import _assign
    from vigil.tracks.label_fit import DECIDED

    header, messages = read_recording(path)
    if not header.meta or META_KEY not in header.meta:
        raise RecordingError(f"{path}: not a simulated recording; a replay needs its truth")
    run = msgspec.convert(header.meta[META_KEY], SimulatedRun)
    sim = msgspec.structs.replace(run.sim, cameras="off")
    pipe = Pipeline(site, sim, run.seed, tracker=tracker, perturbations=run.perturbations)
    end = sim.start_time + run.duration_s
    m = np.zeros((3, len(DECIDED)), dtype=np.int64)
    rows = {"person": 0, "vehicle": 1, "animal": 2}
    _check_world(path, run, pipe.world, sim.start_time, "start")

    def tick(t: float) -> None:
        pipe._tick(t)
        live = pipe.core.live  # what the scorer matches: confirmed and coasting tracks
        if not live:
            return
        st = pipe.world.states(t)
        tx = np.array([x for _, x, _ in live])
        ty = np.array([y for _, _, y in live])
        for bi, ti in _assign(st.x, st.y, tx, ty, pipe.scorer.animal_match_m):
            r = rows.get(str(st.classes[bi]))
            if r is not None:
                m[r, DECIDED.index(live[ti][0].class_guess)] += 1

    try:
        for n, msg in enumerate(messages, start=1):
            if n > MAX_MESSAGES:
                raise RecordingError(f"{path}: more than {MAX_MESSAGES} messages")
            if expected_kind(msg.topic) not in _INPUT_KINDS:
                continue
            while msg.t >= pipe._next_tick:
                tick(pipe._next_tick)
                pipe._next_tick += pipe.tick_s
            pipe.now = msg.t
            pipe.bus.publish(msg.topic, msg.raw)
        while pipe._next_tick <= end:
            tick(pipe._next_tick)
            pipe._next_tick += pipe.tick_s
        _check_world(path, run, pipe.world, end, "end")
        s = pipe.scorer
        animals, as_animal = animal_tally({k: (n, a) for k, (n, a) in s.animal_by_id.items()})
        return ReplayScore(m, s.animal_seconds, s.animal_as_animal, animals, as_animal)
    finally:
        pipe.close()
