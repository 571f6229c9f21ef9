"""The tracker's settings: :class:`TrackerSettings` (the deployment file's ``[tracker]``)
and :class:`TrackerConfig` (those joined with the class model of ``[classes]``).

Units: metres, seconds, metres per second. Bounds are checked when the struct is built with
:func:`msgspec.convert` (as the deployment loader does) and by :meth:`TrackerConfig.check`
when built in code.
"""

from __future__ import annotations

from typing import Annotated

import msgspec
from msgspec import Meta

from vigil.ingest.validation import explain

#: The classes a track can be; the column order of every class-probability array.
CLASSES: tuple[str, str, str] = ("person", "vehicle", "animal")

#: One row of a camera confusion table: guess, confidence from, confidence to (exclusive),
#: range from, range to (metres, exclusive), and the probability of that guess in that
#: confidence band at that range under person, vehicle, animal.
ClassRow = tuple[str, float, float, float, float, float, float, float]
#: One row of a track-speed class table: speed from, speed to (m/s, exclusive), and the
#: probability of a track's speed in that band under person, vehicle, animal.
SpeedRow = tuple[float, float, float, float, float]


class TrackerSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """How tracks are filtered, gated, associated, confirmed, coasted and deleted: the
    deployment file's ``[tracker]`` table.

    The class tables and the prior are not here: they are the ``[classes]`` table's (a
    calibration file and the prior), and :class:`TrackerConfig` joins the two. The defaults
    are the array-level tracker's (the Stone Soup benchmark runs them); a sector of towers
    coasts longer and keeps lost ids (the shipped ``tucson.toml`` says how much, and
    ``vigil config show`` prints every value in force).

    Attributes
    ----------
    process_noise
        Nearly-constant-velocity acceleration noise spectral density, m^2/s^3 per axis.
    initial_speed_sigma_mps
        Standard deviation of each velocity component of a new track, m/s.
    detection_probability
        Probability that a sensor in view reports a target (Pd), used in association costs.
    clutter_density_per_m2
        Spatial density of false and new-target detections (lambda), per m^2 per batch.
    gate_probability
        Chi-square (2 dof) gate probability; the gate is ``d^2 <= -2 ln(1 - p)``.
    confirm_m, confirm_n
        A tentative track is confirmed with ``m`` hits in its last ``n`` batches in view,
        and deleted when its first ``n`` batches cannot give ``m`` hits.
    tentative_max_gap_s
        A tentative track not updated for this long is deleted, seconds.
    max_coast_s
        A confirmed track not updated for this long is deleted, seconds; until then it
        coasts on its prediction and keeps its id.
    stitch_s, stitch_speed_mps
        A confirmed track deleted after coasting is kept aside until ``stitch_s`` seconds
        after its last detection: a new track confirmed near the lost one's way (the path
        from where it was lost to where 1.2 times its velocity takes it in the gap, as it
        may have stopped, by the filter's last velocity or by its mean velocity over its
        last five minutes; off that path by three standard deviations of both positions,
        ``group_radius_m`` and ``stitch_speed_mps`` times the gap of sideways wander; of
        several, the one whose way gives the new track the highest density, spread along
        the way and normal across it), started after the lost one's last hit, takes
        back its id and its class evidence; ``ended`` is published only when the time runs
        out unclaimed. 0 turns it off. Towers lose a group for minutes when it rests and
        is learnt into the background, in a dip, or between two footprints; without this
        each gap is a new id (an ID switch, and maybe a second alert for one group).
    reacquire_s
        After ``ended`` has been published, a lost track may still be continued by a new
        track until this long after its last detection (same test as above): the id comes
        back (a group that walked out of every camera's view for ten minutes and into
        another's is still the same group), though consumers saw it end. Its class
        evidence does not: after so long, which body took the id up is less sure, and an
        animal's new track that took a group's id would read as a person. At most
        ``stitch_s`` is used when smaller.
    max_position_sigma_m
        A track whose larger position standard deviation exceeds this is deleted, metres.
    default_sigma_m
        Measurement standard deviation per axis when a detection brings none, metres.
    out_of_sequence_lag_s
        How far behind the newest batch a batch may arrive and still be applied in time
        order (the tracker replays from a snapshot), seconds.
    class_floor
        Mixing toward uniform of the class probabilities, so that no class is ever ruled out.
    class_memory_s
        Time constant with which a track's class evidence fades, seconds (0: never): a track
        that has taken over another body's detections recovers.
    class_max_evidence
        At most this many class guesses' worth of evidence decides a track's class (0: no
        cap). Beyond it the mean log-likelihood counts, not the sum: successive frames of
        one body in one pose are far from independent, and a run of them must not outvote
        the rest of the track's history.
    ugs_can_initiate
        Whether ground-sensor events start tentative tracks.
    camera_angular_sigma_rad, camera_sigma_floor_m
        Camera ground error used when a detection's covariance is degenerate:
        ``sigma = floor + range * angular``, metres.
    uas_footprint_error_fraction
        Aircraft detections get their covariance inflated by this fraction of the camera
        footprint's span (pointing and altitude error), as a standard deviation.
    group_radius_m
        Camera and aircraft detections of one batch that could be parts of one group (their
        difference within the 99 % gate of ``R_i + R_j + group_radius^2 I``) are merged into
        one measurement of the group, metres; 0 turns merging off. A group of walkers is one
        target to follow and to alert on, and at tower ranges its members' ground positions
        scatter by tens of metres along the line of sight.
    camera_class_weight
        Exponent on each tower-camera class likelihood (0-1): successive frames of one blob
        are far from independent evidence.
    speed_class_weight
        Exponent on each update's speed likelihood (0-1): a filtered velocity changes
        slowly, so successive updates are far from independent evidence.
    speed_sigma_max_mps
        Speed evidence is taken only from tracks whose velocity standard deviation (the
        root mean of the two axes' variances) is at most this, m/s.
    track_score
        Manage tracks by evidence rather than by scan counts: each track keeps the
        log-likelihood ratio of "a target" against "clutter" (a detection adds
        ``ln Pd + ln N(z; Hx, S) - ln lambda``, a miss in view ``ln(1 - Pd)``), is confirmed
        when it reaches ``confirm_llr`` and deleted when it falls ``delete_llr`` below its
        peak (``confirm_m``/``confirm_n`` are then unused; ``tentative_max_gap_s``,
        ``max_coast_s`` and ``max_position_sigma_m`` still cap it in seconds and metres).
        ``lambda`` is the density of detections no established track takes, per m^2 of the
        scene (the box around every detection so far), with fading memory
        ``clutter_memory_s``, and at least ``clutter_density_per_m2``; association costs use
        it too. The evidence is the same whatever the scan interval or the sensor's sigma:
        a wide prediction gathers little from a detection, a sharp one much.
    confirm_llr, delete_llr
        Thresholds of ``track_score``, natural log units: ``ln 100`` (4.6) confirms a
        track once it is a hundred times likelier a target than clutter; ``ln 1000`` (6.9)
        below its peak (three misses in a row at Pd 0.9) ends one.
    clutter_memory_s
        Time constant of the clutter density estimate of ``track_score``, seconds.
    report_coast_sigma_ratio
        ``vigil track`` writes a coasting track (no detection in the batch) only while its
        larger position standard deviation is at most this many times the batch's median
        detection sigma (its gate: beyond it the prediction is a guess, not a position); 0
        writes every coasting track. Its ``status`` column says ``coasting``. With
        ``track_score`` a confirmed track is not ended by evidence while it is within this
        gate either (at fast scan rates a few misses in a row leave it sure of its place).
    imm_process_noise
        With a value above 0, each track is an interacting multiple model (IMM) of two
        nearly-constant-velocity filters: one with ``process_noise`` (walking on a steady
        heading) and one with this acceleration noise density, m^2/s^3 per axis (turning,
        stopping, starting); each detection weighs the two by how well each predicted it,
        and gating and reports use their mixture. 0: one filter with ``process_noise``.
    imm_sojourn_s, imm_manoeuvre_s
        The IMM's mean time in the quiet model before a manoeuvre, and in the manoeuvring
        model before it settles, seconds (switching is a two-state Markov chain in
        continuous time, so any scan interval gives the same motion; a new track starts
        with the chain's long-run shares).
    walk_max_mps, vehicle_min_mps
        Track speeds, m/s: a track whose speed is well known (velocity sigma under 1 m/s)
        and at most ``walk_max_mps`` is unlikely a vehicle on the move, and one at
        ``vehicle_min_mps`` or more is unlikely a person or an animal. The published class
        probabilities weigh this in.
    """

    process_noise: Annotated[float, Meta(gt=0.0, le=1e4)] = 0.1
    initial_speed_sigma_mps: Annotated[float, Meta(gt=0.0, le=100.0)] = 5.0
    detection_probability: Annotated[float, Meta(gt=0.0, lt=1.0)] = 0.9
    clutter_density_per_m2: Annotated[float, Meta(gt=0.0, le=1.0)] = 1e-6
    gate_probability: Annotated[float, Meta(gt=0.5, lt=1.0)] = 0.999
    confirm_m: Annotated[int, Meta(ge=1, le=31)] = 3
    confirm_n: Annotated[int, Meta(ge=1, le=31)] = 4
    tentative_max_gap_s: Annotated[float, Meta(gt=0.0, le=600.0)] = 2.5
    max_coast_s: Annotated[float, Meta(gt=0.0, le=3600.0)] = 5.0
    stitch_s: Annotated[float, Meta(ge=0.0, le=3600.0)] = 0.0
    stitch_speed_mps: Annotated[float, Meta(gt=0.0, le=100.0)] = 0.3
    reacquire_s: Annotated[float, Meta(ge=0.0, le=7200.0)] = 0.0
    max_position_sigma_m: Annotated[float, Meta(gt=0.0, le=1e5)] = 200.0
    default_sigma_m: Annotated[float, Meta(gt=0.0, le=1e4)] = 5.0
    out_of_sequence_lag_s: Annotated[float, Meta(ge=0.0, le=600.0)] = 5.0
    class_floor: Annotated[float, Meta(ge=0.0, lt=0.5)] = 0.01
    class_memory_s: Annotated[float, Meta(ge=0.0, le=1e6)] = 0.0
    class_max_evidence: Annotated[float, Meta(ge=0.0, le=1e6)] = 0.0
    ugs_can_initiate: bool = False
    camera_angular_sigma_rad: Annotated[float, Meta(ge=0.0, le=1.0)] = 0.002
    camera_sigma_floor_m: Annotated[float, Meta(ge=0.0, le=1e3)] = 1.0
    uas_footprint_error_fraction: Annotated[float, Meta(ge=0.0, le=1.0)] = 0.02
    group_radius_m: Annotated[float, Meta(ge=0.0, le=1000.0)] = 15.0
    camera_class_weight: Annotated[float, Meta(ge=0.0, le=1.0)] = 0.5
    speed_class_weight: Annotated[float, Meta(ge=0.0, le=1.0)] = 0.3
    speed_sigma_max_mps: Annotated[float, Meta(gt=0.0, le=100.0)] = 1.0
    walk_max_mps: Annotated[float, Meta(gt=0.0, le=100.0)] = 3.0
    vehicle_min_mps: Annotated[float, Meta(gt=0.0, le=100.0)] = 6.0
    track_score: bool = False
    confirm_llr: Annotated[float, Meta(gt=0.0, le=100.0)] = 4.6
    delete_llr: Annotated[float, Meta(gt=0.0, le=100.0)] = 6.9
    clutter_memory_s: Annotated[float, Meta(gt=0.0, le=1e6)] = 60.0
    report_coast_sigma_ratio: Annotated[float, Meta(ge=0.0, le=1e3)] = 0.0
    imm_process_noise: Annotated[float, Meta(ge=0.0, le=1e4)] = 0.0
    imm_sojourn_s: Annotated[float, Meta(gt=0.0, le=1e6)] = 10.0
    imm_manoeuvre_s: Annotated[float, Meta(gt=0.0, le=1e6)] = 10.0


#: The tracker's settings on relief, over the sector's (``TrackerConfig.for_sector(**...)``).
#: A foot pixel whose ray grazes a slope or lands near a crest is hundreds of metres, at times
#: kilometres, unsure along its sight line (``vigil.geo.pointing``'s quadrature covariance, which
#: says so honestly). The sector's cap on a track's position sigma (200 m) deleted the track
#: such a detection starts before its second detection, so a person seen only on such
#: ground was never tracked: on ``bench_pointing_track``'s tuning seeds (1, 2, 5) 9 of t02's
#: 240 people, 8 of t04's 195 and 9 of t06's 198 had no confirmed track for that alone; with
#: the cap at 10 km none, with no person given a wrong side. 5 km (twice the towers' rated
#: range) keeps a bound on a track that has lost its way.
RELIEF_TRACKER_CHANGES: dict[str, float] = {"max_position_sigma_m": 5000.0}


#: ``vigil track``'s defaults over :class:`TrackerSettings`'s (a ``--config`` file and flags
#: override them): management by evidence (``track_score``), in seconds and in the
#: detections' own sigma, so that one set suits scans from 0.1 s to 5 s; a new track's
#: velocity sigma of 1.5 m/s per axis (people on foot: walking at 1.3-1.5 m/s in any
#: direction, some faster); a 99.9 % gate; coasting tracks written only while their position
#: sigma is at most twice the detections'; and motion by an interacting multiple model
#: (:mod:`vigil.tracks.imm`): a quiet model (q = 0.005 m^2/s^3, walking on a steady heading,
#: left on average after 600 s) and a manoeuvring one (q = 0.3: turning, stopping,
#: starting; left after 2 s). Chosen on one real recording (``crowds_zara03_train``,
#: issue 20's protocol) and the grouped scenario's calibration seeds 200-205, evaluated on
#: two other recordings and seeds 100-109: BENCHMARKS.md.
TRACK_DEFAULTS: dict[str, object] = {
    "track_score": True,
    "initial_speed_sigma_mps": 1.5,
    "gate_probability": 0.999,
    "report_coast_sigma_ratio": 2.0,
    "process_noise": 0.005,
    "imm_process_noise": 0.3,
    "imm_sojourn_s": 600.0,
    "imm_manoeuvre_s": 2.0,
}


class TrackerConfig(TrackerSettings, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Everything the tracker runs on: its :class:`TrackerSettings` and the class model.

    Attributes
    ----------
    class_prior
        How common each class (person, vehicle, animal) is among new tracks before any
        guess is read: a sector's base rates. Weak guesses leave a track near its prior.
    camera_class_model
        Rows ``(guess, confidence_from, confidence_to, range_from, range_to, P(person),
        P(vehicle), P(animal))``: how likely a tower camera's class guess with a confidence
        in ``[from, to)`` at a range in ``[range_from, range_to)`` metres is under each true
        class (a confusion table, calibrated against labelled detections with
        :func:`vigil.tracks.calibration.calibrate_class_model`: a person two pixels tall looks like
        anything). Guesses no row covers fall back to "right with probability c", as do
        aircraft and ground sensors.
    speed_class_model
        Rows ``(speed_from, speed_to, P(person), P(vehicle), P(animal))``: how likely a
        track's speed in ``[from, to)`` m/s is under each true class (calibrated with
        :func:`vigil.tracks.calibration.calibrate_speed_model` against tracks labelled with the
        class they follow). Each camera or aircraft update of a track whose velocity standard
        deviation is at most ``speed_sigma_max_mps`` adds its row's likelihood, raised to
        ``speed_class_weight``, to the track's class evidence: how a body moves over minutes
        tells a grazing cow from a walking group where a blob two pixels tall cannot. Empty:
        no speed evidence.
    """

    class_prior: tuple[
        Annotated[float, Meta(gt=0.0, le=1.0)],
        Annotated[float, Meta(gt=0.0, le=1.0)],
        Annotated[float, Meta(gt=0.0, le=1.0)],
    ] = (1 / 3, 1 / 3, 1 / 3)
    camera_class_model: tuple[ClassRow, ...] = ()
    speed_class_model: tuple[SpeedRow, ...] = ()

    @classmethod
    def for_sector(cls, **changes) -> TrackerConfig:
        """Settings for the simulated sector: the in-code chain of tests, the demo's pipeline
        and benchmarks. A deployment's tracker comes from its file instead
        (:meth:`vigil.config.Deployment.tracker_config`; the shipped ``tucson.toml`` gives
        these same values).

        Towers report at 1-2 frames a second and see a group at their range limit only now
        and then, so tracks coast for 30 s and a new track may wait 5 s between its first
        detections. A lost track's id is kept for a new track that continues it for 5
        minutes, and given back for 30: groups rest for up to 15 minutes and walk out of
        the towers' views north of the line for as long (on a simulated day, three groups
        found again 937-1129 s after their last detection took new ids under a 15-minute
        limit). Tower class guesses and track speeds are read through the simulator's
        calibration file, ``vigil/data/calibration/sim_towers.toml``
        (:func:`vigil.tracks.calibration.sim_class_model`): tables fitted to the simulator's
        renderer and detector, right for them only.
        Class evidence fades over 10 minutes and at most 30 guesses' worth of it counts
        (frames of one body are far from independent); before any guess a new track is an
        animal three times out of five: most of what the simulated towers see at night is
        animals.
        (The plain defaults stay those of the array-level tracker, which the Stone Soup
        benchmark runs.)
        """
        from vigil.tracks.calibration import sim_class_model

        model = sim_class_model()
        base = {
            "max_coast_s": 30.0,
            "stitch_s": 300.0,
            "reacquire_s": 1800.0,
            "tentative_max_gap_s": 5.0,
            "camera_class_model": model.camera,
            "speed_class_model": model.speed,
            "class_prior": (0.2, 0.2, 0.6),
            "class_memory_s": 600.0,
            "class_max_evidence": 30.0,
        }
        return cls(**{**base, **changes}).check()

    @classmethod
    def for_track(cls, **changes) -> TrackerConfig:
        """``vigil track``'s defaults (:data:`TRACK_DEFAULTS`) with ``changes`` over them."""
        return cls(**{**TRACK_DEFAULTS, **changes}).check()  # type: ignore[arg-type]

    @classmethod
    def from_parts(
        cls,
        settings: TrackerSettings,
        prior: tuple[float, float, float],
        camera_class_model: tuple[ClassRow, ...] = (),
        speed_class_model: tuple[SpeedRow, ...] = (),
    ) -> TrackerConfig:
        """The tracker's settings joined with a class model (a prior and calibrated tables),
        checked; raises ``ValueError``."""
        fields = {name: getattr(settings, name) for name in TrackerSettings.__struct_fields__}
        return cls(
            **fields,
            class_prior=prior,
            camera_class_model=tuple(camera_class_model),
            speed_class_model=tuple(speed_class_model),
        ).check()

    def check(self) -> TrackerConfig:
        """Validate bounds and cross-field rules; return self or raise ``ValueError``."""
        plain = msgspec.to_builtins(self)
        try:
            checked = msgspec.convert(plain, type(self))
        except msgspec.ValidationError as exc:
            problem = explain(exc, plain)
            raise ValueError(
                f"tracker config: {problem.key} = {problem.value!r}: {problem.message}"
            ) from None
        if checked.confirm_m > checked.confirm_n:
            raise ValueError(
                f"tracker config: confirm_m = {self.confirm_m} > confirm_n = {self.confirm_n}; "
                "expected m <= n (m hits out of n batches)"
            )
        if checked.walk_max_mps >= checked.vehicle_min_mps:
            raise ValueError(
                f"tracker config: walk_max_mps = {self.walk_max_mps} >= vehicle_min_mps = "
                f"{self.vehicle_min_mps}; expected walking speeds below vehicle speeds"
            )
        for i, row in enumerate(checked.camera_class_model):
            if (problem := class_row_problem(row)) is not None:
                raise ValueError(f"tracker config: camera_class_model[{i}] = {row!r}; {problem}")
        for i in range(len(checked.speed_class_model)):
            if (problem := speed_row_problem(checked.speed_class_model, i)) is not None:
                row = checked.speed_class_model[i]
                raise ValueError(f"tracker config: speed_class_model[{i}] = {row!r}; {problem}")
        return self


def class_row_problem(row: ClassRow) -> str | None:
    """What is wrong with one row of a camera confusion table (``None``: nothing)."""
    guess, lo, hi, r_lo, r_hi, *probs = row
    if (
        guess not in (*CLASSES, "unknown")
        or not 0.0 <= lo < hi
        or not 0.0 <= r_lo < r_hi
        or not _probabilities(probs)
    ):
        return (
            "expected (guess, confidence_from < confidence_to, range_from < range_to, three "
            "probabilities in [0, 1], not all 0) "
            f"with guess one of {(*CLASSES, 'unknown')}"
        )
    return None


def speed_row_problem(rows: tuple[SpeedRow, ...], i: int) -> str | None:
    """What is wrong with row ``i`` of a track-speed table (``None``: nothing)."""
    lo, hi, *probs = rows[i]
    overlaps = i > 0 and lo < rows[i - 1][1]
    if not 0.0 <= lo < hi or overlaps or not _probabilities(probs):
        return (
            "expected (speed_from < speed_to in m/s, in increasing order without overlap, "
            "three probabilities in [0, 1], not all 0)"
        )
    return None


def _probabilities(probs: list[float]) -> bool:
    """Whether a table row's class probabilities are each in [0, 1] and not all 0."""
    return all(0.0 <= p <= 1.0 for p in probs) and any(p > 0.0 for p in probs)
