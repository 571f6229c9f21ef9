"""Record a live run's sensor messages; replay them through the sector's core with other settings.

``record`` runs the whole chain (``vigil.pipeline.Pipeline``: simulator, rendered towers,
detector, fusion, crossings, alerts) and keeps every message the sector's core took from
outside (camera detections, ground-sensor events and status, aircraft telemetry, operator
actions) with the pipeline time it arrived at, together with what scoring needs: the true
crossings, the towers' footprints as they turned, the site, the simulator settings and seed,
and the live run's summary. ``replay`` feeds those messages, in order and at their times,
through a fresh ``SectorCore`` (fusion, crossings, alert rules) with optional changes to
``TrackerConfig.for_sector(**changes)`` and ``AlertRules``, and scores it with
``vigil.sim.scoring`` exactly as the live run was scored (``Pipeline.summary``): crossing
alert recall, false crossing alerts per 10 km per day, ID switches per crossing group and
animals classified as animals. A replay skips rendering and motion detection, so tracking
and alerting changes can be tried on long recordings without running the towers again.

**What a replay can and cannot measure.** A replay feeds the recorded detections, so cameras
cannot be re-cued by the replayed tracker: the towers look where the live run turned them,
and a change that would have turned a tower elsewhere is not seen. Detector changes (and
simulator changes) need a new recording. A replay measures tracking, fusion, crossings and
alerts only. A replay with no changes reproduces the live run's figures exactly; the
replay checks that the simulator still makes the recorded world (it re-simulates the truth
for the per-second scoring) and stops with an error if it does not.

The file is gzip-compressed MessagePack decoded into typed structs (no code runs on
loading), with a ``format`` and a ``version`` key; a file of another version is refused with
the version it has and the one this module reads.

Usage::

    python -m benchmarks replay          # record a short run, replay it unchanged, compare
    python -m benchmarks.bench_replay record --hours 12 --rate-scale 1 --fps 1 \\
        --start 2026-06-01T07:00:00Z --seed 1 --out day_a.vrec
    python -m benchmarks.bench_replay replay day_a.vrec \\
        --tracker '{"reacquire_s": 900}' --rules '{"min_person_probability": 0.5}' \\
        [--verbose] [--by-range]
    python -m benchmarks.bench_replay score day_a.vrec day_b.vrec

``score`` pools the live figures of several recordings (the halves of a day) and prints the
acceptance targets of issues 5 and 7 as met or missed; its exit status is 1 when one is
missed. ``--tracker`` and ``--rules`` take a JSON object of field changes (unknown fields
and values out of bounds are refused). ``--verbose`` lists every crossing alert (``ok`` or
``FALSE``), the unalerted crossings and, per northbound crossing group, each change of the
track it is matched to. ``--by-range`` prints the animal track-seconds by 500 m range bin
from the nearest simulated tower and the tracks' class guess.
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec

from vigil.alerts.rules import AlertRules
from vigil.geo.site import Site
from vigil.ingest.schema import (
    Alert,
    AlertAction,
    CameraDetection,
    SensorEvent,
    SensorStatus,
    Telemetry,
)
from vigil.sim import SimSettings
from vigil.sim.movers import CrossingTruth
from vigil.tracks.config import TrackerConfig

#: The ``format`` key of a recording file.
FORMAT = "vigil-replay-recording"
#: The recording layout this module writes and reads; bump it when :class:`Recording` changes.
FORMAT_VERSION = 1

#: Messages the sector's core takes from outside: what a recording keeps.
InputMessage = CameraDetection | SensorEvent | SensorStatus | Telemetry | AlertAction
_INPUTS = (CameraDetection, SensorEvent, SensorStatus, Telemetry, AlertAction)

#: The figures a live run and a replay both report, in the order they are printed.
FIGURES = (
    "true_northbound_person_crossings",
    "inside_coverage",
    "alerted",
    "alert_recall",
    "crossing_alerts",
    "false_crossing_alerts",
    "false_alerts_per_10km_day",
    "id_switches_per_crossing_group",
    "id_switches",
    "crossing_groups_tracked",
    "animal_classified_as_animal",
    "animal_track_seconds",
    "crossings_detected",
    "alert_kinds",
    "stitched",
)

#: Width of the range bins of ``--by-range``, metres.
RANGE_BIN_M = 500.0


class RecordingError(ValueError):
    """A file that is not a recording this module can replay (or no longer matches the code)."""


class Footprint(msgspec.Struct, frozen=True, array_like=True):
    """Where a tower looked from ``time`` (UTC s) on: its footprint, WKB in local metres."""

    time: float
    tower: str
    wkb: bytes


class Recording(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One recorded live run (see the module docstring).

    ``stream`` holds ``(pipeline time, message)`` in the order the bus delivered them, UTC
    seconds; ``truth`` the crossings up to a minute past the end, ``earlier`` those made
    before the start by groups still walking (both as the live run scored them);
    ``live`` the run's :data:`FIGURES` plus ``wall_s``; ``summary`` the whole
    ``Pipeline.summary``; ``alerts`` every alert message the run published.
    """

    format: str
    version: int
    made_utc: str
    code: str
    seed: int
    duration_s: float
    sim: SimSettings
    site: Site
    stream: list[tuple[float, InputMessage]]
    footprints: list[Footprint]
    truth: list[CrossingTruth]
    earlier: list[CrossingTruth]
    live: dict[str, Any]
    summary: dict[str, Any]
    alerts: list[Alert]


class _Header(msgspec.Struct):
    format: str = ""
    version: int = -1


# -- record ---------------------------------------------------------------------------------


def record(
    out: str | Path,
    *,
    hours: float,
    seed: int,
    sim: SimSettings,
    site: Site | None = None,
) -> dict:
    """Run the chain live for ``hours`` of simulated time and write the recording to ``out``.

    Parameters
    ----------
    out
        The recording file to write (replaced if it exists).
    hours
        Simulated duration, hours.
    seed
        Simulation seed.
    sim
        Simulator settings; ``sim.start_time`` is the UTC start, seconds since the epoch.
    site
        The deployment's layout (default: the shipped deployment's).

    Returns
    -------
    dict
        The live run's :data:`FIGURES` and ``wall_s`` (seconds of wall time the run took).
    """
    import shapely

    from vigil.config import load_default
    from vigil.pipeline import Pipeline

    out = Path(out)
    if not out.parent.is_dir():  # before the run, which may take hours
        raise FileNotFoundError(f"no folder {out.parent} to write the recording {out.name} in")
    site = _plain_site(site if site is not None else load_default().site)
    duration = hours * 3600.0
    code = _code_version()  # the code the run loads now, not what the checkout holds later
    pipe = Pipeline(site, sim, seed)
    stream: list[tuple[float, InputMessage]] = []
    alerts: list[Alert] = []

    def keep(topic: str, msg) -> None:
        if isinstance(msg, _INPUTS):
            stream.append((pipe.now, msg))
        elif isinstance(msg, Alert):
            alerts.append(msg)

    pipe.bus.subscribe(f"vigil/v1/{pipe.sector}/#", keep)
    wall0 = time.perf_counter()
    try:
        pipe.run(duration)
        summary = pipe.summary(duration)
        truth = pipe.world.crossings(until=sim.start_time + duration + 60.0)
        earlier = pipe.world.crossings_before_start()
        footprints = [Footprint(t, tid, shapely.to_wkb(p)) for t, tid, p in pipe._footprints]
        stitched = pipe.core.fusion.stitched
    finally:
        pipe.close()
    live = {**_figures(summary, stitched), "wall_s": round(time.perf_counter() - wall0, 2)}
    rec = Recording(
        format=FORMAT,
        version=FORMAT_VERSION,
        made_utc=datetime.now(UTC).isoformat(timespec="seconds"),
        code=code,
        seed=int(seed),
        duration_s=duration,
        sim=sim,
        site=site,
        stream=stream,
        footprints=footprints,
        truth=truth,
        earlier=earlier,
        live=live,
        summary=summary,
        alerts=alerts,
    )
    save(rec, out)
    return dict(live)


def save(recording: Recording, path: str | Path) -> None:
    """Write ``recording`` to ``path`` (gzip-compressed MessagePack), atomically."""
    path = Path(path)
    data = msgspec.msgpack.encode(recording, enc_hook=_enc_hook)
    part = path.with_name(path.name + ".part")
    with gzip.open(part, "wb", compresslevel=6) as f:
        f.write(data)
    part.replace(path)


def load(path: str | Path) -> Recording:
    """Read a recording written by :func:`save`.

    Raises
    ------
    RecordingError
        When the file is not such a recording, or one of another format version.
    """
    path = Path(path)
    what = "a recording made by `python -m benchmarks.bench_replay record`"
    try:
        data = gzip.decompress(path.read_bytes())
    except (OSError, EOFError) as exc:
        raise RecordingError(f"{path}: not gzip data ({exc}); expected {what}") from None
    try:
        head = msgspec.msgpack.decode(data, type=_Header)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        msg = f"{path}: not MessagePack with a header ({exc}); expected {what}"
        raise RecordingError(msg) from None
    if head.format != FORMAT:
        raise RecordingError(f"{path}: format {head.format!r}; expected {FORMAT!r}, {what}")
    if head.version != FORMAT_VERSION:
        raise RecordingError(
            f"{path}: recording format version {head.version}; this bench_replay reads "
            f"version {FORMAT_VERSION} only: record the run again"
        )
    try:
        return msgspec.msgpack.decode(data, type=Recording)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        msg = f"{path}: damaged recording (version {FORMAT_VERSION}): {exc}"
        raise RecordingError(msg) from None


# -- replay ---------------------------------------------------------------------------------


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
        :data:`FIGURES` and ``wall_s`` (seconds of wall time the replay took); with a
        recording replayed without changes the figures equal the recording's ``live`` ones.

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

    from vigil.ingest.schema import topic_for
    from vigil.pipeline import Pipeline
    from vigil.sim.scoring import _assign  # the scorer's own matching: the bins add up

    rec = recording if isinstance(recording, Recording) else load(recording)
    tracker = (
        _changed(TrackerConfig.for_sector(), tracker_changes, "tracker").check()
        if tracker_changes
        else None
    )
    rules = _changed(AlertRules(), rules_changes, "rules") if rules_changes else None
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

        # the same clock as Pipeline.run: ticks due before each message, then the message
        for t, msg in rec.stream:
            while t >= pipe._next_tick:
                step(pipe._next_tick)
                pipe._next_tick += pipe.tick_s
            pipe.now = t
            pipe.bus.publish(topic_for(pipe.sector, msg), msg)
        while pipe._next_tick <= end:
            step(pipe._next_tick)
            pipe._next_tick += pipe.tick_s
        pipe.now = end
        pipe.core.flush_stores()
        truth = pipe.world.crossings(until=end + 60.0)
        if truth != rec.truth:
            raise _world_changed(rec, "true crossings", len(truth))
        summary = pipe.summary(rec.duration_s)
        result = _figures(summary, pipe.core.fusion.stitched)
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


def differences(live: dict, replayed: dict) -> list[str]:
    """The :data:`FIGURES` that differ between two results (NaN equals NaN), by name."""

    def same(a, b) -> bool:
        if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
            return True
        return a == b

    return [k for k in FIGURES if not same(live.get(k), replayed.get(k))]


def pooled(recordings: list[Recording]) -> dict:
    """The live figures of several recordings of one site (the halves of a day) as one run's.

    Recall is alerted over inside coverage, switches are summed over the groups, animals
    are weighted by animal track-seconds, false alerts per 10 km per day by duration, and
    the crossing-alert p99 is the largest of the runs' (milliseconds). The keys are those
    :func:`benchmarks.bench_demo.verdicts` reads, with ``hours`` and the sums behind them.
    """
    if not recordings:
        raise ValueError("pooled: no recordings")
    lives = [r.live for r in recordings]
    hours = sum(r.duration_s for r in recordings) / 3600.0
    inside = sum(v["inside_coverage"] for v in lives)
    alerted = sum(v["alerted"] for v in lives)
    groups = sum(v["crossing_groups_tracked"] for v in lives)
    switches = sum(v["id_switches"] for v in lives)
    animal_s = sum(v["animal_track_seconds"] for v in lives)
    shares = [
        (v["animal_classified_as_animal"], v["animal_track_seconds"])
        for v in lives
        if v["animal_track_seconds"]
    ]
    p99s = [r.summary["latency_ms"]["crossing_p99"] for r in recordings]
    p99s = [p for p in p99s if p is not None]
    return {
        "hours": hours,
        "inside_coverage": inside,
        "alerted": alerted,
        "alert_recall": alerted / inside if inside else math.nan,
        "false_crossing_alerts": sum(v["false_crossing_alerts"] for v in lives),
        "false_alerts_per_10km_day": sum(
            r.live["false_alerts_per_10km_day"] * r.duration_s for r in recordings
        )
        / (hours * 3600.0),
        "crossing_alert_latency_p99_ms": max(p99s) if p99s else None,
        "id_switches": switches,
        "crossing_groups_tracked": groups,
        "id_switches_per_crossing_group": switches / groups if groups else math.nan,
        "animal_track_seconds": animal_s,
        "animal_classified_as_animal": (
            sum(a * n for a, n in shares) / animal_s if animal_s else math.nan
        ),
    }


# -- helpers --------------------------------------------------------------------------------


def _figures(summary: dict, stitched: int) -> dict:
    """The :data:`FIGURES` of a ``Pipeline.summary``."""
    a = summary["alerts"]
    return {
        "true_northbound_person_crossings": a["true_northbound_person_crossings"],
        "inside_coverage": a["inside_coverage"],
        "alerted": a["alerted"],
        "alert_recall": a["alert_recall"],
        "crossing_alerts": a["crossing_alerts"],
        "false_crossing_alerts": a["false_crossing_alerts"],
        "false_alerts_per_10km_day": a["false_alerts_per_10km_day"],
        "id_switches_per_crossing_group": summary["id_switches_per_crossing_group"],
        "id_switches": summary["id_switches"],
        "crossing_groups_tracked": summary["crossing_groups_tracked"],
        "animal_classified_as_animal": summary["animal_classified_as_animal"],
        "animal_track_seconds": summary["animal_track_seconds"],
        "crossings_detected": summary["crossings"]["detected"],
        "alert_kinds": dict(sorted(summary["alert_kinds"].items())),
        "stitched": int(stitched),
    }


def _world_changed(rec: Recording, what: str, now: int) -> RecordingError:
    recorded = len(rec.truth) if what == "true crossings" else len(rec.earlier)
    return RecordingError(
        f"the simulator no longer makes this recording's world (seed {rec.seed}; {what}: "
        f"{recorded} recorded, {now} now, or the same number but other ones): a replay is "
        "scored against the re-simulated world, so record the run again"
    )


def _changed(base, changes: dict[str, Any], option: str):
    """``base`` (a msgspec struct) with ``changes``, type- and bound-checked."""
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


def _plain_site(site: Site) -> Site:
    """The layout alone (a deployment file's site also carries broker and store settings)."""
    return Site(**{f: getattr(site, f) for f in Site.__struct_fields__})


def _tower_positions(site: Site, sim: SimSettings, frame) -> list[tuple[float, float]]:
    """Local positions (m) of the towers the simulator ran."""
    towers = [t for t in site.towers if not sim.towers or t.id in sim.towers]
    if not towers:
        return []
    x, y = frame.to_local([t.lat for t in towers], [t.lon for t in towers])
    return [(float(a), float(b)) for a, b in zip(x, y, strict=True)]


def _enc_hook(obj: Any) -> Any:
    item = getattr(obj, "item", None)  # numpy scalars in summaries and messages
    if item is not None and type(obj).__module__ == "numpy":
        return item()
    raise NotImplementedError(f"cannot write {type(obj).__name__} in a recording")


def _code_version() -> str:
    """The repository's commit (``+dirty`` with local changes), or ``unknown``."""
    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()  # fmt: skip
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


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


def _show(live: dict, replayed: dict) -> None:
    """The live and the replayed figures side by side; ``*`` marks a difference."""
    keys = (*FIGURES, "wall_s")
    width = max(len(k) for k in keys)
    col = max(12, *(len(_shown(r.get(k))) for r in (live, replayed) for k in keys))
    differ = differences(live, replayed)
    print(f"{'figure':<{width}}  {'live':>{col}}  {'replay':>{col}}")
    for k in keys:
        mark = "  *" if k in differ else ""
        print(f"{k:<{width}}  {_shown(live.get(k)):>{col}}  {_shown(replayed.get(k)):>{col}}{mark}")


def _shown(v) -> str:
    return f"{v:.3f}" if isinstance(v, float) else json.dumps(v)


def _line(r: dict) -> str:
    """One line of a result, in the field's words."""
    return (
        f"recall {r['alerted']}/{r['inside_coverage']}, crossing alerts "
        f"{r['crossing_alerts']}, false {r['false_crossing_alerts']} "
        f"({r['false_alerts_per_10km_day']:.2f} per 10 km/day), ID switches "
        f"{r['id_switches_per_crossing_group']:.2f} ({r['id_switches']} over "
        f"{r['crossing_groups_tracked']} groups), animals as animal "
        f"{r['animal_classified_as_animal']:.3f} ({r['animal_track_seconds']} s), stitched "
        f"{r['stitched']}"
    )


def _score(recordings: list[Recording], names: list[str]) -> dict:
    """Print each recording's line, the pooled figures and the targets' verdicts; exit with
    status 1 when a target is missed."""
    from benchmarks.bench_demo import verdicts

    for name, rec in zip(names, recordings, strict=True):
        print(f"{name} ({rec.code}, seed {rec.seed}): {_line(rec.live)}")
    f = pooled(recordings)
    width = max(map(len, f))
    for k, v in f.items():
        print(f"{k:<{width}}  {_shown(v)}")
    missed = 0
    for what, value, ok, target in verdicts(f):
        print(f"{what}: {value} ({'meets' if ok else 'MISSES'} {target})")
        missed += not ok
    if missed:
        raise SystemExit(1)
    return f


def _json_object(text: str) -> dict:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not JSON ({exc}): {text!r}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object of field changes: {text!r}")
    return value


def main(argv: list[str] | None = None) -> dict:
    """Record, replay, or (with no command, as ``python -m benchmarks`` runs it) record a
    short run and replay it unchanged; print the figures; return them."""
    from benchmarks.bench_demo import add_sim_options, sim_settings

    p = argparse.ArgumentParser(prog="bench_replay", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command")
    rec_p = sub.add_parser("record", help="run the chain live and write a recording")
    add_sim_options(rec_p)
    rec_p.add_argument("--out", required=True, help="the recording file to write")
    trip = sub.add_parser("roundtrip", help="record to a temporary file, replay it unchanged")
    add_sim_options(trip)
    rep = sub.add_parser("replay", help="replay a recording through the sector's core")
    rep.add_argument("file", help="a recording made by `record`")
    rep.add_argument("--tracker", type=_json_object, default=None, help="TrackerConfig changes")
    rep.add_argument("--rules", type=_json_object, default=None, help="AlertRules changes")
    rep.add_argument("--verbose", action="store_true", help="list alerts and group tracks")
    rep.add_argument("--by-range", action="store_true", help="animal seconds by range bin")
    score = sub.add_parser(
        "score",
        help="pool recordings' live figures (a day's halves) and check the targets; "
        "exit status 1 when one is missed",
    )
    score.add_argument("files", nargs="+", help="recordings made by `record`")
    argv = sys.argv[1:] if argv is None else argv
    args = p.parse_args(argv or ["roundtrip"])

    if args.command == "record":
        live = record(args.out, hours=args.hours, seed=args.seed, sim=sim_settings(args))
        for k in (*FIGURES, "wall_s"):
            print(f"{k:<{max(map(len, FIGURES))}}  {_shown(live[k])}")
        print(f"recorded {args.hours} h, seed {args.seed}, to {args.out}")
        return live
    if args.command == "roundtrip":
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "run.vrec"
            live = record(path, hours=args.hours, seed=args.seed, sim=sim_settings(args))
            rec = load(path)
            again = replay(rec)
        _show(live, again)
        print(f"live:   {_line(live)}")
        print(f"replay: {_line(again)}")
        print(f"replay took {again['wall_s'] / live['wall_s']:.3f} of the live run's wall time")
        diff = differences(live, again)
        if diff:
            raise RuntimeError(f"an unchanged replay differs from the live run in {diff}")
        return again

    if args.command == "score":
        return _score([load(f) for f in args.files], args.files)

    rec = load(args.file)
    started = datetime.fromtimestamp(rec.sim.start_time, UTC).isoformat(timespec="seconds")
    print(
        f"{args.file}: seed {rec.seed}, {rec.duration_s / 3600:g} h from {started}, "
        f"{len(rec.stream)} messages, recorded {rec.made_utc} by {rec.code}"
    )
    print(f"tracker changes {args.tracker or {}}, rules changes {args.rules or {}}")
    out = replay(rec, args.tracker, args.rules, verbose=args.verbose, by_range=args.by_range)
    _show(rec.live, out)
    for b, row in out.get("animal_seconds_by_range", {}).items():
        print(f"animal seconds at {b}-{b + RANGE_BIN_M:.0f} m: {row}")
    print(f"replay: {_line(out)}")
    return out


if __name__ == "__main__":
    try:
        main()
    except (RecordingError, ValueError) as exc:  # a bad file or change: the reason, no trace
        raise SystemExit(f"bench_replay: {exc}") from None
