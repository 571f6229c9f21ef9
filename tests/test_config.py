"""The deployment file: the shipped demo deployment, and errors naming key, value and line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vigil.cli import main
from vigil.config import ConfigError, load, load_default, locate, parse


@pytest.fixture(scope="module")
def default():
    return load_default()


def test_default_deployment_matches_the_brief(default) -> None:
    c = default.config
    assert c.sector.name == "tucson"
    assert len(c.towers) == 6
    assert len(c.sensors) == 60
    assert len(c.aircraft) == 1
    assert len(c.units) == 8
    assert len(c.zones) == 2
    lat, lon = c.sector.centre
    assert abs(lat - 31.33) < 0.05 and abs(lon + 110.94) < 0.05
    border = c.border()
    assert 38_000 < border.length_m < 42_000


def test_default_devices_on_the_us_side_near_the_line(default) -> None:
    c = default.config
    frame = c.frame()
    border = c.border(frame)
    for group, lo, hi in (("towers", 500, 4000), ("sensors", 100, 2000), ("units", 1000, 12000)):
        items = getattr(c, group)
        x, y = frame.to_local([i.lat for i in items], [i.lon for i in items])
        assert np.all(border.side(x, y) == 1), group
        d = border.distance(x, y)
        assert np.all((d > lo) & (d < hi)), (group, d.min(), d.max())
    lines = {s.line for s in c.sensors}
    assert len(lines) >= 6  # laid in lines across routes


def _mutate(text: str, old: str, new: str) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


@pytest.mark.parametrize(
    ("old", "new", "key", "value", "words"),
    [
        ("mast_height_m = 25.0", "mast_height_m = -5.0", "towers[0].mast_height_m", -5.0, ">= 2"),
        ("fps = 10.0", "fps = 10.0\nzoom = 3", "towers[0].zoom", 3, "unknown key"),
        ('modality = "seismic"', 'modality = "sonar"', "sensors[0].modality", "sonar", "invalid"),
        (
            "segment_length_m = 1000.0",
            'segment_length_m = "1km"',
            "sector.segment_length_m",
            "1km",
            "str",
        ),
        ("port = 1883", "port = 99999", "broker.port", 99999, "<= 65535"),
        ('id = "u002"', 'id = "u001"', "sensors[1].id", "u001", "already used"),
        (
            'name = "Mariposa approach"',
            'name = "Mariposa approach"\ncolour = "red"',
            "zones[0].colour",
            "red",
            "unknown key",
        ),
    ],
    ids=["range", "unknown-key", "enum", "type", "port", "duplicate-id", "unknown-in-zone"],
)
def test_errors_name_key_value_and_line(default, old, new, key, value, words) -> None:
    text = _mutate(default.text, old, new)
    with pytest.raises(ConfigError) as info:
        parse(text, "tucson.toml")
    err = info.value
    assert err.key == key
    assert err.value == value
    assert words in str(err)
    bad_line = text.splitlines()[err.line - 1]
    assert key.rsplit(".", 1)[-1] in bad_line
    assert f"tucson.toml:{err.line}:" in str(err)


def test_device_on_the_wrong_side_is_an_error(default) -> None:
    text = _mutate(default.text, "lat = 31.340767", "lat = 31.25")
    with pytest.raises(ConfigError, match="far side of the border") as info:
        parse(text, "x.toml")
    assert info.value.key == "towers[0]"
    assert "lat = 31.25" in text.splitlines()[info.value.line - 1]


def test_syntax_error_names_the_line(default) -> None:
    text = _mutate(default.text, 'boundary = "us_mx"', "boundary = ")
    with pytest.raises(ConfigError) as info:
        parse(text, "x.toml")
    assert info.value.line == 8


def test_missing_file() -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load("/nonexistent/deployment.toml")


def test_locate_handles_tables_and_arrays() -> None:
    text = "[sector]\nname = 'a'\n\n[[towers]]\nid = 't1'\n\n[[towers]]\nid = 't2'\nlat = 3\n"
    assert locate(text, ["sector", "name"]) == 2
    assert locate(text, ["towers", 1, "lat"]) == 9
    assert locate(text, ["towers", 1, "missing"]) == 7
    assert locate(text, ["towers", 0, "id"]) == 5


def test_config_check_command(default, tmp_path: Path, capsys) -> None:
    assert main(["config", "check", str(default.path)]) == 0
    assert "6 towers, 60 ground sensors" in capsys.readouterr().out
    bad = tmp_path / "bad.toml"
    bad.write_text(_mutate(default.text, "range_m = 4000.0", "range_m = 4000.0\nrange_km = 4"))
    assert main(["config", "check", str(bad)]) == 3
    err = capsys.readouterr().err
    assert "towers[0].range_km" in err and f"{bad}:" in err
