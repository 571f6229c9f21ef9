"""The command line as a package: every command group registers, and each one's help works."""

from __future__ import annotations

import subprocess
import sys

import pytest

from vigil.cli import main

# Written out rather than read from the parser, so that a group that fails to register fails here.
COMMANDS = (
    "config", "map", "demo", "serve", "users", "simulate", "detect", "track", "analyze", "edge",
    "record", "replay", "run", "alerts", "broker",
)  # fmt: skip
ACTIONS = (("config", "check"), ("users", "add"), ("broker", "init"))
HEAVY = ("numpy", "numba", "cv2", "pandas", "geopandas", "shapely", "pyproj", "msgspec", "paho")


def test_top_level_help_lists_every_command_in_order() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "vigil.cli", "--help"], capture_output=True, text=True, check=True
    ).stdout
    listed = [line.split()[0] for line in out.splitlines() if line.startswith("    ")]
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
