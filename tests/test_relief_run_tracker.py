"""``vigil run`` on relief runs the tracker ``vigil demo --relief`` runs (issue 21): the relief's
changes (a track's position sigma capped at 5 km, not 200 m) apply when the deployment's
``[terrain]`` names relief, unless its ``[tracker]`` sets the key itself; flat ground is as
the file says."""

from __future__ import annotations

import msgspec

from vigil.cli.run import tracker_for
from vigil.config import default_deployment_path, load, load_default
from vigil.tracks.config import RELIEF_TRACKER_CHANGES, TrackerConfig

RELIEF = "\n[terrain]\nsynthetic = { seed = 2 }\n"


def _deployment(tmp_path, text: str):
    path = tmp_path / "sector.toml"
    path.write_text(text, encoding="utf-8")
    return load(path)


def test_relief_gets_the_relief_tracker_unless_the_file_sets_it(tmp_path) -> None:
    cap = RELIEF_TRACKER_CHANGES["max_position_sigma_m"]
    text = default_deployment_path().read_text(encoding="utf-8")
    flat = tracker_for(load_default())
    assert flat == load_default().tracker_config()
    assert flat.max_position_sigma_m == TrackerConfig.for_sector().max_position_sigma_m != cap
    relief = _deployment(tmp_path, text + RELIEF)
    got = tracker_for(relief)
    assert got.max_position_sigma_m == cap
    # everything else as the file gives it
    assert got == msgspec.structs.replace(relief.tracker_config(), **RELIEF_TRACKER_CHANGES)
    # a file that sets the key keeps its own value
    own = tmp_path / "own"
    own.mkdir()
    assert text.count("\nstitch_s = 300.0") == 1
    explicit = text.replace(
        "\nstitch_s = 300.0", "\nstitch_s = 300.0\nmax_position_sigma_m = 321.0"
    )
    assert tracker_for(_deployment(own, explicit + RELIEF)).max_position_sigma_m == 321.0


def test_demo_relief_runs_the_same_tracker(tmp_path) -> None:
    """``vigil demo --relief`` on the flat default deployment runs the demo's relief: the
    relief tracker; without --relief the file's."""
    d = load_default()
    cap = RELIEF_TRACKER_CHANGES["max_position_sigma_m"]
    assert d.tracker_config_on_ground(True).max_position_sigma_m == cap
    assert d.tracker_config_on_ground(False) == d.tracker_config()
    assert d.tracker_config_on_ground() == d.tracker_config()  # no [terrain]: flat
