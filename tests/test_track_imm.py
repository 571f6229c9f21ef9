"""The interacting multiple model (vigil.tracks.imm): one filter when both models are the
same, the manoeuvring model taking over at a turn and the quiet one on a steady heading, a
smaller lag than the quiet filter alone after a turn, its state kept through snapshots and
deletions, its settings checked, and ``vigil track`` using it by default."""

from __future__ import annotations

import numpy as np
import pytest

from vigil.tracks.config import TrackerConfig
from vigil.tracks.imm import ImmTracker, make_tracker
from vigil.tracks.tracker import Tracker


def _walk(scan_s: float = 0.4, sigma: float = 0.15, stop_t: float = 16.0, seed: int = 3):
    """One walker at 1.4 m/s east who slows to a stop over 2 s from ``stop_t`` (s) and
    stands, for 24 s; a scan every ``scan_s`` s, detections with ``sigma`` (m) per axis
    (issue 20's real-data protocol); yields (t, z, truth)."""
    rng = np.random.default_rng(seed)
    pos, out = np.zeros(2), []
    for k in range(int(24.0 / scan_s)):
        t = k * scan_s
        out.append((t, pos + rng.normal(0.0, sigma, 2), pos.copy()))
        pos = pos + np.array([1.4 * min(max(stop_t + 2.0 - t, 0.0), 2.0) / 2.0, 0.0]) * scan_s
    return out


def _scene(seed: int, walkers: int = 30, clutter: int = 10, scans: int = 30):
    rng = np.random.default_rng(seed)
    pos = rng.uniform(0.0, 300.0, (walkers, 2))
    vel = rng.normal(0.0, 1.0, (walkers, 2))
    for k in range(scans):
        p = pos + vel * k + rng.normal(0.0, 1.0, (walkers, 2))
        z = np.vstack([p[rng.random(walkers) < 0.9], rng.uniform(0, 300, (clutter, 2))])
        yield float(k), z


def test_two_equal_models_are_the_one_filter() -> None:
    base = TrackerConfig.for_track(process_noise=0.1, imm_process_noise=0.1)
    one = Tracker(base)
    two = make_tracker(base)
    assert isinstance(two, ImmTracker)
    for t, z in _scene(1):
        a = one.update(t, z, sigma=1.0)
        b = two.update(t, z, sigma=1.0)
        assert np.array_equal(a.track_id, b.track_id) and np.array_equal(a.status, b.status)
        np.testing.assert_allclose(b.x, a.x, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(b.P, a.P, rtol=1e-9, atol=1e-9)
    assert len(one.tracks().confirmed()) > 20


def test_the_manoeuvring_model_takes_a_stop_and_the_quiet_one_a_steady_heading() -> None:
    # a manoeuvring model able to stop a walker within 2 s (q = 5 m^2/s^3); vigil track's
    # default (q = 0.3, chosen on the calibration data) is milder: BENCHMARKS.md
    imm = make_tracker(TrackerConfig.for_track(imm_process_noise=5.0, imm_sojourn_s=60.0))
    quiet = Tracker(TrackerConfig.for_track(imm_process_noise=0.0))
    mu, err, counts = [], [], []
    for t, z, truth in _walk():
        imm.update(t, z[None, :], sigma=0.15)
        quiet.update(t, z[None, :], sigma=0.15)
        counts.append((imm.n, quiet.n))
        mu.append(imm.model_probabilities[0, 1])
        err.append(float(np.hypot(*(imm.x[0, :2] - truth))))
    mu = np.array(mu)
    walking, stopping = slice(20, 40), slice(42, 48)  # t 8-16 s, 16.8-19.2 s
    assert mu[walking].max() < 0.05  # on a steady heading: the quiet model
    assert mu[stopping].max() > 0.2  # the stop: the manoeuvring model
    assert all(n == 1 for n, _ in counts)  # one track throughout
    assert max(err[40:]) < 0.5
    # the quiet model alone loses the walker at the stop and starts a second track
    assert max(q for _, q in counts) == 2


def test_snapshot_restore_and_delete_keep_each_tracks_models() -> None:
    tracker = make_tracker(TrackerConfig.for_track())
    scans = list(_scene(2))
    for t, z in scans[:15]:
        tracker.update(t, z, sigma=1.0)
    snap = tracker.snapshot()
    first = [tracker.update(t, z, sigma=1.0) for t, z in scans[15:]]
    mu_first = tracker.model_probabilities
    tracker.restore(snap)
    again = [tracker.update(t, z, sigma=1.0) for t, z in scans[15:]]
    for a, b in zip(first, again, strict=True):
        assert np.array_equal(a.track_id, b.track_id) and np.array_equal(a.x, b.x)
    assert np.array_equal(mu_first, tracker.model_probabilities)
    # deleting a track moves the others' models with them
    tracker.restore(snap)
    ids = tracker.ids.copy()
    mu, xm = tracker.model_probabilities, tracker._xm[: tracker.n].copy()
    assert tracker.delete(ids[::2]) == len(ids[::2])
    np.testing.assert_array_equal(tracker.model_probabilities, mu[1::2])
    np.testing.assert_array_equal(tracker._xm[: tracker.n], xm[1::2])


def test_growing_keeps_the_models() -> None:
    tracker = make_tracker(TrackerConfig.for_track())
    rng = np.random.default_rng(0)
    tracker.update(0.0, rng.uniform(0, 1000, (200, 2)), sigma=1.0)
    xm = tracker._xm[:200].copy()
    tracker.update(1.0, rng.uniform(2000, 3000, (300, 2)), sigma=1.0)  # past 256 slots
    assert tracker.cap >= 500
    # the first batch's tracks (all missed) keep their predicted models, in slot order
    np.testing.assert_allclose(tracker._xm[:200, :, :2], xm[:, :, :2])


@pytest.mark.parametrize(
    ("key", "value"),
    [("imm_process_noise", -1.0), ("imm_sojourn_s", 0.0), ("imm_manoeuvre_s", -2.0)],
)
def test_bad_imm_settings_are_refused_naming_the_key(key: str, value: float) -> None:
    with pytest.raises(ValueError, match=key):
        TrackerConfig.for_track(**{key: value})


def test_one_model_without_imm_noise() -> None:
    assert type(make_tracker(TrackerConfig())) is Tracker
    assert type(make_tracker(TrackerConfig.for_sector())) is Tracker
    with pytest.raises(ValueError, match="imm_process_noise"):
        ImmTracker(TrackerConfig())


def test_the_sector_fusion_runs_an_imm_when_its_settings_ask() -> None:
    # a deployment's [tracker] imm_process_noise reaches FusionTracker too; late messages
    # replay from snapshots that carry the models (default sector: one filter, unchanged)
    from tracks_scenarios import FRAME, camera_detection, walk

    from vigil.tracks.fusion import FusionTracker

    config = TrackerConfig.for_sector(imm_process_noise=0.3)
    assert isinstance(FusionTracker(FRAME, config).tracker, ImmTracker)
    assert type(FusionTracker(FRAME).tracker) is Tracker
    rng = np.random.default_rng(7)
    msgs = []
    for start, vel, cam in [((0, 0), (1.2, 0.2), "c1"), ((300, 50), (-1.0, 0.5), "c2")]:
        msgs += [camera_detection(cam, t, x, y) for t, x, y in walk(rng, start, vel, 30)]
    msgs.sort(key=lambda m: m.time)
    a = FusionTracker(FRAME, config)
    a.ingest_many(msgs)
    late = list(msgs)
    for i in range(0, len(late) - 8, 5):  # every fifth message 3 s late (lag 5 s)
        late.insert(i + 7, late.pop(i))
    b = FusionTracker(FRAME, config)
    b.ingest_many(late)
    assert b._replay.replayed > 0 and b.dropped_late == 0
    assert a.track_messages() == b.track_messages()
    assert len(a.track_messages()) == 2


def test_polar_rows_collapse_the_models_and_flags_broadcast() -> None:
    # a track updated by a tower's polar row (the tracker's EKF) has both models at the
    # tracker's state afterwards, the rest keep two models; position_only as one flag or one
    # per detection gives the same bits (imm_after takes either)
    from test_track_polar import _simulate

    from vigil.tracks.polar import PolarBatch, to_position

    truth, batches = _simulate(11, scans=25, k=12)
    cfg = TrackerConfig.for_track(max_position_sigma_m=1000.0, imm_process_noise=0.3)
    tr, one, many = ImmTracker(cfg), ImmTracker(cfg), ImmTracker(cfg)
    rng = np.random.default_rng(11)
    collapsed = kept = polar_hits = position_hits = 0
    for s, b in enumerate(batches):
        z, R = to_position(b)
        valid = rng.random(len(b)) < 0.5  # half the rows polar, half by position
        pb = PolarBatch(valid, b.sensor, b.meas, b.sigma, b.mode)
        tr.update(float(s), z, R, polar=pb)
        hit = (tr.last_det_track_id >= 0) & ~tr.last_det_new
        slots = tr.slots_of(tr.last_det_track_id[hit])
        for slot, polar_row in zip(slots, valid[hit], strict=True):
            same = [np.array_equal(tr._xm[slot, m], tr.x[slot]) for m in range(2)]
            polar_hits += polar_row
            position_hits += not polar_row
            collapsed += polar_row and all(same)
            kept += (not polar_row) and not any(same)
        one.update(float(s), z, R, position_only=True)
        many.update(float(s), z, R, position_only=np.ones(len(z), dtype=np.bool_))
    assert collapsed == polar_hits > 50
    assert kept > 0.9 * position_hits > 50
    for a in ("_xm", "_Pm", "_mu", "_x", "_P"):
        assert getattr(one, a)[: one.n].tobytes() == getattr(many, a)[: many.n].tobytes()


def _same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


@pytest.mark.parametrize("sigma", ["per detection", "one for all", "default"])
def test_the_one_call_batch_is_the_general_path_bit_for_bit(sigma: str) -> None:
    # ImmTracker.update's usual case runs as one kernel (imm_batch); a call with any other
    # option (here can_initiate as a numpy bool) takes the general path. Both must leave
    # the same tracker, bit for bit, batch after batch: tables, every slot array, the
    # models, the clutter estimate, the ids per detection; with pair buffers too small to
    # start with (the kernel grows them) and tentative tracks dying and confirming.
    cfg = TrackerConfig.for_track()

    class SmallPairs(ImmTracker):
        """Pair buffers of 4 to start with, so that the kernel must grow them."""

        def __init__(self, config: TrackerConfig) -> None:
            super().__init__(config)
            self._pairs = 4
            self._pair_track = np.empty(4, dtype=np.int64)
            self._pair_det = np.empty(4, dtype=np.int64)
            self._pair_cost = np.empty(4)

        def pair_capacity(self) -> int:
            return self._pairs

    fast, general = SmallPairs(cfg), ImmTracker(cfg)
    rng = np.random.default_rng(5)
    calls = 0
    for t, z in _scene(4, walkers=40, clutter=15, scans=25):
        s = {
            "per detection": rng.uniform(0.5, 2.0, len(z)),
            "one for all": 1.5,
            "default": None,
        }[sigma]
        a = fast.update(t, z, sigma=s)
        b = general.update(t, z, sigma=s, can_initiate=np.True_)
        calls += 1
        for f in ("track_id", "status", "x", "P", "t_hit", "n_updates", "class_probs"):
            assert _same_bits(getattr(a, f), getattr(b, f)), f
        assert _same_bits(fast.last_det_track_id, general.last_det_track_id)
        assert _same_bits(fast.last_det_new, general.last_det_new)
        assert (fast.n, fast.next_id, fast.time, fast.last_clusters) == (
            general.n,
            general.next_id,
            general.time,
            general.last_clusters,
        )
        # every slot array of both filters, the models and the clutter estimate
        sa, sb = fast.snapshot(), general.snapshot()
        assert (sa.n, sa.next_id, sa.time) == (sb.n, sb.next_id, sb.time)
        assert len(sa.arrays) == len(sb.arrays)
        for i, (x, y) in enumerate(zip(sa.arrays, sb.arrays, strict=True)):
            assert _same_bits(x, y), i
    assert fast.pair_capacity() > 4 and calls == 25
    assert len(fast.tracks().confirmed()) > 25


def test_the_one_call_batch_leaves_bad_batches_to_the_general_checks() -> None:
    # a batch the kernel refuses (a position not finite, a sigma not above 0) changes
    # nothing there and is refused by the general path's checks, naming the value
    from vigil.tracks.measurement import BatchError

    tracker = make_tracker(TrackerConfig.for_track())
    tracker.update(0.0, np.array([[1.0, 2.0], [50.0, 60.0]]), sigma=1.0)
    with pytest.raises(BatchError, match=r"z\[1\]"):
        tracker.update(1.0, np.array([[1.0, 2.0], [np.nan, 60.0]]), sigma=1.0)
    with pytest.raises(BatchError, match=r"sigma\[0\]"):
        tracker.update(1.0, np.array([[1.0, 2.0]]), sigma=np.array([0.0]))
    with pytest.raises(BatchError, match="before the previous batch"):
        tracker.update(-1.0, np.array([[1.0, 2.0]]), sigma=1.0)
    table = tracker.update(2.0, np.empty((0, 2)), sigma=1.0)  # an empty batch: general path
    assert tracker.time == 2.0 and len(table) == tracker.n
