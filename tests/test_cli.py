"""The command line as a package: every command group registers, and each one's help works."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from vigil.cli import main
from vigil.cli.simulate import crossings_line

# Written out rather than read from the parser, so that a group that fails to register fails here.
COMMANDS = (
    "config", "map", "demo", "serve", "users", "simulate", "detect", "track", "analyze", "edge",
    "calibrate", "labels", "record", "replay", "run", "alerts", "broker",
)  # fmt: skip
ACTIONS = (("config", "check"), ("users", "add"), ("broker", "init"), ("calibrate", "tower"),
           ("labels", "export"))  # fmt: skip
HEAVY = ("numpy", "numba", "cv2", "pandas", "geopandas", "shapely", "pyproj", "msgspec", "paho")


def test_top_level_help_lists_every_command_in_order() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "vigil.cli", "--help"], capture_output=True, text=True, check=True
    ).stdout
    # a command's line is indented four spaces; a help text wrapped onto the next line, more
    listed = [line.split()[0] for line in out.splitlines() if re.match(r"    \S", line)]
    assert listed == list(COMMANDS)


@pytest.mark.parametrize("argv", [[c] for c in COMMANDS] + [list(a) for a in ACTIONS], ids=" ".join)
def test_each_command_has_its_own_help(argv: list[str], capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as stop:
        main([*argv, "--help"])
    assert stop.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: vigil {' '.join(argv)} ")
    assert "options:" in out


def test_help_imports_nothing_heavy() -> None:
    code = (
        "import sys\nfrom vigil.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r})))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.splitlines()[-1] == "[]"


@pytest.mark.slow
def test_simulate_into_a_relative_folder_says_its_size_and_its_crossings(tmp_path) -> None:
    # one tower at 60 Hz for 6 s: enough pixels that the video is encoded in a child process,
    # which crashed on a relative --out (it runs in another folder)
    argv = ["simulate", "--minutes", "0.1", "--seed", "1", "--towers", "t01", "--fps", "60"]
    r = subprocess.run(
        [sys.executable, "-m", "vigil.cli", *argv, "--out", "sim", "--quiet"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    m = re.match(r"writing about ([\d,]+) MB of video \(lossless FFV1\) into (.*);", lines[0])
    assert m and Path(m.group(2)) == (tmp_path / "sim").resolve(), lines[0]
    written = (tmp_path / "sim" / "cameras" / "t01.avi").stat().st_size
    assert 0.7 < written / (int(m.group(1).replace(",", "")) * 1e6) < 1.4  # the estimate holds
    counts = json.loads((tmp_path / "sim" / "manifest.json").read_text())["counts"]
    assert lines[-1] == crossings_line(counts, 0.1, 1.0)
    assert lines[-1].startswith(f"border crossings: {counts['crossings']} in 0.1 simulated min")


def test_the_crossings_line_counts_people_and_says_when_there_are_none() -> None:
    counts = {"crossings": 3, "crossings_by": {"person:northbound": 2, "vehicle:southbound": 1}}
    assert crossings_line(counts, 10, 1.0) == (
        "border crossings: 3 in 10 simulated min, 2 of them by people (truth/crossings.csv)"
    )
    none = crossings_line({"crossings": 1, "crossings_by": {"vehicle:northbound": 1}}, 2, 1.0)
    assert none.startswith("border crossings: 1 in 2 simulated min, 0 of them by people")
    assert "raise --rate-scale" in none


def test_users_audit_log_lies_beside_the_users_file(tmp_path, monkeypatch) -> None:
    """`vigil users` with --users elsewhere writes its audit there too, not in the working
    folder (a run from the checkout left vigil-audit.sqlite in the repository)."""
    from vigil.cli.users import DEFAULT_AUDIT, audit_path

    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    users = tmp_path / "map" / "users.sqlite"
    assert audit_path(users, None) == tmp_path / "map" / DEFAULT_AUDIT
    assert audit_path(users, tmp_path / "a.sqlite") == tmp_path / "a.sqlite"
    users.parent.mkdir()
    monkeypatch.setenv("VIGIL_PASSWORD", "long enough to pass the policy")
    rc = main(["users", "add", "ana", "--role", "commander", "--users", str(users)])
    assert rc == 0
    assert (tmp_path / "map" / DEFAULT_AUDIT).is_file()
    assert not (work / DEFAULT_AUDIT).exists()
