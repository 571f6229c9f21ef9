"""``vigil track`` settings (issue 20): ``--config FILE`` (the deployment's ``[tracker]``
table), flags for the common settings, the ``sigma`` column, and ``--report-max-sigma``."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from vigil.cli import main
from vigil.cli.track import load_track_config
from vigil.config_sections import ConfigError


def _write(path: Path, rows: list[tuple], header: str = "t,x,y") -> Path:
    path.write_text(header + "\n" + "".join(",".join(map(str, r)) + "\n" for r in rows))
    return path


def _tracks(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def _walker_then_gone(tmp_path: Path) -> Path:
    """A walker seen at t = 0..4 s, then gone; a far clutter point keeps the scans coming
    until t = 9 s."""
    rows = [(t, float(t), 0.0) for t in range(5)]
    rows += [(t, 5000.0, 5000.0) for t in range(5, 10)]
    return _write(tmp_path / "d.csv", rows)


def _track(tmp_path: Path, src: Path, *flags: str) -> list[dict[str, str]]:
    out = tmp_path / "o.csv"
    assert main(["track", str(src), "--out", str(out), *flags]) == 0
    return _tracks(out)


#: The older scan-count management and every coasting track written: the flags' own tests.
COUNTS = ("--management", "counts", "--report-coast-sigma-ratio", "0")


def _last_time(rows: list[dict[str, str]], track_id: str = "1") -> float:
    return max(float(r["t"]) for r in rows if r["track_id"] == track_id)


def test_bad_key_in_config_is_named_with_its_line(tmp_path, capsys):
    src = _walker_then_gone(tmp_path)
    cfg = tmp_path / "tracker.toml"
    cfg.write_text("# tracker settings\n[tracker]\nmax_coast_s = 2.0\nmax_coats_s = 3.0\n")
    out = tmp_path / "o.csv"
    assert main(["track", str(src), "--out", str(out), "--config", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert f"{cfg}:4: tracker.max_coats_s = 3.0: unknown key" in err
    assert "max_coast_s" in err  # the keys allowed are listed
    assert not out.exists()


@pytest.mark.parametrize(
    "text, key, line",
    [
        ('[tracker]\n\nmax_coast_s = "long"\n', "tracker.max_coast_s", 3),
        ("[tracker]\nconfirm_n = 3\nconfirm_m = 4\n", "tracker.confirm_m", 3),
        ("[tracker]\ngate_probability = 1.5\n", "tracker.gate_probability", 2),
        ("[track]\nmax_coast_s = 1.0\n", "track", 1),
    ],
    ids=["type", "m-over-n", "bound", "table"],
)
def test_bad_values_name_key_value_and_line(tmp_path, text, key, line):
    cfg = tmp_path / "t.toml"
    cfg.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_track_config(cfg)
    assert (info.value.key, info.value.line) == (key, line)
    assert str(info.value).startswith(f"{cfg}:{line}: {key} = ")


def test_bad_flag_value_is_named(tmp_path, capsys):
    src = _walker_then_gone(tmp_path)
    code = main(["track", str(src), "--out", str(tmp_path / "o.csv"), "--gate-probability", "2"])
    assert code == 2
    assert "command line: tracker.gate_probability = 2.0" in capsys.readouterr().err


def test_coasting_flag_and_file_change_when_a_lost_track_ends(tmp_path):
    src = _walker_then_gone(tmp_path)
    # by counts: a confirmed track coasts 5 s, so it is written to t = 9 s
    assert _last_time(_track(tmp_path, src, *COUNTS)) == 9.0
    # the flag: deleted once more than 1 s without a detection (written at t = 5 s, not 6)
    assert _last_time(_track(tmp_path, src, *COUNTS, "--max-coast-s", "1")) == 5.0
    cfg = tmp_path / "t.toml"
    cfg.write_text("[tracker]\nmax_coast_s = 2.0\n")
    assert _last_time(_track(tmp_path, src, *COUNTS, "--config", str(cfg))) == 6.0
    # a flag wins over the file
    flags = (*COUNTS, "--config", str(cfg), "--max-coast-s", "1")
    assert _last_time(_track(tmp_path, src, *flags)) == 5.0


def test_confirmation_flag(tmp_path):
    src = _walker_then_gone(tmp_path)
    first = min(float(r["t"]) for r in _track(tmp_path, src, *COUNTS))
    assert first == 2.0  # 3 of 4 by default
    assert min(float(r["t"]) for r in _track(tmp_path, src, "--confirm", "2/2")) == 1.0


def test_sigma_column_is_honoured(tmp_path):
    """A step of 2 m sideways at t = 4 s after four detections with sigma 1 m: a detection
    with sigma 0.05 m pulls the track onto it, one with sigma 30 m barely moves it; without a
    sigma column the default (5 m, or --default-sigma) applies."""
    rows = [(t, float(t), 0.0) for t in range(4)]

    def y_after_step(sigma_cell: str | None, *flags: str) -> float:
        if sigma_cell is None:
            src = _write(tmp_path / "d.csv", [*rows, (4, 4.0, 2.0)])
        else:
            body = [(*r, "1") for r in rows] + [(4, 4.0, 2.0, sigma_cell)]
            src = _write(tmp_path / "d.csv", body, "t,x,y,sigma")
        rows_out = _track(tmp_path, src, *COUNTS, *flags)
        return next(float(r["y"]) for r in rows_out if float(r["t"]) == 4.0)

    sharp, blunt = y_after_step("0.05"), y_after_step("30")
    assert sharp > 1.9
    assert blunt < 0.5
    plain = y_after_step(None)
    assert blunt < plain < sharp
    assert y_after_step(None, "--default-sigma", "30") < plain


def test_report_max_sigma_drops_unsure_coasting_positions(tmp_path):
    src = _walker_then_gone(tmp_path)
    every = _track(tmp_path, src, *COUNTS)
    sure = _track(tmp_path, src, *COUNTS, "--report-max-sigma", "6")
    # the track still coasts (same deletion), but its unsure predictions are not written
    assert _last_time(sure) < _last_time(every) == 9.0
    assert [r for r in every if float(r["t"]) <= 4.0] == [r for r in sure if float(r["t"]) <= 4.0]
    # the id is kept: a walker found again within the coasting time continues track 1
    rows = [(t, float(t), 0.0) for t in range(5)] + [(t, 5000.0, 5000.0) for t in (5, 6, 7)]
    rows += [(8, 8.0, 0.0)]
    back = _track(tmp_path, _write(tmp_path / "d2.csv", rows), *COUNTS, "--report-max-sigma", "6")
    assert [float(r["t"]) for r in back if r["track_id"] == "1"][-1] == 8.0


def test_a_deployment_file_is_a_config(tmp_path):
    """``--config`` takes a whole deployment file too: its ``[tracker]`` (the shipped sector
    coasts 30 s) and class model; flags still win."""
    from vigil.config import default_deployment_path, load_default

    shipped = load_default().tracker_config()
    config = load_track_config(default_deployment_path())
    assert config == shipped and config.max_coast_s == 30.0
    assert load_track_config(default_deployment_path(), {"max_coast_s": 2.0}).max_coast_s == 2.0
    src = _walker_then_gone(tmp_path)
    assert _last_time(_track(tmp_path, src, "--config", str(default_deployment_path()))) == 9.0
    broken = tmp_path / "site.toml"
    broken.write_text(
        default_deployment_path().read_text().replace("[tracker]\n", "[tracker]\nzoom = 1\n", 1)
    )
    with pytest.raises(ConfigError) as info:
        load_track_config(broken)
    assert info.value.key == "tracker.zoom" and info.value.line is not None


def test_default_management_is_evidence_and_m_of_n_in_a_file_means_counts(tmp_path):
    assert load_track_config(None).track_score
    cfg = tmp_path / "t.toml"
    cfg.write_text("[tracker]\nconfirm_m = 2\nconfirm_n = 3\n")
    assert not load_track_config(cfg).track_score
    cfg.write_text("[tracker]\nconfirm_m = 2\ntrack_score = true\n")
    assert load_track_config(cfg).track_score
    assert not load_track_config(None, {"track_score": False}).track_score
