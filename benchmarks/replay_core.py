"""Replay a recording through a fresh sector core with other settings, scored as the live run.

The recorded inputs go, in order and at their pipeline times, through ``SectorCore`` (fusion,
crossings, alert rules) with optional changes to ``TrackerConfig.for_sector(**changes)`` and
``AlertRules``; ``vigil.sim.scoring`` scores it exactly as the live run was scored against
the re-simulated world, which must still be the recorded one.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from pathlib import Path
from typing import Any

import msgspec

from benchmarks.replay_figures import figures
from benchmarks.replay_recording import INPUT_KINDS, Recording, RecordingError, load
from vigil.alerts.rules import AlertRules
from vigil.geo.site import Site
from vigil.ingest.schema import Alert
from vigil.ingest.topics import expected_kind
from vigil.sim import SimSettings
from vigil.tracks.config import TrackerConfig

#: Width of the range bins of ``by_range``, metres.
RANGE_BIN_M = 500.0


def replay(
    recording: Recording | str | Path,
    tracker_changes: dict[str, Any] | None = None,
    rules_changes: dict[str, Any] | None = None,
    verbose: bool = False,
    by_range: bool = False,
) -> dict:
    """Feed a recording's messages through a fresh ``SectorCore`` and score it.

    Parameters
    ----------
    recording
        A :class:`Recording` or the path of one.
    tracker_changes
        Field changes to ``TrackerConfig.for_sector()`` (times in seconds, distances in
        metres), e.g. ``{"reacquire_s": 900.0}``.
    rules_changes
        Field changes to ``AlertRules()``, e.g. ``{"min_person_probability": 0.5}``.
    verbose
        Print every crossing alert (``ok`` when it matches a true northbound person
        crossing, else ``FALSE``; time in seconds from the start, position in local metres),
        the unalerted crossings and each change of track matched to a northbound group.
    by_range
        Also return ``animal_seconds_by_range``: animal track-seconds per
        :data:`RANGE_BIN_M` bin of range from the nearest simulated tower (key: the bin's
        start, metres) and per class guess of the matched track.

    Returns
    -------
    dict
        The figures (``benchmarks.replay_figures.FIGURES``) and ``wall_s`` (seconds of wall
        time the replay took); with a recording replayed without changes the figures equal
        the recording's ``live`` ones.

    Raises
    ------
    ValueError
        A change names no such field or a value out of bounds.
    RecordingError
        The simulator no longer makes the recording's true crossings (replays score against
        a re-simulated world).
    """
    import numpy as np
    import shapely

    from vigil.pipeline import Pipeline
    from vigil.sim.scoring import _assign  # the scorer's own matching: the bins add up

    rec = recording if isinstance(recording, Recording) else load(recording)
    tracker = (
        changed(TrackerConfig.for_sector(), tracker_changes, "tracker").check()
        if tracker_changes
        else None
    )
    rules = changed(AlertRules(), rules_changes, "rules") if rules_changes else None
    wall0 = time.perf_counter()
    # Cameras off: the recorded detections stand in for them; the world is kept for the
    # truth each second (the movers do not depend on the cameras).
    sim = msgspec.structs.replace(rec.sim, cameras="off")
    pipe = Pipeline(rec.site, sim, rec.seed, tracker=tracker, rules=rules)
    start, end = sim.start_time, sim.start_time + rec.duration_s
    try:
        earlier = pipe.world.crossings_before_start()  # planned when the world is made
        if earlier != rec.earlier:
            raise _world_changed(rec, "crossings before the start", len(earlier))
        pipe._footprints = [(f.time, f.tower, shapely.from_wkb(f.wkb)) for f in rec.footprints]
        first: dict[str, Alert] = {}

        def keep_alert(topic: str, msg) -> None:
            if isinstance(msg, Alert):
                first.setdefault(msg.alert_id, msg)

        pipe.bus.subscribe(f"vigil/v1/{pipe.sector}/alerts", keep_alert)
        towers = _tower_positions(rec.site, sim, pipe.frame)
        bins: Counter[tuple[int, str]] = Counter()
        changes: dict[str, list[tuple[int, str, int, int]]] = {}
        scorer = pipe.scorer

        def step(t: float) -> None:
            last = dict(scorer.group_last) if verbose else None
            pipe._tick(t)
            if not (verbose or by_range) or not pipe.core.live:
                return
            st = pipe.world.states(t)  # cached by the tick
            if by_range and towers:
                animal = [i for i, c in enumerate(st.classes) if c == "animal"]
                tx = np.array([x for _, x, _ in pipe.core.live])
                ty = np.array([y for _, _, y in pipe.core.live])
                ax, ay = st.x[animal], st.y[animal]
                for ai, ti in _assign(ax, ay, tx, ty, scorer.animal_match_m):
                    r = min(math.hypot(ax[ai] - x, ay[ai] - y) for x, y in towers)
                    b = int(r // RANGE_BIN_M * RANGE_BIN_M)
                    bins[(b, pipe.core.live[ti][0].class_guess)] += 1
            if verbose:
                for g, tid in scorer.group_last.items():
                    if last.get(g) != tid:
                        sel = [i for i, gi in enumerate(st.groups) if gi == g]
                        gx, gy = float(st.x[sel].mean()), float(st.y[sel].mean())
                        row = (round(t - start), tid, round(gx), round(gy))
                        changes.setdefault(g, []).append(row)

        # the same clock as Pipeline.run: ticks due before each message, then the message;
        # the recorded alerts are the live run's outputs, not the core's inputs
        for m in rec.stream:
            if expected_kind(m.topic) not in INPUT_KINDS:
                continue
            while m.t >= pipe._next_tick:
                step(pipe._next_tick)
                pipe._next_tick += pipe.tick_s
            pipe.now = m.t
            pipe.bus.publish(m.topic, m.raw)
        while pipe._next_tick <= end:
            step(pipe._next_tick)
            pipe._next_tick += pipe.tick_s
        pipe.now = end
        pipe.core.flush_stores()
        truth = pipe.world.crossings(until=end + 60.0)
        if truth != rec.truth:
            raise _world_changed(rec, "true crossings", len(truth))
        summary = pipe.summary(rec.duration_s)
        result = figures(summary, pipe.core.fusion.stitched)
        if verbose:
            _print_details(rec, pipe, first, summary, changes)
    finally:
        pipe.close()
    result["wall_s"] = round(time.perf_counter() - wall0, 2)
    if by_range:
        result["animal_seconds_by_range"] = {
            b: {c: n for (bb, c), n in sorted(bins.items()) if bb == b}
            for b in sorted({b for b, _ in bins})
        }
    return result


def changed(base, changes: dict[str, Any], option: str):
    """``base`` (a msgspec struct) with ``changes``, type- and bound-checked; errors name
    ``option`` (``tracker``, ``rules``) and the field."""
    kind = type(base)
    unknown = sorted(set(changes) - set(kind.__struct_fields__))
    if unknown:
        raise ValueError(
            f"{option} changes name no field {unknown}; {kind.__name__} has "
            f"{', '.join(kind.__struct_fields__)}"
        )
    try:
        return msgspec.convert({**msgspec.to_builtins(base), **changes}, kind)
    except msgspec.ValidationError as exc:
        raise ValueError(f"{option} changes {changes}: {exc}") from None


def _world_changed(rec: Recording, what: str, now: int) -> RecordingError:
    recorded = len(rec.truth) if what == "true crossings" else len(rec.earlier)
    return RecordingError(
        f"the simulator no longer makes this recording's world (seed {rec.seed}; {what}: "
        f"{recorded} recorded, {now} now, or the same number but other ones): a replay is "
        "scored against the re-simulated world, so record the run again"
    )


def _tower_positions(site: Site, sim: SimSettings, frame) -> list[tuple[float, float]]:
    """Local positions (m) of the towers the simulator ran."""
    towers = [t for t in site.towers if not sim.towers or t.id in sim.towers]
    if not towers:
        return []
    x, y = frame.to_local([t.lat for t in towers], [t.lon for t in towers])
    return [(float(a), float(b)) for a, b in zip(x, y, strict=True)]


def _print_details(rec: Recording, pipe, first: dict[str, Alert], summary: dict, changes) -> None:
    start = rec.sim.start_time
    sc = pipe.scorer
    north = [
        c for c in rec.truth + rec.earlier if c.direction == "northbound" and c.cls == "person"
    ]
    for a in pipe.alert_points:
        m = first[a.alert_id]
        ok = any(
            math.hypot(c.x - a.x, c.y - a.y) <= sc.match_radius_m
            and -sc.early_s <= a.time - c.time <= sc.late_s
            for c in north
        )
        probs = {k: round(v, 2) for k, v in m.evidence.class_probs.items()}
        print(
            f"{'ok' if ok else 'FALSE'} {a.alert_id} new={a.new} t={a.time - start:.0f} s "
            f"({a.x:.0f}, {a.y:.0f}) m {m.track_id} sensors={list(m.evidence.sensors)} "
            f"detections={m.evidence.detections} {probs}"
        )
    print("unalerted", summary["unalerted_crossings"])
    groups = sorted({c.group_id for c in rec.truth if c.direction == "northbound"})
    for g in groups:
        if g in changes:
            print("group", g, "(t s, track, x m, y m):", changes[g])
