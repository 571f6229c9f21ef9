"""History in PostgreSQL/PostGIS (issue 23, item 4) against the embedded SQLite stores.

A throwaway cluster (initdb + pg_ctl in a temporary folder, a free port on 127.0.0.1) is
started once per session; without Debian's postgresql-15 and postgresql-15-postgis-3 (``make
system-packages``) these tests skip and say why.

- the same batches of tracks, crossings and alerts, written to both stores, leave the same
  rows (the SQLite stores' rules: latest state not older, last (track, time) written wins,
  first crossing id wins, every alert version kept);
- ``vigil analyze`` gives the same report from the SQLite store, GeoParquet and ``--db``
  (counted in the database), and never prints or stores the DSN's password;
- identifiers are composed, not formatted: a hostile schema name is just a name.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from itertools import count
from pathlib import Path

import pandas as pd
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vigil.alerts.pg_local import ClusterUnavailableError, LocalCluster
from vigil.alerts.store import EventStore
from vigil.alerts.store_pg import PgHistoryStore, redact
from vigil.cli import main
from vigil.ingest.schema import Alert, Crossing, Track
from vigil.tracks.store import TrackStore

PASSWORD = "s3cret-Hunter2"


@pytest.fixture(scope="session")
def pg() -> Iterator[LocalCluster]:
    try:
        cluster = LocalCluster()
    except ClusterUnavailableError as exc:
        pytest.skip(str(exc))
    with cluster:
        yield cluster


_schemas = count()


def fresh(pg: LocalCluster) -> PgHistoryStore:
    return PgHistoryStore(pg.dsn, schema=f"h{next(_schemas)}")


# -- the same rows -------------------------------------------------------------------------
finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)
times = st.sampled_from([1.7e9, 1.7e9 + 0.5, 1.7e9 + 1.0, 1.7e9 + 2.25])
ids = st.sampled_from(["T1", "T2", "T3"])

tracks = st.builds(
    Track,
    track_id=ids,
    time=times,
    lat=st.floats(-89, 89),
    lon=st.floats(-179, 179),
    vx=finite,
    vy=finite,
    cov=st.tuples(finite, finite, finite, finite).map(lambda c: (c[0], c[1], c[1], c[3])),
    state=st.sampled_from(["tentative", "confirmed", "coasting", "ended"]),
    class_guess=st.sampled_from(["person", "vehicle", "unknown"]),
    class_probs=st.dictionaries(st.sampled_from(["person", "vehicle"]), st.floats(0, 1)),
    sensors=st.lists(st.sampled_from(["tower-1", "cam-2", "ugs-3"]), unique=True),
    count=st.integers(1, 10_000),
)
crossings = st.builds(
    Crossing,
    crossing_id=st.sampled_from(["C1", "C2", "C3", "C4"]),
    track_id=ids,
    time=times,
    segment_id=st.sampled_from(["s-0001", "s-0002"]),
    direction=st.sampled_from(["northbound", "southbound"]),
    lat=st.floats(-89, 89),
    lon=st.floats(-179, 179),
    confidence=st.floats(0, 1),
)
alerts = st.builds(
    Alert,
    alert_id=st.sampled_from(["A1", "A2"]),
    time=times,
    kind=st.sampled_from(["crossing", "zone_entry", "track_lost"]),
    priority=st.integers(1, 5),
    segment_id=st.none() | st.sampled_from(["s-0001"]),
    lat=st.floats(-89, 89),
    lon=st.floats(-179, 179),
    track_id=st.none() | ids,
    assigned_unit=st.none() | st.sampled_from(["U1", "U2"]),
    state=st.sampled_from(["new", "updated", "acknowledged", "closed"]),
    summary=st.text(max_size=8),
)


def batches(s: st.SearchStrategy) -> st.SearchStrategy:
    return st.lists(st.lists(s, max_size=6), min_size=1, max_size=3)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(t=batches(tracks), c=batches(crossings), a=batches(alerts))
def test_same_rows_in_postgis_and_sqlite(pg, tmp_path_factory, t, c, a) -> None:
    root = tmp_path_factory.mktemp("rows")
    lite_t, lite_e = TrackStore(":memory:"), EventStore(root / "events.sqlite")
    with fresh(pg) as store:
        for batch in t:
            assert store.write(batch) == lite_t.write(batch)
        for batch in c:
            assert store.write_crossings(batch) == lite_e.write_crossings(batch)
        for batch in a:
            assert store.write_alerts(batch) == lite_e.write_alerts(batch)

        assert store.latest() == lite_t.latest()
        assert store.latest("confirmed") == lite_t.latest("confirmed")
        for tid in ("T1", "T2", "T3"):
            assert store.history(tid) == lite_t.history(tid)
        by_time = lambda x: (x.time, x.crossing_id)  # noqa: E731
        assert sorted(store.crossings(), key=by_time) == sorted(lite_e.crossings(), key=by_time)
        by_alert = lambda x: (x.time, x.alert_id)  # noqa: E731
        assert sorted(store.alerts(), key=by_alert) == sorted(lite_e.alerts(), key=by_alert)
        assert sorted(store.alerts("closed"), key=by_alert) == sorted(
            lite_e.alerts("closed"), key=by_alert
        )
        with sqlite3.connect(root / "events.sqlite") as db:
            versions = db.execute("SELECT alert_id, message FROM alert_version ORDER BY rowid")
            lite_versions = [(r[0], bytes(r[1])) for r in versions]
        for aid in ("A1", "A2"):
            want = [m for i, m in lite_versions if i == aid]
            assert [store._enc.encode(v) for v in store.alert_versions(aid)] == want
        # first_time: the time of the first state written, as in SQLite
        lite_first = dict(lite_t._db.execute("SELECT track_id, first_time FROM track"))
        pg_first = dict(
            store.connection.execute(
                psycopg.sql.SQL("SELECT track_id, first_time FROM {}").format(
                    psycopg.sql.Identifier(store.schema, "track")
                )
            ).fetchall()
        )
        assert pg_first == lite_first
    lite_t.close()
    lite_e.close()


def test_positions_are_postgis_points(pg) -> None:
    c = Crossing(
        crossing_id="C9", track_id="T9", time=1.7e9, segment_id="s", direction="northbound",
        lat=31.33, lon=-110.94,
    )  # fmt: skip
    with fresh(pg) as store:
        store.write_crossings([c, c])
        q = psycopg.sql.SQL("SELECT ST_AsText(geom), ST_SRID(geom) FROM {}").format(
            psycopg.sql.Identifier(store.schema, "crossing")
        )
        assert store.connection.execute(q).fetchall() == [("POINT(-110.94 31.33)", 4326)]


def test_a_hostile_schema_name_is_only_a_name(pg) -> None:
    name = 'x"; DROP SCHEMA public CASCADE; --'
    with PgHistoryStore(pg.dsn, schema=name) as store:
        store.write_crossings(
            [Crossing(crossing_id="C1", track_id="T1", time=1.0, segment_id="s",
                      direction="southbound", lat=1.0, lon=2.0)]
        )  # fmt: skip
        assert store.count("crossing") == 1
        nsp = store.connection.execute("SELECT nspname FROM pg_namespace").fetchall()
        assert {(name,), ("public",)} <= set(nsp)


# -- vigil analyze from either store --------------------------------------------------------
@pytest.fixture(scope="module")
def history(pg, tmp_path_factory) -> tuple[Path, str]:
    """Synthetic crossings of the shipped sector in events.sqlite and in PostGIS."""
    from vigil.cli.common import load_deployment
    from vigil.geo.patterns.synthetic import corridor_rates, night_schedule, simulate_crossings

    d = load_deployment(None)
    border = d.site.border()
    rates = corridor_rates(len(border.segments), [(25, 10.0, 1.5), (8, 4.0, 2.0)])
    table, _ = simulate_crossings(
        border, days=45, rates=rates, hourly=night_schedule(2), timezone=d.site.sector.timezone,
        seed=11,
    )  # fmt: skip
    rows = [
        Crossing(
            crossing_id=f"C{r.crossing_id}", track_id=f"T{r.track_id}", time=float(r.time),
            segment_id=r.segment_id, direction=r.direction, lat=float(r.lat), lon=float(r.lon),
        )
        for r in table.itertuples()
    ]  # fmt: skip
    root = tmp_path_factory.mktemp("history")
    lite = EventStore(root / "events.sqlite")
    lite.write_crossings(rows)
    lite.close()
    with PgHistoryStore(pg.dsn, schema="sector") as store:
        store.write_crossings(rows)
    # the same history with a password in the DSN (trust authentication ignores it)
    dsn = pg.dsn.replace("vigil@", f"vigil:{PASSWORD}@")
    return root, dsn


def _report(out: Path) -> tuple[dict, pd.DataFrame]:
    summary = json.loads((out / "summary.json").read_text())
    for key in ("input", "backend", "files"):
        summary.pop(key)
    return summary, pd.read_parquet(out / "segments.parquet")


def test_analyze_gives_the_same_report_from_either_store(history, capsys, monkeypatch) -> None:
    root, dsn = history
    assert main(["analyze", str(root / "events.sqlite"), "--out", str(root / "lite")]) == 0
    monkeypatch.setenv("VIGIL_DB", dsn)
    args = ["analyze", "--db-schema", "sector", "--out", str(root / "pg")]
    assert main(args) == 0
    printed = capsys.readouterr()
    assert PASSWORD not in printed.out + printed.err
    assert redact(dsn) in printed.out
    lite, lite_segments = _report(root / "lite")
    db, db_segments = _report(root / "pg")
    assert lite["crossings"] > 1000
    assert db == lite
    pd.testing.assert_frame_equal(db_segments, lite_segments)
    on_disk = json.loads((root / "pg" / "summary.json").read_text())
    assert on_disk["backend"] == "postgresql"
    for f in (root / "pg").iterdir():
        assert PASSWORD.encode() not in f.read_bytes(), f.name


def test_a_failed_connection_names_no_password(capsys, tmp_path) -> None:
    from vigil.alerts.pg_local import free_port

    dsn = f"postgresql://ops:{PASSWORD}@127.0.0.1:{free_port()}/vigil?connect_timeout=2"
    rc = main(["analyze", "--db", dsn, "--out", str(tmp_path / "out")])
    printed = capsys.readouterr()
    assert rc != 0
    assert "127.0.0.1" in printed.err
    assert PASSWORD not in printed.out + printed.err


def test_bulk_frames_keep_the_same_rows(pg) -> None:
    """Whole-column binary COPY (empty table, then the staging path) = row by row = SQLite."""
    frame = pd.DataFrame(
        {
            "crossing_id": ["C1", "C2", "C1", "Cé", "C3"],
            "track_id": ["T1", "T2", "T9", "Tü", "T3"],
            "time": [1.7e9, 1.7e9 + 1, 1.7e9 + 2, 1.7e9 + 3, 1.7e9 + 4],
            "segment_id": ["s-1", "s-2", "s-3", "séğ-ü", "s-1"],
            "direction": ["northbound", "southbound", "northbound", "southbound", "northbound"],
            "lat": [31.1, 31.2, 31.3, 31.4, 31.5],
            "lon": [-110.1, -110.2, -110.3, -110.4, -110.5],
            "confidence": [1.0, 0.5, 0.25, 0.125, 1.0],
        }
    )
    first, second = frame.iloc[:4], frame.iloc[2:]
    rows = lambda f: [Crossing(**r) for r in f.to_dict("records")]  # noqa: E731
    lite = EventStore(":memory:")
    with fresh(pg) as bulk, fresh(pg) as one_by_one:
        for part in (first, second):
            assert bulk.write_crossings_frame(part, chunk_rows=2) == len(part)
            one_by_one.write_crossings(rows(part))
            lite.write_crossings(rows(part))
        assert bulk.crossings() == one_by_one.crossings() == lite.crossings()
        assert bulk.count("crossing") == 4
    lite.close()


# -- vigil run's core mirrors its history into PostGIS ---------------------------------------
def test_the_core_mirrors_a_recorded_run_into_postgis(pg, tmp_path, monkeypatch) -> None:
    """Two minutes of a recorded live stream through the sector core (what ``vigil run`` runs),
    with VIGIL_DB set: PostGIS holds the same tracks, crossings and alerts as the SQLite
    stores beside it."""
    import msgspec

    from vigil.config import load_default
    from vigil.core import SectorCore
    from vigil.ingest import schema
    from vigil.ingest.bus import InProcessBus
    from vigil.ingest.recording import read_recording

    header, messages = read_recording(Path(__file__).parent / "data" / "core_replay_8min.vrec")
    site = load_default().site
    site = type(site)(**{f: getattr(site, f) for f in type(site).__struct_fields__})
    start = header.meta["start"]
    end = start + 120.0
    monkeypatch.setenv("VIGIL_DB", pg.dsn.replace("vigil@", f"vigil:{PASSWORD}@"))
    monkeypatch.setenv("VIGIL_DB_SCHEMA", "run")
    now = [start]
    bus = InProcessBus(site.sector.name, clock=lambda: now[0])
    core = SectorCore(site, bus, store_dir=tmp_path)
    assert core.history is not None and PASSWORD not in core.history.store.name
    tick = start + 1.0
    for m in messages:
        if m.t > end:
            break
        while m.t >= tick:
            now[0] = tick
            core.tick(tick)
            tick += 1.0
        now[0] = m.t
        msg = msgspec.json.decode(m.raw, type=schema.Message)
        bus.publish(schema.topic_for(site.sector.name, msg), msg)
    core.close()
    assert core.history.failed_batches == 0
    lite_t, lite_e = TrackStore(tmp_path / "tracks.sqlite"), EventStore(tmp_path / "events.sqlite")
    with PgHistoryStore(pg.dsn, schema="run") as store:
        latest = lite_t.latest()
        assert len(latest) > 0 and store.latest() == latest
        for t in latest[:20]:
            assert store.history(t.track_id) == lite_t.history(t.track_id)
        assert (
            store.count("track_state")
            == lite_t._db.execute("SELECT count(*) FROM track_state").fetchone()[0]
        )
        by_time = lambda x: (x.time, x.crossing_id)  # noqa: E731
        assert sorted(store.crossings(), key=by_time) == sorted(lite_e.crossings(), key=by_time)
        by_alert = lambda x: (x.time, x.alert_id)  # noqa: E731
        alerts = sorted(lite_e.alerts(), key=by_alert)
        assert len(alerts) > 0 and sorted(store.alerts(), key=by_alert) == alerts
        print(f"mirrored {len(latest)} tracks, {len(alerts)} alerts, "
              f"{len(lite_e.crossings())} crossings")  # fmt: skip
    lite_t.close()
    lite_e.close()


@pytest.mark.parametrize(
    ("zone", "start"),
    [
        ("America/Phoenix", 1.70e9),  # whole hours, no DST: hour bins
        ("America/New_York", 1.70e9),  # DST changes: hour bins still fit
        ("Asia/Kathmandu", 1.70e9),  # +05:45: 15-minute bins
        ("Africa/Monrovia", 0.0),  # -00:44:30 until 1972: row by row (AT TIME ZONE)
    ],
)
def test_database_counts_equal_the_in_memory_counts(pg, zone, start) -> None:
    from vigil.geo.patterns.aggregate import aggregate_crossings
    from vigil.maps.report_db import aggregate_crossings_db

    rng = __import__("numpy").random.default_rng(7)
    n = 3000
    frame = pd.DataFrame(
        {
            "crossing_id": [f"C{i}" for i in range(n)],
            "track_id": [f"T{i}" for i in range(n)],
            "time": start + rng.uniform(0, 2 * 365 * 86400, n),
            "segment_id": rng.choice(["s-1", "s-2", "s-3"], n),
            "direction": rng.choice(["northbound", "southbound"], n),
            "lat": rng.uniform(31.2, 31.4, n),
            "lon": rng.uniform(-111.0, -110.8, n),
            "confidence": 1.0,
        }
    )
    with fresh(pg) as store:
        store.write_crossings_frame(frame)
        got = aggregate_crossings_db(store.connection, schema=store.schema, timezone=zone)
    want = aggregate_crossings(frame, timezone=zone)
    for name, table in want.tables().items():
        pd.testing.assert_frame_equal(got.tables()[name], table, obj=name)
    assert (got.n_crossings, got.first_time, got.last_time) == (
        want.n_crossings,
        want.first_time,
        want.last_time,
    )


def test_a_replayed_flush_does_not_double_the_mirrored_history(pg) -> None:
    """A restarted service replays its journal's tail through the core, so the mirror sees
    flushes it already wrote: tracks, crossings, alerts and every alert's versions stay as
    they were after the first write."""
    from vigil.alerts.pg_mirror import HistoryMirror

    track = Track(track_id="T1", time=1.7e9, lat=31.3, lon=-110.9, vx=0.0, vy=1.0,
                  cov=(25.0, 0.0, 0.0, 25.0), state="confirmed", class_guess="person",
                  class_probs={"person": 0.9}, sensors=["tower-1"], count=3)  # fmt: skip
    crossing = Crossing(crossing_id="C1", track_id="T1", time=1.7e9, segment_id="s-0001",
                        direction="northbound", lat=31.3, lon=-110.9, confidence=0.9)  # fmt: skip
    new = Alert(alert_id="A1", time=1.7e9, kind="crossing", priority=1, segment_id="s-0001",
                lat=31.3, lon=-110.9, track_id="T1", state="new", summary="crossing")  # fmt: skip
    acked = msgspec_replace(new, time=1.7e9 + 5, state="acknowledged")
    mirror = HistoryMirror(pg.dsn, schema=f"h{next(_schemas)}")
    try:
        for _ in range(2):  # the first run, then the replayed tail after a restart
            mirror.write([track], [crossing], [new, acked])
        store = mirror.store
        assert mirror.failed_batches == 0
        assert [v.state for v in store.alert_versions("A1")] == ["new", "acknowledged"]
        assert store.count("track_state") == 1 and len(store.crossings()) == 1
        assert [a.state for a in store.alerts()] == ["acknowledged"]
        mirror.write([], [], [msgspec_replace(acked, time=1.7e9 + 9, state="closed")])
        assert [v.state for v in store.alert_versions("A1")] == ["new", "acknowledged", "closed"]
    finally:
        mirror.close()


def msgspec_replace(alert: Alert, **changes: object) -> Alert:
    import msgspec

    return msgspec.structs.replace(alert, **changes)
