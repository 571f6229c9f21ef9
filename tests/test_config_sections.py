"""Issue 19 item 1: one validated file runs a sector.

The deployment file carries the tracker, alert rules, class model (by reference to a
calibration file), service limits, CoT, detection defaults with per-camera overrides and
terrain; a typo in any of them names key, value and line; ``vigil config show`` prints every
value in force with its source; what the file says reaches the running service.
"""

from __future__ import annotations

import shutil
import tomllib
from pathlib import Path

import msgspec
import pytest

from vigil.alerts.rules import AlertRules
from vigil.cli import main
from vigil.config import ConfigError, default_deployment_path, load, load_default, parse
from vigil.tracks.calibration import load_calibration, sim_calibration_path
from vigil.tracks.config import TrackerConfig

SECTIONS = ("tracker", "alerts", "classes", "service", "cot", "detection", "cameras")


@pytest.fixture(scope="module")
def shipped():
    return load_default()


@pytest.fixture
def site_copy(tmp_path: Path) -> Path:
    """The shipped deployment and its calibration folder copied to a scratch folder, the
    calibration named by a path relative to the deployment."""
    shutil.copytree(sim_calibration_path().parent, tmp_path / "calibration")
    target = tmp_path / "tucson.toml"
    shutil.copy(default_deployment_path(), target)
    return _edit(
        target,
        'calibration = "vigil:sim_towers.toml"',
        'calibration = "calibration/sim_towers.toml"',
    )


def _edit(path: Path, old: str, new: str) -> Path:
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))
    return path


# -- the shipped file ---------------------------------------------------------------------


def test_shipped_file_has_every_section_and_config_check_accepts_it(shipped, capsys) -> None:
    raw = tomllib.loads(shipped.text)
    for section in SECTIONS:
        assert section in raw, section
    assert raw["cameras"][0]["tower"] in {t.id for t in shipped.config.towers}
    assert main(["config", "check", str(shipped.path)]) == 0
    out, err = capsys.readouterr()
    assert "ok" in out and "50 camera rows and 12 speed rows" in out
    assert "warning" not in err


def test_shipped_file_gives_todays_behaviour(shipped) -> None:
    """The file's tracker is the simulated sector's (what the golden runs use), its rules the
    defaults, and a camera without an override detects as a tower always did."""
    from vigil.detection.detector import DetectorConfig

    assert shipped.tracker_config() == TrackerConfig.for_sector()
    assert shipped.rules == AlertRules()
    assert shipped.detection_for("t01").detector_config() == DetectorConfig.for_tower()
    assert shipped.detection_for("t03").warmup_frames == 60  # the override
    assert shipped.detection_for("t03").sensor == "thermal"  # from [detection]
    assert not shipped.config.cot.enabled


def test_calibration_file_holds_the_simulators_tables() -> None:
    model = load_calibration(sim_calibration_path())
    assert len(model.camera) == 50 and len(model.speed) == 12
    assert model.camera[0] == ("person", 0.0, 0.135, 0.0, 750.0, 0.006736, 0.00069, 0.015192)
    text = sim_calibration_path().read_text()
    assert "bench_demo --calibrate" in text  # the header says how it was fitted


def test_a_fitted_table_written_as_a_calibration_file_reads_back() -> None:
    """``bench_demo --calibrate`` prints what :func:`format_calibration` writes."""
    from vigil.tracks.calibration import (
        calibrate_speed_model,
        format_calibration,
        parse_calibration,
    )

    speeds = calibrate_speed_model(
        [0.2, 1.2, 1.3, 9.0, 0.5], ["animal", *["person"] * 2, "vehicle", "x"]
    )
    model = load_calibration(sim_calibration_path())
    text = format_calibration(model.camera, speeds, fitted="test", header="how\nand when")
    again = parse_calibration(text)
    assert again.camera == model.camera and again.speed == speeds
    assert text.startswith("# how\n# and when\n")


# -- typos in each section name key, value and line -----------------------------------------


def _line_of(text: str, fragment: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if fragment in line)


def _set(text: str, header: str, assignment: str) -> str:
    """``text`` with ``key = value`` set in the first table under ``header``: the key's line
    replaced where the table has it, else the line added after the header."""
    lines = text.splitlines()
    start = lines.index(header)
    key = assignment.split("=", 1)[0].strip()
    for i in range(start + 1, len(lines)):
        if lines[i].startswith("["):
            break
        if lines[i].split("=", 1)[0].strip() == key:
            lines[i] = assignment
            return "\n".join(lines) + "\n"
    lines.insert(start + 1, assignment)
    return "\n".join(lines) + "\n"


TYPOS = [
    # (section header, inserted line, key, value, words)
    ("[tracker]", "confirm_mm = 3", "tracker.confirm_mm", 3, "unknown key; allowed here"),
    ("[tracker]", 'max_coast_s = "30"', "tracker.max_coast_s", "30", "expected `float`"),
    ("[tracker]", "gate_probability = 1.5", "tracker.gate_probability", 1.5, "< 1.0"),
    ("[tracker]", "class_prior = [0.5, 0.25, 0.25]", "tracker.class_prior", None, "[classes]"),
    ("[alerts]", "crosing = true", "alerts.crosing", True, "unknown key"),
    ("[alerts]", 'crossing_priority = "high"', "alerts.crossing_priority", "high", "`int`"),
    ("[alerts]", "min_person_probability = 1.2", "alerts.min_person_probability", 1.2, "<= 1"),
    ("[classes]", "calibrate = 1", "classes.calibrate", 1, "allowed here: calibration, prior"),
    ("[classes]", "camera = []", "classes.camera", [], "calibration file"),
    ("[service]", "hold = 2.0", "service.hold", 2.0, "allowed here: hold_s"),
    ("[service]", 'journal_synchronous = "SOMETIMES"', "service.journal_synchronous",
     "SOMETIMES", "expected one of"),
    ("[service]", "tick_s = 0.0", "service.tick_s", 0.0, "> 0"),
    ("[cot]", 'hostname = "tak"', "cot.hostname", "tak", "unknown key"),
    ("[cot]", "reconnect_s = 0.0", "cot.reconnect_s", 0.0, ">= 0.1"),
    ("[cot]", 'uid_prefix = "a b"', "cot.uid_prefix", "a b", "matching regex"),
    ("[detection]", "sensitivty = 0.9", "detection.sensitivty", 0.9, "unknown key"),
    ("[detection]", "min_size_px = -1", "detection.min_size_px", -1, ">= 0"),
    ("[detection]", 'sensor = "radar"', "detection.sensor", "radar", "expected one of"),
    ("[[cameras]]", "warmup = 3", "cameras[0].warmup", 3, "allowed here: sensor"),
    ("[[cameras]]", "sensitivity = 7", "cameras[0].sensitivity", 7, "<= 1.0"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("header", "inserted", "key", "value", "words"),
    TYPOS,
    ids=[f"{t[2]}={t[1].split('=', 1)[1].strip()}" for t in TYPOS],
)
def test_typo_in_a_section_names_key_value_and_line(
    shipped, header, inserted, key, value, words
) -> None:
    text = _set(shipped.text, header, inserted)
    with pytest.raises(ConfigError) as err:
        parse(text, shipped.path)
    e = err.value
    assert e.key == key, str(e)
    if value is not None:
        assert e.value == value, str(e)
    assert e.line == _line_of(text, inserted), str(e)
    assert words in str(e), str(e)
    assert f":{e.line}: {key} = " in str(e)


@pytest.mark.parametrize(
    ("old", "new", "key", "value", "words"),
    [
        ('tower = "t03"', 'tower = "t99"', "cameras[0].tower", "t99", "no such tower"),
        ("confirm_m = 3 ", "confirm_m = 5 ", "tracker.confirm_m", 5, "expected m <= n"),
        ("prior = [0.2, 0.2, 0.6]", "prior = [0.2, 0.2]", "classes.prior", [0.2, 0.2], "3"),
        ("prior = [0.2, 0.2, 0.6]", "prior = [0.2, 0.0, 0.8]", "classes.prior[1]", 0.0, "> 0"),
        ("warmup_frames = 60", "filter_px = 4", "cameras[0]", None, "odd window"),
        (
            'enabled = false\nprotocol = "tcp"',
            'enabled = true\nprotocol = "tls"',
            "cot",
            None,
            "needs cert_file",
        ),
    ],
    ids=["unknown-tower", "m-over-n", "prior-length", "prior-zero", "even-filter", "tls-cert"],
)
def test_cross_checks_name_key_value_and_line(shipped, old, new, key, value, words) -> None:
    text = shipped.text.replace(old, new, 1)
    assert text != shipped.text
    with pytest.raises(ConfigError) as err:
        parse(text, shipped.path)
    e = err.value
    assert e.key == key, str(e)
    if value is not None:
        assert e.value == value, str(e)
    assert e.line is not None and e.line > 700, str(e)  # in the sections, not line 1
    assert words in str(e), str(e)


def test_second_override_of_one_camera_is_refused(shipped) -> None:
    text = shipped.text + '\n[[cameras]]\ntower = "t03"\nsensitivity = 0.7\n'
    with pytest.raises(ConfigError, match="already overridden by cameras\\[0\\]") as err:
        parse(text, shipped.path)
    assert err.value.line == len(text.splitlines()) - 1


def test_terrain_typo_names_key_value_and_line(shipped) -> None:
    text = shipped.text + '\n[terrain]\ncell_m = 30.0\nresampling = "lanczos"\n'
    with pytest.raises(ConfigError) as err:
        parse(text, shipped.path)
    assert err.value.key == "terrain.resampling"
    assert err.value.line == len(text.splitlines())


# -- the calibration file --------------------------------------------------------------------


def test_calibration_error_names_its_own_file_and_line(site_copy: Path) -> None:
    calibration = site_copy.parent / "calibration" / "sim_towers.toml"
    row = '  ["person", 0.32, 0.4, 0.0, 750.0, 0.337619, 0.00069, 0.0],'
    _edit(calibration, row, row.replace("0.337619", "1.5"))
    with pytest.raises(ConfigError) as err:
        load(site_copy)
    e = err.value
    assert e.path == str(calibration)
    assert e.key == "camera[4]"
    assert e.line == _line_of(calibration.read_text(), "1.5, 0.00069")
    assert "probabilities in [0, 1]" in str(e)


@pytest.mark.parametrize(
    ("old", "new", "key", "words"),
    [
        ("fitted = ", "fited = 1\nfitted = ", "fited", "allowed here: fitted, classes"),
        ('  [0.0, 0.15, 0.008906', '  [0.0, "slow", 0.008906', "speed[0][1]", "`float`"),
        ('classes = ["person", "vehicle", "animal"]', 'classes = ["vehicle", "person", "animal"]',
         "classes", "the columns the tracker reads"),
        ("  [0.3, 0.5, ", "  [0.2, 0.5, ", "speed[2]", "without overlap"),
    ],
    ids=["unknown-key", "wrong-type-in-row", "column-order", "overlapping-rows"],
)  # fmt: skip
def test_calibration_typos_name_key_and_line(site_copy: Path, old, new, key, words) -> None:
    calibration = site_copy.parent / "calibration" / "sim_towers.toml"
    _edit(calibration, old, new)
    with pytest.raises(ConfigError) as err:
        load(site_copy)
    e = err.value
    assert e.path == str(calibration) and e.key == key, str(e)
    assert e.line == _line_of(calibration.read_text(), new.splitlines()[0].strip()), str(e)
    assert words in str(e)


@pytest.mark.parametrize(
    ("name", "words"),
    [("nope.toml", "no such calibration file"), ("calibration", "not a regular file")],
)
def test_missing_calibration_file_names_the_deployments_key(site_copy: Path, name, words) -> None:
    _edit(site_copy, 'calibration = "calibration/sim_towers.toml"', f'calibration = "{name}"')
    with pytest.raises(ConfigError) as err:
        load(site_copy)
    e = err.value
    assert e.path == str(site_copy) and e.key == "classes.calibration"
    assert e.value == str(site_copy.parent / name)
    assert e.line == _line_of(site_copy.read_text(), f'calibration = "{name}"')
    assert words in str(e)


def test_a_copy_of_the_shipped_file_elsewhere_finds_the_shipped_calibration(tmp_path) -> None:
    copy = tmp_path / "elsewhere" / "tucson.toml"
    copy.parent.mkdir()
    shutil.copy(default_deployment_path(), copy)
    d = load(copy)
    assert d.calibration_path() == sim_calibration_path()
    assert d.tracker_config() == TrackerConfig.for_sector()


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("vigil:nogales.toml", "shipped: vigil:sim_towers.toml"),
        ("vigil:../tucson.toml", "no such calibration file shipped with Vigil"),
    ],
)
def test_unknown_shipped_calibration_is_named(shipped, name, words) -> None:
    text = shipped.text.replace('"vigil:sim_towers.toml"', f'"{name}"')
    with pytest.raises(ConfigError) as err:
        parse(text, shipped.path)
    e = err.value
    assert (e.key, e.value) == ("classes.calibration", name)
    assert e.line == _line_of(text, f'calibration = "{name}"') and words in str(e)


def test_without_calibration_the_model_is_neutral_and_said(site_copy: Path, capsys) -> None:
    _edit(site_copy, 'calibration = "calibration/sim_towers.toml"\n', "")
    d = load(site_copy)
    config = d.tracker_config()
    assert config.camera_class_model == () and config.speed_class_model == ()
    assert config.class_prior == (0.2, 0.2, 0.6)
    assert d.warnings and "no calibration file" in d.warnings[0]
    assert main(["config", "check", str(site_copy)]) == 0
    out, err = capsys.readouterr()
    assert "neutral" in out and "names no calibration file" in err


# -- vigil config show -------------------------------------------------------------------------


def test_config_show_gives_every_value_with_its_source(shipped, capsys) -> None:
    assert main(["config", "show"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    coast = _line_of(shipped.text, "max_coast_s = 30.0")
    assert any(
        line.startswith("max_coast_s = 30.0") and line.endswith(f"# tucson.toml:{coast}")
        for line in lines
    ), out
    assert any(
        line.startswith("process_noise = 0.1") and line.endswith("# default") for line in lines
    )
    assert any(line.startswith("[terrain]") and "not in the file" in line for line in lines)
    assert "# tiles_url = (not set)" in out
    # a camera override shows what it takes from [detection], and where that is set
    sensor_line = _line_of(shipped.text, 'sensor = "thermal"')
    assert any(
        s.startswith('# sensor = "thermal"')
        and s.endswith(f"# tucson.toml:{sensor_line} (from [detection])")
        for s in lines
    ), out
    # every key of every section is there
    for section in ("tracker", "alerts", "service", "cot", "detection"):
        struct = getattr(shipped.config, section)
        for key in type(struct).__struct_fields__:
            assert any(line.startswith((f"{key} = ", f"# {key} = ")) for line in lines), (
                f"{section}.{key}"
            )
    # the output is TOML and gives back the same settings
    again = parse(out, shipped.path)
    assert msgspec.to_builtins(again.config) == msgspec.to_builtins(shipped.config)
    assert again.tracker_config() == shipped.tracker_config()


def test_config_show_marks_what_a_file_sets(site_copy: Path, capsys) -> None:
    _edit(site_copy, "[tracker]\n", "[tracker]\nprocess_noise = 0.25\n")
    assert main(["config", "show", "--deployment", str(site_copy)]) == 0
    out = capsys.readouterr().out
    line = _line_of(site_copy.read_text(), "process_noise = 0.25")
    assert any(
        s.startswith("process_noise = 0.25") and s.endswith(f"# tucson.toml:{line}")
        for s in out.splitlines()
    ), out


def test_config_help_explains_show(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["config", "show", "--help"])
    out = capsys.readouterr().out
    assert "FILE:LINE" in out and "default" in out


@pytest.mark.parametrize(
    ("old", "new", "key", "name"),
    [
        ('enabled = false\nprotocol = "tcp"',
         'enabled = true\nprotocol = "tls"\ncert_file = "tak/me.p12"',
         "cot.cert_file", "tak/me.p12"),
        ("# [terrain]\n", '[terrain]\ndem = "dem/none.tif"\n', "terrain.dem", "dem/none.tif"),
    ],
    ids=["cot-cert", "dem"],
)  # fmt: skip
def test_named_files_must_exist(site_copy: Path, old, new, key, name) -> None:
    _edit(site_copy, old, new)
    with pytest.raises(ConfigError) as err:
        load(site_copy)
    e = err.value
    assert (e.key, e.value) == (key, name), str(e)
    assert e.line == _line_of(site_copy.read_text(), f'= "{name}"'), str(e)
    assert "no such file" in str(e) and str(site_copy.parent / name) in str(e)
    (site_copy.parent / name).parent.mkdir(parents=True, exist_ok=True)
    (site_copy.parent / name).write_bytes(b"")
    load(site_copy)  # there now: accepted (the files are read when what uses them starts)
