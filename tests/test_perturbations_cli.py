"""``vigil simulate`` and ``vigil demo`` take ``--perturbations none|field`` and ``--without
FAMILY`` (issue 22); the run's metadata says what world made it; bad families are refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vigil.cli import main
from vigil.cli.perturbation_args import FAMILIES

SIM = ["simulate", "--minutes", "0.05", "--no-video", "--quiet", "--seed", "3"]


def _simulate(out: Path, *extra: str) -> dict:
    assert main([*SIM, "--out", str(out), *extra]) == 0
    return json.loads((out / "manifest.json").read_text())


def test_the_options_families_are_the_simulators() -> None:
    from vigil.sim.perturbations import Perturbations

    assert tuple(Perturbations.__struct_fields__) == FAMILIES


def test_simulate_default_is_none_and_field_changes_the_world(tmp_path: Path) -> None:
    none = _simulate(tmp_path / "none")
    assert none["perturbations"]["on"] == []
    assert sorted(none["perturbations"]["off"]) == sorted(FAMILIES)
    field = _simulate(tmp_path / "field", "--perturbations", "field", "--without", "birds",
                      "--without", "dust")  # fmt: skip
    rec = field["perturbations"]
    assert sorted(rec["off"]) == ["birds", "dust"]
    assert set(rec["on"]) == set(FAMILIES) - {"birds", "dust"}
    assert rec["families"]["blur"] == {"on": True, "sigma_px": 0.8}
    assert rec["families"]["birds"]["on"] is False
    # same seed, a different world: the field's bodies, groups, vehicles... change the truth
    changed = [k for k, v in none["files"].items() if field["files"].get(k) != v]
    assert any(k.startswith("truth/") for k in changed), changed
    # and an explicit none is the default byte for byte
    again = _simulate(tmp_path / "none2", "--perturbations", "none")
    assert again["files"] == none["files"]


@pytest.mark.parametrize("command", ["simulate", "demo"])
def test_unknown_family_is_a_usage_error(
    tmp_path: Path, command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    argv = [command, "--out", str(out), "--perturbations", "field", "--without", "unicorns"]
    if command == "simulate":
        argv += ["--minutes", "0.05", "--no-video"]
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unicorns" in err[0] and "blur" in err[0]
    assert not out.exists()


def test_without_needs_field(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert main([*SIM, "--out", str(out), "--without", "blur"]) == 2
    assert "--without" in capsys.readouterr().err
    assert not out.exists()


def test_help_names_the_families(capsys: pytest.CaptureFixture[str]) -> None:
    for command in ("simulate", "demo"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        assert "--perturbations {none,field}" in text and "--without FAMILY" in text
        for name in FAMILIES:
            assert name in text


def test_demo_records_the_perturbations_in_its_summary(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    argv = ["demo", "--hours", "0.002", "--quiet", "--out", str(out)]
    assert main([*argv, "--perturbations", "field", "--without", "ugs_nuisance"]) == 0
    rec = json.loads((out / "summary.json").read_text())["perturbations"]
    assert rec["off"] == ["ugs_nuisance"] and len(rec["on"]) == len(FAMILIES) - 1
