"""The deployment's ``[crossings]`` table (issue 22): crossings the towers did not see whole
are inferred only when the file turns it on, with its values, in the demo and in ``vigil
run``'s service, and a snapshot made one way is not restored into a service made the other."""

from __future__ import annotations

from pathlib import Path

import pytest

from vigil.config import ConfigError, default_deployment_path, load, load_default
from vigil.core import FIELD_ENTRY_M, FIELD_FRAGMENTS, SectorCore
from vigil.geo.crossing_fragments import CrossingSettings, FragmentSettings
from vigil.ingest.bus import InProcessBus
from vigil.ingest.mqtt_settings import MqttSettings
from vigil.service import SectorService


def deployment_with(tmp_path: Path, table: str):
    path = tmp_path / "sector.toml"
    text = default_deployment_path().read_text(encoding="utf-8")
    path.write_text(text + "\n[crossings]\n" + table + "\n", encoding="utf-8")
    return load(path)


def test_off_unless_the_file_turns_it_on(tmp_path) -> None:
    assert load_default().config.crossings.inference() is None
    on = deployment_with(tmp_path, "infer = true")
    assert on.config.crossings.inference() == (FIELD_ENTRY_M, FIELD_FRAGMENTS)
    assert FIELD_ENTRY_M == 200.0 and FIELD_FRAGMENTS.confidence == 0.85


def test_the_files_values_reach_the_monitor(tmp_path) -> None:
    d = deployment_with(
        tmp_path, "infer = true\nentry_m = 120.0\nfragment_gap_s = 90\nfragment_confidence = 0.7"
    )
    core = SectorCore(d.site, InProcessBus(d.sector))
    try:
        core.use_crossings(load_default().config.crossings)  # off: nothing changes
        assert core.monitor.fragments is None and core.monitor.entry_m == 0.0
        core.use_crossings(d.config.crossings)
        assert core.monitor.entry_m == 120.0
        assert core.monitor.fragments == FragmentSettings(
            gap_s=90.0, speed_mps=2.5, slack_m=300.0, confidence=0.7
        )
    finally:
        core.close()


@pytest.mark.parametrize(
    ("table", "words"),
    [
        ("infer = 'yes'", "infer"),
        ("infer = true\nentry_m = -5.0", "entry_m"),
        ("fragment_confidence = 0.0", "fragment_confidence"),
        ("infer_everything = true", "infer_everything"),
    ],
)
def test_bad_values_are_named_with_their_line(tmp_path, table, words) -> None:
    with pytest.raises(ConfigError) as err:
        deployment_with(tmp_path, table)
    lines = (tmp_path / "sector.toml").read_text(encoding="utf-8").splitlines()
    line = 1 + next(i for i, text in enumerate(lines) if text.startswith(words))
    assert f"sector.toml:{line}: crossings.{words} = " in str(err.value)


def test_the_service_runner_infers_and_snapshots_tell_them_apart(tmp_path) -> None:
    site = load_default().site
    made = []
    try:
        for name, inference in (("seen", None), ("inferred", CrossingSettings(infer=True))):
            s = SectorService(site, MqttSettings(host="127.0.0.1", port=1), tmp_path / name)
            s.crossing_inference = inference.inference() if inference else None
            made.append((s, s._new_runner(0)))
        (seen, r_seen), (inferred, r_inf) = made
        assert r_seen.core.monitor.fragments is None and r_seen.core.monitor.entry_m == 0.0
        assert r_inf.core.monitor.fragments == FIELD_FRAGMENTS
        assert r_inf.core.monitor.entry_m == FIELD_ENTRY_M
        assert seen._fingerprint(r_seen) != inferred._fingerprint(r_inf)
    finally:
        for s, r in made:
            r.core.tracks_store.close()
            r.core.events.close()
            s.journal.close()
