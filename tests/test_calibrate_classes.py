"""``vigil calibrate classes`` (issue 22 item 4): class and speed tables fitted from labelled
tracks improve animals-as-animal on evaluation seeds disjoint from the fitting seeds.

The acceptance test fits on recordings of calibration seeds 7 and 11 (tower t05, the field's
perturbations with the optical blur at sigma 0.8 px, where distant cattle read as people),
then replays a recording of evaluation seed 50001 through the sector core with the shipped
tables and with the new ones, scored against the simulator's truth. The recordings in
``tests/data/calibrate_classes/`` are what ``vigil calibrate simulate`` writes (the command
is in their folder's README); the test checks that the simulator still makes their worlds.
"""

from __future__ import annotations

import random
from pathlib import Path

import msgspec
import numpy as np
import pytest

from vigil.cli import main
from vigil.config import load_default
from vigil.sim.protocol import wilson
from vigil.tracks import label_fit as lf
from vigil.tracks.calibration import load_calibration

DATA = Path(__file__).parent / "data" / "calibrate_classes"
FIT = [DATA / "seed7.vrec.gz", DATA / "seed11.vrec.gz"]
EVAL = DATA / "seed50001.vrec.gz"
HEADER = "track_id,label,labelled_at,user\n"


# -- labels files ----------------------------------------------------------------------------


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_labels_take_the_latest_label_and_leave_unknown_out(tmp_path) -> None:
    p = write(
        tmp_path / "l.csv",
        HEADER
        + "T1,person,2026-06-01T09:00:00Z,ana\n"
        + "T1,animal,2026-06-01T09:05:00+00:00,bo\n"  # later: wins
        + "T2,vehicle,2026-06-01T09:05:00Z,ana\n"
        + "T2,person,2026-06-01T08:00:00-07:00,bo\n"  # 15:00 UTC: later, wins
        + "T3,animal,2026-06-01T09:00:00Z,ana\n"
        + "T3,unknown,2026-06-01T09:01:00Z,ana\n"  # latest unknown: left out
        + "T4,unknown,2026-06-01T09:01:00Z,ana\n",
    )
    labels = lf.read_labels(p)
    assert labels.by_track == {"T1": "animal", "T2": "person"}
    assert (labels.rows, labels.unknown, labels.relabelled) == (7, 2, 3)


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("track_id,label,user\nT1,person,ana\n", ":1: header"),
        (
            HEADER + "T1,person,2026-06-01T09:00:00Z,ana\nT2,cow,2026-06-01T09:00:00Z,ana\n",
            ":3: column 2 (label)",
        ),  # fmt: skip
        (HEADER + "T1,person,yesterday,ana\n", ":2: column 3 (labelled_at)"),
        (HEADER + "T1,person,2026-06-01T09:00:00,ana\n", ":2: column 3 (labelled_at)"),
        (HEADER + "T 1,person,2026-06-01T09:00:00Z,ana\n", ":2: column 1 (track_id)"),
        (HEADER + "T1,person,2026-06-01T09:00:00Z,\n", ":2: column 4 (user)"),
        (HEADER + "T1,person,2026-06-01T09:00:00Z\n", ":2: 3 fields"),
    ],
    ids=["header", "label", "time", "naive-time", "track-id", "user", "fields"],
)
def test_a_bad_labels_row_is_named_by_file_line_and_column(tmp_path, text, where) -> None:
    p = write(tmp_path / "bad.csv", text)
    with pytest.raises(lf.LabelError) as exc:
        lf.read_labels(p)
    assert str(exc.value).startswith(f"{p}{where}"), str(exc.value)


def test_labels_files_are_bounded(tmp_path, monkeypatch) -> None:
    p = write(tmp_path / "l.csv", HEADER + "T1,person,2026-06-01T09:00:00Z,ana\n" * 3)
    monkeypatch.setattr(lf, "MAX_LABEL_ROWS", 2)
    with pytest.raises(lf.LabelError, match=r":4: more than 2 rows"):
        lf.read_labels(p)
    monkeypatch.setattr(lf, "MAX_LABELS_BYTES", 50)
    with pytest.raises(lf.LabelError, match=r"bytes; expected at most 50"):
        lf.read_labels(p)
    monkeypatch.undo()
    (tmp_path / "latin1.csv").write_bytes(
        HEADER.encode() + b"T1,person,2026-06-01T09:00Z,Jos\xe9\n"
    )
    with pytest.raises(lf.LabelError, match="not UTF-8"):
        lf.read_labels(tmp_path / "latin1.csv")


# -- joining detections to tracks ------------------------------------------------------------


def scene() -> tuple[lf.CameraDetections, lf.TrackMessages]:
    """Two tracks 60 m apart walking east at 1 m/s, seen by t01 (T2 also by t02), messages
    once a second; detections: near T1, near T2, between them, far from both, and one near
    T1 from a camera T1 never had."""
    times = np.arange(0.0, 5.0)
    n = len(times)
    tid = ["T1"] * n + ["T2"] * n
    x = np.concatenate([times, times])
    y = np.concatenate([np.zeros(n), np.full(n, 60.0)])
    tracks = lf.TrackMessages(
        track_id=tid,
        time=np.concatenate([times, times]),
        x=x,
        y=y,
        vx=np.ones(2 * n),
        vy=np.zeros(2 * n),
        cov=np.tile(np.eye(2) * 4.0, (2 * n, 1, 1)),
        state=["confirmed"] * (2 * n),
        count=np.full(2 * n, 20),
        sensors={"T1": {"t01"}, "T2": {"t01", "t02"}},
    )
    dx = [2.5, 2.5, 2.5, 2.5, 2.5]
    dy = [1.0, 58.0, 30.0, 400.0, 0.5]
    cams = ["t01", "t01", "t01", "t01", "t02"]
    dets = lf.CameraDetections(
        camera=cams,
        time=np.full(5, 2.5),
        x=np.asarray(dx),
        y=np.asarray(dy),
        cov=np.tile(np.eye(2) * 25.0, (5, 1, 1)),
        guess=["animal", "person", "person", "person", "person"],
        confidence=np.full(5, 0.3),
        range_m=np.full(5, 1500.0),
    )
    return dets, tracks


def test_each_detection_joins_the_labelled_track_it_belongs_to() -> None:
    dets, tracks = scene()
    j = lf.join_detections(dets, tracks, {"T1": "animal", "T2": "person"})
    assert list(zip(j.track_id, j.truth, j.guess, strict=True)) == [
        ("T1", "animal", "animal"),
        ("T2", "person", "person"),
    ]
    # the one between is near neither (a 99 % gate); far: none; t02 only ever had T2
    assert j.counts == {"joined": 2, "no_track": 3}
    j = lf.join_detections(dets, tracks, {"T1": "animal"})
    assert j.counts["unlabelled"] == 1 and j.track_id == ["T1"]


def test_a_detection_two_tracks_of_other_labels_could_have_made_is_left_out() -> None:
    dets, tracks = scene()
    tracks.y[tracks.y > 0] = 6.0  # T2 runs 6 m from T1: both gates hold the first detection
    j = lf.join_detections(dets, tracks, {"T1": "animal", "T2": "person"})
    assert j.counts["ambiguous"] >= 1 and "animal" not in j.truth
    j = lf.join_detections(dets, tracks, {"T1": "animal", "T2": "animal"})
    assert j.counts["ambiguous"] == 0


def test_a_class_with_too_few_labelled_tracks_keeps_the_base_column() -> None:
    base = load_default().class_model
    rng = np.random.default_rng(0)
    j = lf.Joined()
    for k in range(400):  # 40 animal tracks, 2 person tracks: people keep the base column
        animal = k % 20 != 0
        j.track_id.append(f"T{k % 42}")
        j.truth.append("animal" if animal else "person")
        j.guess.append("person")
        j.confidence.append(float(rng.uniform(0.27, 0.32)))
        j.range_m.append(float(rng.uniform(1250.0, 1750.0)))
    j.track_id = [f"{'A' if t == 'animal' else 'P'}{i % 40}" for i, t in enumerate(j.truth)]
    fit = lf.fit_tables(j, ([], [], []), base, min_detections=10, min_tracks=10)
    assert fit.camera_source == {"person": "base", "vehicle": "base", "animal": "fitted"}
    assert fit.speed_source == {"person": "base", "vehicle": "base", "animal": "base"}
    assert fit.speed == base.speed
    cell = ("person", 0.27, 0.32, 1250.0, 1750.0)
    (new,) = [r for r in fit.camera if tuple(r[:5]) == cell]
    (old,) = [r for r in base.camera if tuple(r[:5]) == cell]
    assert new[5:7] == old[5:7] and new[7] > old[7]  # animals now make such guesses often


# -- the command, and the acceptance ---------------------------------------------------------


def share(m: np.ndarray, row: int) -> tuple[int, int]:
    """Track-seconds of true class ``row`` classed right, and all of them."""
    return int(m[row, row]), int(m[row].sum())


def with_tables(model) -> object:
    """The deployment's tracker settings with ``model``'s tables."""
    shipped = load_default().tracker_config()
    return msgspec.structs.replace(
        shipped, camera_class_model=model.camera, speed_class_model=model.speed
    )


@pytest.fixture(scope="module")
def fitted(tmp_path_factory) -> Path:
    """The tables fitted by the command from the calibration seeds' truth."""
    out = tmp_path_factory.mktemp("classes") / "sector.toml"
    args = ["calibrate", "classes", "--truth", "--out", str(out)]
    for p in FIT:
        args += ["--recording", str(p)]
    assert main(args) == 0
    return out


@pytest.fixture(scope="module")
def shipped_score():
    """The evaluation seed replayed with the shipped tables (the anchor)."""
    from vigil.cli.class_runs import replay_classes

    d = load_default()
    return replay_classes(d.site, EVAL, d.tracker_config())


@pytest.fixture(scope="module")
def fitted_score(fitted):
    """The evaluation seed replayed with the fitted tables."""
    from vigil.cli.class_runs import replay_classes

    return replay_classes(load_default().site, EVAL, with_tables(load_calibration(fitted)))


def test_the_command_writes_a_calibration_file_that_says_how_it_was_fitted(fitted) -> None:
    text = fitted.read_text(encoding="utf-8")
    model = load_calibration(fitted)
    assert "simulated seeds 7,11" in model.fitted and "by the simulator's truth" in model.fitted
    assert "# Camera columns: person fitted" in text and "animal fitted" in text
    assert model.camera and len(model.speed) == 12
    assert model.camera != load_default().class_model.camera
    # the deployment names it in [classes] calibration and tracks with its tables
    from vigil.config import default_deployment_path, load

    shipped = 'calibration = "vigil:sim_towers.toml"'
    text = default_deployment_path().read_text(encoding="utf-8")
    assert shipped in text
    sector = fitted.parent / "sector_deployment.toml"
    sector.write_text(text.replace(shipped, f'calibration = "{fitted.name}"'), encoding="utf-8")
    config = load(sector).tracker_config()
    assert config.camera_class_model == model.camera
    assert config.speed_class_model == model.speed


def test_labels_from_a_file_fit_as_the_truth_does(tmp_path) -> None:
    """An operator's CSV holding the truth's labels gives the same tables as --truth."""
    from vigil.cli.class_runs import read_run, truth_of

    d = load_default()
    run = read_run(FIT[0], d.site.frame(), d.sector)
    truth = truth_of(d.site, run)
    assert {"person", "animal"} <= set(truth.values())
    csv = tmp_path / "labels.csv"
    rows = [f"{t},{k},2026-06-01T10:00:00Z,op" for t, k in sorted(truth.items())]
    csv.write_text(HEADER + "\n".join(rows) + "\nT999,unknown,2026-06-01T10:00:00Z,op\n")
    a, b = tmp_path / "a.toml", tmp_path / "b.toml"
    assert main(["calibrate", "classes", "--recording", str(FIT[0]), "--labels", str(csv),
                 "--out", str(a)]) == 0  # fmt: skip
    assert main(["calibrate", "classes", "--recording", str(FIT[0]), "--truth",
                 "--out", str(b)]) == 0  # fmt: skip
    assert load_calibration(a).camera == load_calibration(b).camera
    assert load_calibration(a).speed == load_calibration(b).speed


def test_an_evaluation_seed_is_refused_for_fitting(tmp_path, capsys) -> None:
    code = main(["calibrate", "classes", "--recording", str(EVAL), "--truth",
                 "--out", str(tmp_path / "x.toml")])  # fmt: skip
    assert code == 3 and "evaluation seed 50001" in capsys.readouterr().err
    assert not (tmp_path / "x.toml").exists()


def test_fitted_tables_classify_more_animals_as_animals_on_an_evaluation_seed(
    fitted_score, shipped_score
) -> None:
    """The acceptance line: on evaluation seed 50001 (never fitted on), the same recorded
    detections tracked with the fitted tables class more animal track-seconds as animal than
    with the shipped tables, by more than 0.08, the Wilson intervals apart."""
    after = fitted_score
    (kb, nb), (ka, na) = share(shipped_score.confusion, 2), share(after.confusion, 2)
    assert nb == na and nb > 100
    assert ka / na - kb / nb > 0.08 and wilson(ka, na)[0] > wilson(kb, nb)[1], (kb, ka, nb)
    # what it costs: people stay people less often (blurred far people and cattle look
    # alike); measured 0.85 of 1.00 (BENCHMARKS.md); a fit that gave every track to the
    # animals would fail here
    (pb, qb), (pa, qa) = share(shipped_score.confusion, 0), share(after.confusion, 0)
    assert qa == qb and pa / qa >= 0.7, (pb, pa, qb)


def test_tables_fitted_on_shuffled_labels_buy_animals_with_people(
    fitted_score, shipped_score
) -> None:
    """The control: the same recordings with their tracks' labels shuffled among them fit
    tables that call animals animals only by calling people animals too: the mean of the
    people's and the animals' track-seconds classed right falls below the shipped tables'
    and the true fit's, by more than 0.1."""
    from vigil.cli.class_runs import read_run, replay_classes, truth_of

    d = load_default()
    joined, speeds = lf.Joined(), ([], [], [])
    for k, path in enumerate(FIT):
        run = read_run(path, d.site.frame(), d.sector)
        truth = truth_of(d.site, run)
        ids, labels = list(truth), list(truth.values())
        random.Random(k).shuffle(labels)
        shuffled = lf.prefix_tracks(run.tracks, dict(zip(ids, labels, strict=True)), f"{k}/")
        lf.add_run(joined, speeds, run.detections, run.tracks, shuffled)
    fit = lf.fit_tables(joined, speeds, d.class_model)
    control = replay_classes(d.site, EVAL, with_tables(fit)).confusion
    real = fitted_score.confusion

    def balanced(m: np.ndarray) -> float:
        return 0.5 * sum(k / n for k, n in (share(m, 0), share(m, 2)))

    assert balanced(control) < balanced(shipped_score.confusion) - 0.1
    assert balanced(control) < balanced(real) - 0.1


def test_help_explains_the_inputs_and_the_report(capsys) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["calibrate", "classes", "--help"])
    assert stop.value.code == 0
    out = " ".join(capsys.readouterr().out.split())
    for words in ("track_id,label,labelled_at, user", "--truth", "Wilson", "evaluation seed",
                  "file, line and column", "vigil:sim_towers.toml"):  # fmt: skip
        assert words in out, words


def test_a_field_recording_fits_from_labels_and_has_no_truth(tmp_path, capsys) -> None:
    """A recording without the simulator's header (as ``vigil record`` writes one from a
    broker) fits from operators' labels; --truth is refused on it, naming the file."""
    from vigil.cli.class_runs import read_run, truth_of
    from vigil.ingest.recording import Recorder, read_recording

    d = load_default()
    header, messages = read_recording(FIT[0])
    field = tmp_path / "field.vrec.gz"
    out = Recorder(field, header.sector, started=header.started, flush_each=False)
    for m in messages:
        out.write(m.topic, m.raw, m.t)
    out.close()
    truth = truth_of(d.site, read_run(FIT[0], d.site.frame(), d.sector))
    csv = tmp_path / "labels.csv"
    rows = [f"{t},{k},2026-06-01T10:00:00Z,op" for t, k in sorted(truth.items())]
    csv.write_text(HEADER + "\n".join(rows) + "\n", encoding="utf-8")
    assert main(["calibrate", "classes", "--recording", str(field), "--labels", str(csv),
                 "--out", str(tmp_path / "a.toml")]) == 0  # fmt: skip
    assert "labels: " in capsys.readouterr().out
    code = main(["calibrate", "classes", "--recording", str(field), "--truth",
                 "--out", str(tmp_path / "b.toml")])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 3 and str(field) in err and "not a simulated recording" in err


def test_replays_count_people_by_vote_as_they_count_animals(shipped_score) -> None:
    """A replay tallies each person's matched seconds and votes as it does each animal's
    (the per-person figure of ``python -m benchmarks calibrate_classes``): some people, and
    no more of them voted person than person-seconds could carry."""
    s = shipped_score
    assert s.people > 0 and 0 < s.people_as_person <= s.people, (s.people, s.people_as_person)
    assert s.people_as_person <= int(s.confusion[0, 0])
    assert s.people <= int(s.confusion[0].sum())
