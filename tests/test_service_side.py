"""On relief the field service decides sides of the line by the tracks' covariances (issue 21):
``vigil run`` turns the crossing monitor's side rule on for a deployment whose ``[terrain]``
names a DEM or synthetic ground, and leaves flat sectors as they were."""

from __future__ import annotations

import pytest

from vigil.config import default_deployment_path, load, load_default
from vigil.geo.crossing_monitor import RELIEF_SIDE_PROBABILITY, side_probability_for
from vigil.ingest.mqtt_settings import MqttSettings
from vigil.service import SectorService


@pytest.fixture(scope="module")
def relief(tmp_path_factory):
    """The demo deployment on synthetic relief."""
    path = tmp_path_factory.mktemp("relief") / "sector.toml"
    text = default_deployment_path().read_text(encoding="utf-8")
    path.write_text(text + "\n[terrain]\nsynthetic = { seed = 2 }\n", encoding="utf-8")
    return load(path)


def test_relief_turns_the_side_rule_on_and_flat_ground_leaves_it_off(relief):
    assert side_probability_for(load_default().config.terrain) is None
    assert side_probability_for(relief.config.terrain) == RELIEF_SIDE_PROBABILITY


def service(site, folder, **kw) -> SectorService:
    return SectorService(site, MqttSettings(host="127.0.0.1", port=1), folder, **kw)


def test_the_service_gives_its_runner_the_rule_and_snapshots_tell_them_apart(relief, tmp_path):
    flat = service(relief.site, tmp_path / "flat")
    sure = service(relief.site, tmp_path / "sure", side_probability=RELIEF_SIDE_PROBABILITY)
    try:
        assert flat._new_runner(0).core.monitor.side_probability is None
        runner = sure._new_runner(0)
        assert runner.core.monitor.side_probability == RELIEF_SIDE_PROBABILITY
        # a snapshot made without the rule is not restored into a service with it
        assert sure._fingerprint(runner) != flat._fingerprint(flat.runner)
    finally:
        for s in (flat, sure):
            s.runner.core.tracks_store.close()
            s.runner.core.events.close()
            s.journal.close()


@pytest.mark.parametrize("p", [0.3, 1.0, float("nan")])
def test_a_side_probability_outside_half_to_one_is_refused(tmp_path, p):
    with pytest.raises(ValueError, match="side_probability"):
        service(load_default().site, tmp_path, side_probability=p)
