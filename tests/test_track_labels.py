"""Operators' labels on tracks (issue 22 item 4): ``POST /api/tracks/{id}/label`` on the real
live map server (uvicorn on a free port, a real SQLite audit database), and ``vigil labels
export``.

A commander's label is stored with its audit entry and relabelling keeps the history; bad
labels and track ids are refused with a clear error and store nothing; no session, the wrong
role, a missing CSRF token and a cross-origin request are refused; labels survive a restart of
the server; the export writes the latest label per track in the agreed CSV format.
"""

from __future__ import annotations

import csv
import sqlite3
import time
from datetime import datetime
from pathlib import Path

import pytest

pytest.importorskip("starlette")
pytest.importorskip("argon2")

from live_client import FAST_HASH, PASSWORDS, World, client, running_world  # noqa: E402

from vigil.cli import main  # noqa: E402
from vigil.ingest.schema import Track  # noqa: E402
from vigil.maps.live import AuditLog, LiveMapApp, ServerThread, UserStore  # noqa: E402
from vigil.maps.track_labels import (  # noqa: E402
    CSV_HEADER,
    LabelError,
    TrackLabels,
    read_latest,
)


def track(w: World, track_id: str, cls: str = "person", t: float | None = None) -> Track:
    msg = Track(
        track_id=track_id, time=t if t is not None else time.time(), lat=31.34, lon=-110.95,
        vx=0.0, vy=1.1, cov=(25.0, 0.0, 0.0, 25.0), state="confirmed", class_guess=cls,
    )  # fmt: skip
    w.publish(msg)
    return msg


def label_rows(path: Path) -> list[tuple]:
    with sqlite3.connect(path) as db:
        return db.execute(
            "SELECT track_id, label, user, previous, track_class FROM track_label ORDER BY rowid"
        ).fetchall()


@pytest.fixture
def world(tmp_path: Path):
    with running_world(tmp_path) as w:
        yield w


def post_label(c, track_id: str, label, **kw):
    return c.request(
        "POST", f"/api/tracks/{track_id}/label", {"label": label}, {"X-CSRF-Token": c.csrf, **kw}
    )


def test_a_commander_labels_and_relabels_a_track_stored_and_audited(world) -> None:
    track(world, "T7", "person")
    cmd = client(world, "cmd")
    before = time.time()
    r = post_label(cmd, "T7", "animal")
    assert r.status == 200, r.body
    got = r.json()
    assert (got["track"], got["label"], got["by"], got["previous"], got["changed"]) == (
        "T7", "animal", "cmd", None, True,
    )  # fmt: skip
    assert before <= got["time"] <= time.time()
    # relabelled: the history keeps both, the audit log names old and new
    r = post_label(cmd, "T7", "vehicle")
    assert r.status == 200 and r.json()["previous"] == "animal"
    # the same label again changes nothing and writes nothing
    r = post_label(cmd, "T7", "vehicle")
    assert r.status == 200 and r.json()["changed"] is False
    path = world.audit.path
    assert label_rows(Path(path)) == [
        ("T7", "animal", "cmd", None, "person"),
        ("T7", "vehicle", "cmd", "animal", "person"),
    ]
    entries = [e for e in world.audit.entries() if e.action == "track_label"]
    assert [(e.user, e.target) for e in entries] == [("cmd", "T7"), ("cmd", "T7")]
    assert entries[0].detail.startswith("(none) -> animal at ")
    assert entries[1].detail.startswith("animal -> vehicle at ")
    # UTC stored; the local time shown with the sector's offset (Tucson: -07:00, no DST)
    assert "-07:00 (America/Phoenix)" in entries[1].detail
    assert entries[0].time == pytest.approx(got["time"], abs=1e-3)
    hist = cmd.request("GET", "/api/tracks/T7/labels").json()["labels"]
    assert [(x["label"], x["previous"]) for x in hist] == [("animal", None), ("vehicle", "animal")]
    assert all(x["local_time"].endswith("-07:00") for x in hist)
    snap = cmd.request("GET", "/api/snapshot").json()
    assert [(x["track"], x["label"]) for x in snap["labels"]] == [("T7", "vehicle")]


def test_an_agent_may_label_too(world) -> None:
    track(world, "T8")
    r = post_label(client(world, "agt"), "T8", "unknown")
    assert r.status == 200 and r.json()["label"] == "unknown"


@pytest.mark.parametrize(
    ("label", "why"),
    [
        ("cat", "label 'cat' is not a label; expected one of person, animal, vehicle, unknown"),
        ("Person", "label 'Person' is not a label"),
        ("", "label '' is not a label"),
        ("person ", "label 'person ' is not a label"),
        ("x" * 5000, "label 'xxxxx"),
        (["person"], "label \"['person']\" is not a label"),  # a list arrives as its text
    ],
)
def test_anything_but_the_four_labels_is_refused(world, label, why) -> None:
    track(world, "T1")
    r = post_label(client(world, "cmd"), "T1", label)
    assert r.status == 400, r.body
    assert why in r.json()["error"]
    assert len(r.json()["error"]) < 200  # a long value is not echoed whole
    assert label_rows(Path(world.audit.path)) == []


def test_bad_or_unknown_track_ids_are_refused(world) -> None:
    cmd = client(world, "cmd")
    for bad in ("T" * 65, "T%201", "T%3Cb%3E", "..%2F"):
        r = post_label(cmd, bad, "person")
        assert r.status in (400, 404), (bad, r.status)
        if r.status == 400:
            assert "is not a track id; expected 1 to 64 of" in r.json()["error"]
    assert post_label(cmd, "T" * 65, "person").status == 400
    r = post_label(cmd, "T404", "person")
    assert r.status == 404 and "no track 'T404' on the map" in r.json()["error"]
    # a body that is not JSON reads as no label
    r = cmd.request(
        "POST", "/api/tracks/T404/label", b"{not json", {"X-CSRF-Token": cmd.csrf,
        "Content-Type": "application/json"},
    )  # fmt: skip
    assert r.status == 400
    assert label_rows(Path(world.audit.path)) == []


def test_no_session_wrong_role_bad_token_or_other_origin_are_refused(world) -> None:
    track(world, "T2")
    anon = client(world)
    r = anon.request("POST", "/api/tracks/T2/label", {"label": "person"})
    assert r.status == 401
    for name in ("plan", "adm"):
        r = post_label(client(world, name), "T2", "person")
        assert r.status == 403 and "may not tracks.label" in r.json()["error"], name
    cmd = client(world, "cmd")
    r = cmd.request("POST", "/api/tracks/T2/label", {"label": "person"})  # no token
    assert r.status == 403 and "CSRF" in r.json()["error"]
    r = post_label(cmd, "T2", "person", **{"X-CSRF-Token": "0" * 64})
    assert r.status == 403
    r = post_label(cmd, "T2", "person", Origin="http://evil.example")
    assert r.status == 403 and "cross-origin" in r.json()["error"]
    assert label_rows(Path(world.audit.path)) == []
    refused = [(e.user, e.action) for e in world.audit.entries()]
    assert ("plan", "denied") in refused and ("cmd", "csrf_refused") in refused


def test_labels_survive_a_restart_of_the_server(tmp_path: Path) -> None:
    with running_world(tmp_path) as w:
        track(w, "T3", "person")
        track(w, "T4", "animal")
        cmd = client(w, "cmd")
        assert post_label(cmd, "T3", "animal").status == 200
        assert post_label(cmd, "T3", "person").status == 200
        assert post_label(cmd, "T4", "vehicle").status == 200
        site = w.site
        w.audit.close()
    # a new server on the same files: the labels are there, shown as soon as the track is
    users = UserStore(tmp_path / "users.sqlite", hasher=FAST_HASH)
    audit = AuditLog(tmp_path / "store.sqlite")
    app = LiveMapApp(site, w.bus.__class__(site.sector.name), users, audit, tick_s=0.05)
    try:
        assert app.live.labels["T3"]["label"] == "person"
        with ServerThread(app) as server:
            from live_client import Client

            c = Client(server.url)
            assert c.login("cmd", PASSWORDS["cmd"]).status == 303
            app.live.apply(
                f"vigil/v1/{site.sector.name}/tracks",
                Track(track_id="T3", time=time.time(), lat=31.3, lon=-110.9, vx=0.0, vy=0.0,
                      cov=(9.0, 0.0, 0.0, 9.0), state="confirmed", class_guess="person"),
            )  # fmt: skip
            snap = c.request("GET", "/api/snapshot").json()
            assert [(x["track"], x["label"], x["by"]) for x in snap["labels"]] == [
                ("T3", "person", "cmd")
            ]
            hist = c.request("GET", "/api/tracks/T3/labels").json()["labels"]
            assert [x["label"] for x in hist] == ["animal", "person"]
            history = c.request("GET", "/api/history?hours=1").json()["tracks"]
            assert {i["id"]: i["label"]["label"] for i in history} == {"T3": "person"}
    finally:
        app.close()
        audit.close()
        users.close()


def test_export_writes_the_latest_label_per_track(tmp_path: Path, capsys) -> None:
    audit = AuditLog(
        tmp_path / "vigil-audit.sqlite", clock=iter([1.78e9, 1.78e9 + 60, 1.78e9 + 120]).__next__
    )
    labels = TrackLabels(audit, "tucson", "America/Phoenix")
    labels.label("T10", "animal", "cmd")
    labels.label("T2", "person", "ana.m@p07")
    labels.label("T10", "vehicle", "jöe")  # relabelled: the latest wins; names are UTF-8
    audit.close()
    out = tmp_path / "out" / "labels.csv"
    assert main(["labels", "export", "--users", str(tmp_path / "vigil-users.sqlite"),
                 "--out", str(out)]) == 0  # fmt: skip
    assert "2 labelled tracks of sector tucson" in capsys.readouterr().out
    raw = out.read_bytes().decode("utf-8")
    assert raw.splitlines()[0] == "track_id,label,labelled_at,user"
    rows = list(csv.DictReader(raw.splitlines()))
    assert tuple(rows[0]) == CSV_HEADER
    assert [(r["track_id"], r["label"], r["user"]) for r in rows] == [
        ("T10", "vehicle", "jöe"),
        ("T2", "person", "ana.m@p07"),
    ]
    assert rows[0]["labelled_at"] == "2026-05-28T13:28:40-07:00"
    assert datetime.fromisoformat(rows[0]["labelled_at"]).timestamp() == 1.78e9 + 120


def test_export_refuses_what_it_cannot_read(tmp_path: Path, capsys) -> None:
    out = str(tmp_path / "l.csv")
    assert main(["labels", "export", "--audit", str(tmp_path / "none.sqlite"), "--out", out]) == 3
    assert "no label file" in capsys.readouterr().err
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"not a database at all" * 50)
    assert main(["labels", "export", "--audit", str(junk), "--out", out]) == 3
    assert "not a label file" in capsys.readouterr().err
    # two sectors in one file (the national view): one must be named
    audit = AuditLog(tmp_path / "both.sqlite")
    TrackLabels(audit, "tucson").label("T1", "person", "cmd")
    TrackLabels(audit, "swanton").label("T1", "animal", "cmd")
    audit.close()
    assert main(["labels", "export", "--audit", str(tmp_path / "both.sqlite"), "--out", out]) == 3
    assert "several sectors (swanton, tucson); name one with --sector" in capsys.readouterr().err
    both = str(tmp_path / "both.sqlite")
    assert main(["labels", "export", "--audit", both, "--sector", "swanton", "--out", out]) == 0
    assert Path(out).read_text(encoding="utf-8").splitlines()[1].startswith("T1,animal,")
    # an audit file with no labels yet: the header alone
    empty = AuditLog(tmp_path / "empty.sqlite")
    empty.close()
    assert main(["labels", "export", "--audit", str(tmp_path / "empty.sqlite"), "--out", out]) == 0
    assert Path(out).read_text(encoding="utf-8") == "track_id,label,labelled_at,user\n"
    with pytest.raises(LabelError):
        read_latest(tmp_path / "missing.sqlite")


def test_the_export_reads_back_in_vigil_calibrate_classes(tmp_path: Path) -> None:
    lf = pytest.importorskip("vigil.tracks.label_fit")  # vigil calibrate classes' reader
    audit = AuditLog(tmp_path / "a.sqlite")
    labels = TrackLabels(audit, "tucson", "America/Phoenix")
    labels.label("T1", "person", "cmd")
    labels.label("T1", "animal", "agt")
    labels.label("T2", "vehicle", "cmd")
    audit.close()
    out = tmp_path / "labels.csv"
    assert main(["labels", "export", "--audit", str(tmp_path / "a.sqlite"), "--out", str(out)]) == 0
    assert lf.read_labels(out).by_track == {"T1": "animal", "T2": "vehicle"}
