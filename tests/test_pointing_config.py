"""``[terrain] pointing`` names the pointing calibration file: ``vigil config check`` (and
every command that loads the deployment) refuses a missing file, one that does not parse and
one for towers the deployment does not have, naming the key, the value and the line."""

from __future__ import annotations

from pathlib import Path

import pytest

from vigil.cli import main
from vigil.config import ConfigError, default_deployment_path, load
from vigil.geo.landmarks import TowerPointing, format_pointing_file

GOOD = TowerPointing(
    id="t03", pan_offset_deg=0.3, tilt_offset_deg=-0.06, roll_offset_deg=0.2, pan_sigma_deg=0.01
)


def deployment(folder: Path, pointing_text: str | None) -> Path:
    """The demo deployment naming ``pointing.toml`` (written when text is given)."""
    path = folder / "sector.toml"
    text = default_deployment_path().read_text(encoding="utf-8")
    path.write_text(text + '\n[terrain]\npointing = "pointing.toml"\n', encoding="utf-8")
    if pointing_text is not None:
        (folder / "pointing.toml").write_text(pointing_text, encoding="utf-8")
    return path


def test_a_valid_pointing_file_passes_config_check(tmp_path: Path, capsys) -> None:
    path = deployment(tmp_path, format_pointing_file({"t03": GOOD}))
    assert load(path).config.terrain.pointing == "pointing.toml"
    assert main(["config", "check", str(path)]) == 0
    assert ": ok:" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("pointing_text", "match"),
    [
        (None, "no such file"),
        ("[[towers]\n", "not TOML"),
        (format_pointing_file({"t03": GOOD}).replace("0.3", "90.0"), "pan_offset_deg"),
        (format_pointing_file({"t03": GOOD}) + "colour = 1\n", "colour"),
        (
            format_pointing_file({"t03": GOOD, "t99": TowerPointing(
                id="t99", pan_offset_deg=0, tilt_offset_deg=0, roll_offset_deg=0)}),
            "towers\\[1\\].id = 't99': not a tower of the deployment",
        ),
    ],
    ids=["missing", "not-toml", "out-of-range", "unknown-key", "unknown-tower"],
)  # fmt: skip
def test_a_bad_pointing_file_is_named_with_key_and_line(
    tmp_path: Path, capsys, pointing_text: str | None, match: str
) -> None:
    path = deployment(tmp_path, pointing_text)
    with pytest.raises(ConfigError, match=match) as caught:
        load(path)
    err = caught.value
    assert err.key == "terrain.pointing" and err.value == "pointing.toml"
    lines = path.read_text(encoding="utf-8").splitlines()
    assert err.line is not None and lines[err.line - 1].startswith("pointing =")
    assert main(["config", "check", str(path)]) == 3
    assert f"{path}:{err.line}: terrain.pointing = 'pointing.toml'" in capsys.readouterr().err
