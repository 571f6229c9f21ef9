"""One id per body: lost tracks taken back (stitching, reacquisition), a group's
detections merged into one measurement and its duplicate tracks into one track."""

from __future__ import annotations

import numpy as np
from tracks_scenarios import FRAME, camera_detection, walk

from vigil.ingest.schema import Track
from vigil.tracks.config import TrackerConfig
from vigil.tracks.fusion import FusionTracker
from vigil.tracks.groups import group_clusters, merge_duplicates, merge_group
from vigil.tracks.tracker import Tracker


def _run_with_gap(
    config: TrackerConfig,
    gap_s: float,
    guess_before: tuple[str, float] = ("person", 0.5),
    guess_after: tuple[str, float] = ("person", 0.5),
) -> tuple[list[str], list[Track]]:
    """A walker seen for 60 s, unseen for ``gap_s`` (longer than the coast), seen for 60 s
    more where he has walked to, with a class guess and confidence for each stretch;
    returns the confirmed ids in each stretch and every message published once a second."""
    rng = np.random.default_rng(5)
    fusion = FusionTracker(FRAME, config)
    ids: list[set[str]] = [set(), set()]
    out: list[Track] = []
    t_next = 0.0
    for t, x, y in walk(rng, (0.0, 0.0), (0.0, 1.2), 120.0 + gap_s):
        # another walker 5 km off keeps the clock going while ours is unseen
        fusion.ingest(camera_detection("c2", t, 5000.0, 5000.0 + 1.2 * t, "person", 0.5))
        if 60.0 <= t < 60.0 + gap_s:
            continue
        fusion.ingest(camera_detection("c1", t, x, y, *(guess_before if t < 60.0 else guess_after)))
        while t >= t_next:
            fusion.flush()
            msgs = fusion.track_messages()
            out += msgs
            for m in msgs:
                if m.state != "ended" and m.lat < 31.36:  # ours, not the far walker
                    ids[t >= 60.0].add(m.track_id)
            t_next += 1.0
    return [sorted(s) for s in ids], out


def test_a_walker_lost_for_two_minutes_keeps_his_id() -> None:
    config = TrackerConfig.for_sector()
    assert config.stitch_s >= 150.0 and config.max_coast_s < 150.0
    (before, after), msgs = _run_with_gap(config, 150.0)
    assert len(before) == 1 and after == before
    # while the walker was lost nothing said his track had ended
    assert not [m for m in msgs if m.state == "ended" and m.track_id in before]
    # without stitching the same walker comes back under a new id, after an "ended"
    (before, after), msgs = _run_with_gap(TrackerConfig.for_sector(stitch_s=0.0), 150.0)
    assert len(before) == 1 and len(after) == 1 and after != before
    assert [m.track_id for m in msgs if m.state == "ended" and m.track_id in before] == before


def test_a_lost_track_ends_when_no_one_claims_it() -> None:
    config = TrackerConfig.for_sector(stitch_s=60.0)
    fusion = FusionTracker(FRAME, config)
    rng = np.random.default_rng(6)
    ended_at = None
    for t, x, y in walk(rng, (0.0, 0.0), (0.0, 1.2), 30.0):
        fusion.ingest(camera_detection("c1", t, x, y, "person", 0.5))
    for k in range(30, 200):
        # far away: another walker, not him (his detections keep the clock going)
        fusion.ingest(camera_detection("c1", k, 5000.0, 5000.0 + 1.2 * k, "person", 0.5))
        fusion.flush()
        for m in fusion.track_messages():
            if m.state == "ended" and ended_at is None:
                ended_at = k
    # last seen at 29 s, deleted after the 30 s coast, ended 60 s after he was last seen
    assert ended_at is not None and 29 + 60 <= ended_at <= 29 + 60 + 3
    assert fusion.stitched == 0


def test_a_walker_lost_for_ten_minutes_gets_his_id_back_after_it_ended() -> None:
    config = TrackerConfig.for_sector()
    assert config.stitch_s < 600.0 < config.reacquire_s
    (before, after), msgs = _run_with_gap(config, 600.0)
    assert len(before) == 1 and after == before
    # past the stitch window his track was ended, once; then it came back
    ended = [m for m in msgs if m.state == "ended" and m.track_id in before]
    assert len(ended) == 1
    later = [m for m in msgs if m.track_id in before and m.time > ended[0].time]
    assert later and all(m.state != "ended" for m in later)
    (before, after), _ = _run_with_gap(TrackerConfig.for_sector(reacquire_s=0.0), 600.0)
    assert after != before


def _ids_after_a_turned_velocity(config: TrackerConfig) -> tuple[set[str], set[str]]:
    """A walker heading north at 1.2 m/s, seen for 200 s; in his last 6 s his detections
    slide east at 3 m/s (members of a group seen in turn), turning his filter's velocity,
    before he is lost for 600 s and found again north along his real way: the confirmed
    ids near him before the gap and after it."""
    rng = np.random.default_rng(10)
    fusion = FusionTracker(FRAME, config)
    ids: tuple[set[str], set[str]] = (set(), set())
    for k in range(900):
        fusion.ingest(camera_detection("c2", k, 5000.0, 5000.0 + 1.2 * k))  # keeps the clock
        body = (3.0 * max(k - 194, 0) * (k < 200), 1.2 * k)
        if k < 200 or k >= 800:
            e = rng.normal(0.0, 4.0, 2)
            fusion.ingest(camera_detection("c1", k, body[0] + e[0], body[1] + e[1]))
        fusion.flush()
        for m in fusion.track_messages():
            x, y = FRAME.to_local([m.lat], [m.lon])
            near = np.hypot(x[0] - body[0], y[0] - body[1]) < 50.0
            if near and (k < 200 or k >= 820) and m.state in ("confirmed", "coasting"):
                ids[k >= 800].add(m.track_id)
    return ids


def test_a_lost_track_is_looked_for_along_its_mean_velocity_too() -> None:
    config = TrackerConfig.for_sector()
    before, after = _ids_after_a_turned_velocity(config)
    assert len(before) == 1 and after == before


def _class_after_gap(gap_s: float) -> tuple[str, dict[str, float]]:
    """A walker guessed a person before a gap of ``gap_s`` and not guessed at all after it:
    his track's id and class probabilities at the end."""
    # no speed evidence: the track's own pace would read him as a person whatever it took
    config = TrackerConfig.for_sector(speed_class_model=())
    _, msgs = _run_with_gap(config, gap_s, ("person", 0.9), ("unknown", 0.0))
    last = [m for m in msgs if m.state != "ended" and m.lat < 31.36][-1]
    return last.track_id, last.class_probs


def test_a_stitched_track_keeps_its_class_and_a_reacquired_one_starts_afresh() -> None:
    # Within the stitch window the new track is the lost one, evidence and all; after the
    # lost one has ended, only its id comes back: which body took it up is less sure then
    # (an animal's new track taking a group's id would turn into a person), so the new
    # track's class is its own.
    tid, probs = _class_after_gap(150.0)
    assert tid == "T1" and probs["person"] > 0.9
    tid, probs = _class_after_gap(600.0)
    # the sector's prior (person 0.2), with vehicles ruled down at a walking pace
    assert tid == "T1" and 0.2 <= probs["person"] < 0.3


def test_of_two_lost_tracks_the_one_whose_way_fits_best_takes_back_its_id() -> None:
    # Walker B (seen 120 s, without noise) was lost 1400 s ago heading west along y = 800;
    # walker A was lost 500 s ago heading north along x = 0 and comes back at (40, 830),
    # where his way has veered 40 m east and 30 m from B's way. Relative to their
    # allowances for sideways wander (which grow with the gap) B's way is nearer; but the
    # density under A's short, narrow way is higher than under B's long, wide one: A takes
    # his id back.
    rng = np.random.default_rng(9)
    fusion = FusionTracker(FRAME, TrackerConfig.for_sector())
    seen: dict[str, set[str]] = {"A": set(), "B": set(), "new": set()}
    for k in range(1600):
        fusion.ingest(camera_detection("c2", k, 5000.0, 5000.0 + 1.2 * k))  # keeps the clock
        e = rng.normal(0.0, 4.0, 2)
        body = None
        if k < 120:
            who, body, e = "B", (1200.0 - k, 800.0), 0.0 * e
        elif 900 <= k < 1040 or k >= 1540:
            who, body = ("A" if k < 1040 else "new"), (40.0 * (k >= 1540), 62.0 + 1.2 * (k - 900))
        if body is not None:
            fusion.ingest(camera_detection("c1", k, body[0] + e[0], body[1] + e[1]))
        fusion.flush()
        for m in fusion.track_messages():
            x, y = FRAME.to_local([m.lat], [m.lon])
            near = body is not None and np.hypot(x[0] - body[0], y[0] - body[1]) < 50.0
            if near and m.state in ("confirmed", "coasting"):
                seen[who].add(m.track_id)
    assert len(seen["A"]) == len(seen["B"]) == 1 and seen["A"] != seen["B"]
    assert seen["new"] == seen["A"]


def _two_tracks_converge() -> tuple[set[str], list[tuple[str, str]]]:
    """Two walkers 80 m apart, seen by two cameras, drift onto one path: their tracks are one
    group seen twice and are folded together. Returns the ids left and the merges reported."""
    fusion = FusionTracker(FRAME, TrackerConfig.for_sector())
    merges: list[tuple[str, str]] = []
    for k in range(90):
        gap = 80.0 * max(0.0, 1.0 - max(k - 15, 0) / 30.0)  # together from 45 s on
        fusion.ingest(camera_detection("c1", k, 0.0, 1.2 * k))
        fusion.ingest(camera_detection("c2", k + 0.5, gap, 1.2 * (k + 0.5)))
        fusion.flush()
        merges += fusion.take_merges()
    return {m.track_id for m in fusion.track_messages() if m.state != "ended"}, merges


def _merged_side_by_side(reborn: bool) -> list[tuple[int, int]]:
    """Two walkers 10 m apart heading north at 1.2 m/s, track 1 begun at 0 s and track 2 at
    5 s; ``reborn`` gives track 2 an older id (0) at 5 s, as a new track that took back a
    lost track's id by stitching has. Returns the ``(merged, into)`` pairs of the tracker's
    duplicate merge at 9 s."""
    tracker = Tracker(TrackerConfig(confirm_m=1))
    for t in range(10):
        z = [[0.0, 1.2 * t]] + ([[10.0, 1.2 * t]] if t >= 5 else [])
        tracker.update(float(t), np.array(z), sigma=3.0)
        if t == 5 and reborn:
            tracker.relabel(int(tracker.slots_of([2])[0]), 0)
    assert tracker.n == 2
    return merge_duplicates(tracker, tracker.ids.copy(), 15.0, lambda _: None)


def test_of_two_tracks_on_one_group_the_longer_running_stays() -> None:
    left, merges = _two_tracks_converge()
    assert left == {"T1"} and merges[0] == ("T2", "T1")  # begun first: the older id
    # the one that has followed the group longer stays, whatever the ids: a track reborn
    # under an old id (stitched) gives way to the group's current track
    assert _merged_side_by_side(reborn=False) == [(2, 1)]
    assert _merged_side_by_side(reborn=True) == [(0, 1)]


def _sight_line_covariance(tower, body, along_m: float, across_m: float) -> np.ndarray:
    """A tower detection's covariance: loose along the line of sight, tight across it."""
    u = np.subtract(body, tower) / np.hypot(*np.subtract(body, tower))
    U = np.column_stack([u, [-u[1], u[0]]])
    return U @ np.diag([along_m**2, across_m**2]) @ U.T


def test_a_group_seen_as_two_blobs_is_merged_between_them_not_beyond() -> None:
    # Two bodies 2.4-2.5 km from a tower (t03 of the demo deployment and two of its
    # detections, 110 m apart along its sight lines); each placed to 0.75 m across its
    # sight line and 52-58 m along it. Their information-weighted fusion is where the two
    # thin ellipses agree best: 170 m nearer the tower than the nearer body.
    tower = (5086.0, 1195.0)
    a, b = (5804.0, -1133.0), (5861.0, -1242.0)
    z = np.array([a, b])
    R = np.array(
        [_sight_line_covariance(tower, a, 52.4, 0.75), _sight_line_covariance(tower, b, 57.8, 0.78)]
    )
    lik = np.ones((2, 3))
    labels = group_clusters(z, R, 15.0)
    assert labels.tolist() == [0, 0]  # one group by the gate
    zs, Rs, ls = merge_group(z, R, lik, labels, 15.0)
    assert zs.shape == (1, 2) and ls.tolist() == [[1.0, 1.0, 1.0]]
    # on the segment between the two detections
    ab = np.subtract(b, a)
    f = float((zs[0] - a) @ ab / (ab @ ab))
    assert 0.0 <= f <= 1.0 and np.hypot(*(zs[0] - (a + f * ab))) < 1e-6
    # as loose along the sight line as the members, plus the group's extent across it
    sd = np.sqrt(np.linalg.eigvalsh(Rs[0]))
    assert sd[1] >= 52.0 and sd[0] >= 7.5
    # the old information-weighted centre, for the record
    W = np.linalg.inv(R)
    tri = np.linalg.solve(W.sum(axis=0), np.einsum("kab,kb->a", W, z))
    assert np.hypot(*(tri - np.asarray(a))) > 150.0


def test_a_cow_grazing_south_past_a_group_walking_north_keeps_her_own_track() -> None:
    # 40 m apart as they pass: well inside the merge's position gate, and 1.4 m/s apart,
    # which the velocity gate's (0.5 m/s)^2 floor lets by; their mean velocities over the
    # last minutes say they are two bodies
    rng = np.random.default_rng(3)
    fusion = FusionTracker(FRAME, TrackerConfig.for_sector())
    merges: list[tuple[str, str]] = []
    for k in range(600):
        group = (0.0, -300.0 + 0.9 * k) + rng.normal(0, 4, 2)
        cow = (40.0, 300.0 - 0.5 * (k + 0.5)) + rng.normal(0, 4, 2)
        fusion.ingest(camera_detection("c1", k, *group, "person", 0.5))
        fusion.ingest(camera_detection("c2", k + 0.5, *cow, "animal", 0.5))
        fusion.flush()
        merges += fusion.take_merges()
    assert merges == []
    ends = {"group": (0.0, -300.0 + 0.9 * 599), "cow": (40.0, 300.0 - 0.5 * 599.5)}
    followed = {}
    for m in fusion.track_messages():
        if m.state != "ended":
            x, y = FRAME.to_local([m.lat], [m.lon])
            for who, (bx, by) in ends.items():
                if np.hypot(x[0] - bx, y[0] - by) < 20.0:
                    followed.setdefault(who, []).append(m.track_id)
    assert len(followed["group"]) == len(followed["cow"]) == 1
    assert followed["group"] != followed["cow"]
